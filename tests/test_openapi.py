"""The OpenAPI document is valid 3.1, complete, and matches the router."""

from __future__ import annotations

from openapi_spec_validator import validate

from soulsync_core.api.endpoints import API_PREFIX

DOCUMENTED_IN_SPEC = {
    ("GET", "/api/v1/system/status"), ("GET", "/api/v1/system/activity"),
    ("GET", "/api/v1/system/stats"), ("GET", "/api/v1/settings"), ("PATCH", "/api/v1/settings"),
    ("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/{key_id}"), ("POST", "/api/v1/api-keys/bootstrap"),
}


def _router_routes(app) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD"}


async def test_served_document_is_valid_openapi_31(api, key):
    response = await api.client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {key}"})
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_openapi_needs_a_key_like_everything_else(api, key):
    reply = await api.get("/api/v1/openapi.json", auth=False)
    assert reply.status == 401


async def test_every_registered_route_is_documented_and_every_documented_route_exists(api, openapi_doc):
    registered = _router_routes(api.client.app)
    documented = {(method.upper(), path) for path, operations in openapi_doc["paths"].items()
                  for method in operations}
    assert registered == documented
    assert DOCUMENTED_IN_SPEC <= documented
    outside = {path for _, path in documented if not path.startswith(API_PREFIX)}
    assert outside == {"/ping", "/auth/{name}/callback", "/metrics"}


def test_every_operation_documents_its_errors(openapi_doc):
    for path, operations in openapi_doc["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "500" in statuses, (method, path)
            if operation.get("security") != []:
                assert {"401", "403"} <= statuses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= statuses, (method, path)


def test_bootstrap_and_ping_are_open(openapi_doc):
    assert openapi_doc["paths"]["/api/v1/api-keys/bootstrap"]["post"]["security"] == []
    assert openapi_doc["paths"]["/ping"]["get"]["security"] == []
    assert "security" not in openapi_doc["paths"]["/api/v1/api-keys"]["get"]


def test_query_parameters_come_from_the_declared_schema(openapi_doc):
    params = openapi_doc["paths"]["/api/v1/system/activity"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["type"] for p in params} == {"page": "integer", "limit": "integer"}
