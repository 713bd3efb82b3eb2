async def test_status(api, key):
    reply = await api.get("/api/v1/system/status")
    assert reply.status == 200, reply.json
