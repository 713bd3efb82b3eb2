"""The OpenAPI document is valid 3.1, complete, and matches the router."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jsonschema
from openapi_spec_validator import validate

from soulsync_core.api.app import all_endpoints
from soulsync_core.api.endpoints import API_PREFIX
from soulsync_core.api.middlewares import _HTTP_CODES
from soulsync_core.api.openapi import build_openapi, document_names
from soulsync_core.config import core_schema

DOCUMENTED_IN_SPEC = {
    ("GET", "/api/v1/system/status"), ("GET", "/api/v1/system/activity"),
    ("GET", "/api/v1/system/stats"), ("GET", "/api/v1/settings"), ("PATCH", "/api/v1/settings"),
    ("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/{key_id}"), ("POST", "/api/v1/api-keys/bootstrap"),
}


def _router_routes(app) -> set[tuple[str, str]]:
    """The (method, path) of every route, less the catch-all that answers a fixed path's 405."""
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.method not in ("HEAD", "*")}


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
    assert outside == {"/ping", "/auth/{name}/callback", "/", "/assets/{version}/{name}", "/metrics"}


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


# ------------------------------------------------------------------- error codes (defect 10)

ROOT = Path(__file__).resolve().parent.parent
_TABLE_ROW = re.compile(r"^\| (\d{3}) \| `([A-Z_]+)` \|", re.MULTILINE)


def emitted_error_codes() -> set[tuple[int, str]]:
    """Return every (status, code) the server can answer: each ``ApiError(<status>, "<CODE>", …)``
    in soulsync_core and the status-to-code table the error middleware maps HTTP errors with."""
    codes: set[tuple[int, str]] = set()
    for path in (ROOT / "soulsync_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "ApiError" and len(node.args) >= 2
                    and all(isinstance(a, ast.Constant) for a in node.args[:2])):
                codes.add((node.args[0].value, node.args[1].value))
    codes |= set(_HTTP_CODES.items())
    return codes


def test_every_error_code_the_server_emits_is_in_the_table_of_docs_api_md():
    documented = {(int(status), code) for status, code in
                  _TABLE_ROW.findall((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))}
    emitted = emitted_error_codes()
    assert {(401, "NOT_AUTHENTICATED"), (503, "SOURCE_UNAVAILABLE"), (503, "NOT_CONFIGURED"),
            (415, "UNSUPPORTED_MEDIA_TYPE"), (400, "BAD_REQUEST")} <= emitted
    assert emitted - documented == set(), "emitted but not in docs/api.md's table"
    assert documented - emitted == set(), "in docs/api.md's table but never emitted"


# --------------------------------------------------- the document is as precise as the server


def _param(openapi_doc, path: str, name: str, method: str = "get") -> dict:
    params = openapi_doc["paths"][path][method]["parameters"]
    return next(p["schema"] for p in params if p["name"] == name)


def _matches(schema: dict, value: str) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def test_query_choices_and_lists_are_declared(openapi_doc):
    genres = _param(openapi_doc, "/api/v1/library/genres", "source")
    assert _matches(genres, "albums") and _matches(genres, "Artists") and not _matches(genres, "x")
    status = _param(openapi_doc, "/api/v1/downloads", "status")
    assert _matches(status, "queued, FAILED,") and not _matches(status, "ok")
    assert not _matches(status, "queued,ok")
    letter = _param(openapi_doc, "/api/v1/library/artists", "letter")
    assert all(_matches(letter, v) for v in ("a", "Z", "#", "all", ""))
    assert not any(_matches(letter, v) for v in ("ab", "1", "é"))


def test_query_text_refuses_control_characters_and_integers_are_64_bit(openapi_doc):
    search = _param(openapi_doc, "/api/v1/library/artists", "search")
    assert _matches(search, "AC/DC (live)") and not _matches(search, "a\x00b")
    lookup_id = _param(openapi_doc, "/api/v1/library/lookup", "id")
    assert not _matches(lookup_id, "") and not _matches(lookup_id, "a\x1fb")
    assert _param(openapi_doc, "/api/v1/library/albums", "year") == {
        "type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}


def test_search_body_needs_a_non_blank_query(openapi_doc):
    schema = dict(openapi_doc["paths"]["/api/v1/search/tracks"]["post"]["requestBody"]["content"]
                  ["application/json"]["schema"])
    schema["components"] = openapi_doc["components"]
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"query": "x"})
    assert not validator.is_valid({"query": ""}) and not validator.is_valid({"query": "  "})


def test_the_login_callback_documents_its_html_answers(openapi_doc):
    responses = openapi_doc["paths"]["/auth/{name}/callback"]["get"]["responses"]
    assert set(responses) == {"200", "400", "404", "500", "503"}
    for status in ("200", "400", "404", "503"):
        assert list(responses[status]["content"]) == ["text/html"], status


def test_registered_names_become_enums_of_the_served_document():
    names = document_names(["itunes", "spotify"], ["spotify", "tidal"], core_schema())
    document = build_openapi(all_endpoints(), names)
    assert document["components"]["schemas"]["SearchBody"]["properties"]["source"]["enum"] == [
        "auto", "itunes", "spotify"]
    assert _param(document, "/api/v1/playlists", "source")["enum"] == ["spotify", "tidal"]
    settings = document["paths"]["/api/v1/settings"]["patch"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert settings["additionalProperties"] is False
    assert settings["properties"]["logging.level"]["anyOf"][0]["enum"] == [
        "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert settings["properties"]["server.max_body_kb"]["anyOf"][0] == {
        "type": "integer", "minimum": 1, "maximum": 65536}


def test_a_document_with_some_plugins_is_valid_openapi():
    for playlists in (["tidal"], ["spotify", "tidal"], []):
        document = build_openapi(all_endpoints(), document_names(["itunes"], playlists, core_schema()))
        validate(document)
        source = _param(document, "/api/v1/playlists", "source")
        assert source.get("enum") == (playlists if "spotify" in playlists else None), playlists
