"""Every /api/v1/ answer is the four-key envelope, including routing and body errors."""

from __future__ import annotations

from aiohttp import web

from soulsync_core.api.endpoints import Routes, aiohttp_handler

KEYS = {"success", "data", "error", "pagination"}


async def test_unknown_route_is_404_envelope(api, key):
    reply = await api.get("/api/v1/no/such/thing")
    assert reply.status == 404
    assert set(reply.json) == KEYS
    assert reply.json["success"] is False and reply.json["data"] is None
    assert reply.error["code"] == "NOT_FOUND"
    assert "openapi.json" in reply.error["message"]


async def test_unknown_route_without_key_is_still_404(api, key):
    reply = await api.get("/api/v1/no/such/thing", auth=False)
    assert reply.status == 404 and reply.error["code"] == "NOT_FOUND"


async def test_wrong_method_is_405_envelope_with_allow(api, key):
    reply = await api.delete("/api/v1/system/status")
    assert reply.status == 405
    assert set(reply.json) == KEYS
    assert reply.error["code"] == "METHOD_NOT_ALLOWED"
    assert reply.headers["Allow"] == "GET"
    assert "GET" in reply.error["message"]


async def test_malformed_json_is_400(api, key):
    reply = await api.request("POST", "/api/v1/api-keys", raw=b'{"label": ')
    assert reply.status == 400
    assert set(reply.json) == KEYS
    assert reply.error["code"] == "BAD_REQUEST"
    assert "not valid JSON" in reply.error["message"]


async def test_non_object_json_is_400(api, key):
    for body, kind in ((b"[1, 2]", "a list"), (b'"x"', "a string"), (b"5", "a number")):
        reply = await api.request("POST", "/api/v1/api-keys", raw=body)
        assert reply.status == 400, body
        assert reply.error["message"] == f"Request body must be a JSON object, not {kind}."
    assert len((await api.get("/api/v1/api-keys")).data["keys"]) == 1


async def test_oversized_body_is_413_by_length_and_by_stream(api, key):
    await api.patch("/api/v1/settings", {"server.max_body_kb": 1})
    big = b'{"label": "' + b"x" * 2000 + b'"}'
    reply = await api.request("POST", "/api/v1/api-keys", raw=big)
    assert reply.status == 413
    assert reply.error["code"] == "PAYLOAD_TOO_LARGE"
    assert "server.max_body_kb" in reply.error["message"]

    async def chunks():
        for _ in range(4):
            yield b"x" * 600

    # Chunked transfer: no Content-Length, the limit is enforced while reading.
    response = await api.client.post("/api/v1/api-keys", data=chunks(),
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert len((await api.get("/api/v1/api-keys")).data["keys"]) == 1


async def test_unexpected_error_is_500_without_internals(aiohttp_client, core):
    from soulsync_core.api.app import create_app

    app = create_app(core)
    broken = Routes("test")

    @broken.get("/boom", "fails", auth=False)
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail /etc/passwd")

    for endpoint in broken.endpoints:
        app.router.add_route(endpoint.method, endpoint.path, aiohttp_handler(endpoint))
    client = await aiohttp_client(app)
    try:
        response = await client.get("/api/v1/boom")
        body = await response.json()
        text = await response.text()
    finally:
        await client.close()  # stop the app before the core fixture closes the database
    assert response.status == 500
    assert set(body) == KEYS
    assert body["error"] == {"code": "INTERNAL_ERROR", "message": "An internal server error occurred."}
    assert "secret" not in text

