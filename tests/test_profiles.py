"""Profiles: CRUD, the request's profile (X-Profile-Id / ?profile_id= / a key's binding),
separate wishlists and watchlists, and what deleting a profile takes and keeps."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from soulsync_core.accounts import Accounts
from soulsync_core.watchlist import JOB_KIND as WATCHLIST_JOB
from tests.library_fixtures import record
from tests.test_watchlist import NOW, QUIET, Clock, Discography
from tests.test_watchlist import plugin as discography_plugin

ROOT = Path(__file__).resolve().parent.parent
PROFILES = "/api/v1/profiles"
WISHLIST = "/api/v1/wishlist"
WATCHLIST = "/api/v1/watchlist"


class SpotifyDiscography(Discography):
    name = "spotify"


@pytest.fixture
async def core(data_dir: Path):
    """A core with a metadata source for each id the watchlist derives (spotify, itunes): an
    artist is watched only through an installed source."""
    from soulsync_core.core import Core

    core = await Core.open(data_dir, environ={}, entry_points=False,
                           plugins=[("itunes", discography_plugin(Discography())),
                                    ("spotify", discography_plugin(SpotifyDiscography()))])
    yield core
    await core.close()


def track(track_id: str, name: str, artist: str = "Daft Punk") -> dict[str, Any]:
    return {"track_data": {"id": track_id, "name": name, "artists": [{"name": artist}],
                           "album": {"name": "Discovery", "album_type": "album"}}}


def as_profile(profile_id: int | str) -> dict[str, dict[str, str]]:
    return {"headers": {"X-Profile-Id": str(profile_id)}}


async def new_profile(api, name: str, **fields: Any) -> int:
    reply = await api.post(PROFILES, {"name": name, **fields})
    assert reply.status == 201, reply.json
    return reply.data["profile"]["id"]


async def wished(api, **kw: Any) -> list[str]:
    reply = await api.get(WISHLIST, **kw)
    assert reply.status == 200, reply.json
    return [t["track_id"] for t in reply.data["tracks"]]


async def test_profile_1_is_the_admin_default_and_profiles_can_be_managed(api, key):
    listed = await api.get(PROFILES)
    assert listed.status == 200
    [admin] = listed.data["profiles"]
    assert admin["id"] == 1 and admin["name"] == "Admin" and admin["is_admin"] is True

    created = await api.post(PROFILES, {"name": "  Kid  ", "avatar_color": "#FF0088"})
    assert created.status == 201, created.json
    kid = created.data["profile"]
    assert kid["name"] == "Kid" and kid["avatar_color"] == "#ff0088" and kid["is_admin"] is False
    assert (await api.get(f"{PROFILES}/{kid['id']}")).data == kid

    taken = await api.post(PROFILES, {"name": "kid"})
    assert taken.status == 409 and "already named 'Kid'" in taken.error["message"]
    bad = await api.post(PROFILES, {"name": "Red", "avatar_color": "red"})
    assert bad.status == 400 and "avatar_color" in bad.error["message"]
    assert (await api.post(PROFILES, {"name": ""})).status == 400
    blank = await api.post(PROFILES, {"name": " \n "})
    assert blank.status == 400 and blank.error["message"].startswith("name is required")
    control = await api.post(PROFILES, {"name": "Kid\u0000\u001b[31m"})
    assert control.status == 400
    assert control.error["message"] == "name must not contain control characters."
    folded = await api.post(PROFILES, {"name": "Two\n Lines"})
    assert folded.status == 201 and folded.data["profile"]["name"] == "Two Lines"
    assert (await api.post(PROFILES, {})).error["message"] == "name is required."

    renamed = await api.request("PUT", f"{PROFILES}/{kid['id']}", json_body={"name": "Teen"})
    assert renamed.status == 200, renamed.json
    assert renamed.data["profile"]["name"] == "Teen"
    assert (await api.get(f"{PROFILES}/{kid['id']}")).data["name"] == "Teen"
    clash = await api.request("PUT", f"{PROFILES}/{kid['id']}", json_body={"name": "ADMIN"})
    assert clash.status == 409

    demote = await api.request("PUT", f"{PROFILES}/1", json_body={"is_admin": False})
    assert demote.status == 403 and "stays an admin" in demote.error["message"]
    refused = await api.delete(f"{PROFILES}/1")
    assert refused.status == 403 and "cannot be deleted" in refused.error["message"]
    assert (await api.get(f"{PROFILES}/1")).status == 200

    assert (await api.get(f"{PROFILES}/99")).status == 404
    assert (await api.delete(f"{PROFILES}/99")).status == 404
    assert (await api.request("PUT", f"{PROFILES}/99", json_body={"name": "x"})).status == 404
    not_int = await api.get(f"{PROFILES}/abc")
    assert not_int.status == 400 and not_int.error["message"] == "profile_id must be an integer."


async def test_two_profiles_have_separate_wishlists(api, key):
    kid = await new_profile(api, "Kid")
    assert (await api.post(WISHLIST, track("t-admin", "One More Time"))).status == 201
    added = await api.post(WISHLIST, track("t-kid", "Digital Love"), **as_profile(kid))
    assert added.status == 201 and added.data["track"]["profile_id"] == kid

    assert await wished(api) == ["t-admin"]
    assert await wished(api, **as_profile(kid)) == ["t-kid"]
    assert await wished(api, params={"profile_id": str(kid)}) == ["t-kid"]
    # The header wins over the query; 0 and below mean profile 1, as the public server reads it.
    assert await wished(api, params={"profile_id": str(kid)}, **as_profile(1)) == ["t-admin"]
    assert await wished(api, **as_profile(0)) == ["t-admin"]

    # Not on the kid's list: nothing to remove there, and the admin's track stays.
    assert (await api.delete(f"{WISHLIST}/t-admin", **as_profile(kid))).status == 404
    assert await wished(api) == ["t-admin"]

    # The same track wanted by both: one row (fetched once), on both lists.
    again = await api.post(WISHLIST, track("t-admin", "One More Time"), **as_profile(kid))
    assert again.status == 201 and again.data["created"] is True
    assert await wished(api, **as_profile(kid)) == ["t-admin", "t-kid"]
    assert (await api.post(WISHLIST, track("t-admin", "One More Time"))).status == 200
    assert await api.core.db.fetchval("SELECT count(*) FROM wishlist_tracks") == 2
    # Removing it from the admin's list hands the row to the kid.
    assert (await api.delete(f"{WISHLIST}/t-admin")).status == 200
    assert await wished(api) == []
    assert await wished(api, **as_profile(kid)) == ["t-admin", "t-kid"]
    assert (await api.get(WISHLIST, **as_profile(kid))).json["pagination"]["total"] == 2


async def test_the_request_must_name_an_existing_profile_as_an_integer(api, key):
    unknown = await api.get(WISHLIST, **as_profile(7))
    assert unknown.status == 404 and "Profile 7 not found" in unknown.error["message"]
    junk = await api.get(WISHLIST, **as_profile("seven"))
    assert junk.status == 400 and "X-Profile-Id header must be a profile id" in junk.error["message"]
    junk_query = await api.get(WISHLIST, params={"profile_id": "x"})
    assert junk_query.status == 400 and "profile_id must be a profile id" in junk_query.error["message"]
    huge = await api.get(WISHLIST, **as_profile(2**70))
    assert huge.status == 400


async def test_a_profile_bound_key_acts_only_as_its_profile(api, key):
    kid = await new_profile(api, "Kid")
    assert (await api.post(WISHLIST, track("t-admin", "One More Time"))).status == 201
    made = await api.post("/api/v1/api-keys", {"label": "kid's bot", "profile_id": kid})
    assert made.status == 201 and made.data["profile_id"] == kid
    bot = made.data["key"]

    assert (await api.post(WISHLIST, track("t-kid", "Digital Love"), key=bot)).status == 201
    assert await wished(api, key=bot) == ["t-kid"]
    assert await wished(api, key=bot, **as_profile(kid)) == ["t-kid"]
    for other in ({"headers": {"X-Profile-Id": "1"}}, {"params": {"profile_id": "1"}}):
        refused = await api.get(WISHLIST, key=bot, **other)
        assert refused.status == 403, refused.json
        assert refused.error == {"code": "FORBIDDEN", "message": f"This API key is bound to "
                                 f"profile {kid}; it cannot act as profile 1."}
    assert (await api.delete(f"{WISHLIST}/t-admin", key=bot, **as_profile(1))).status == 403
    assert await wished(api) == ["t-admin"]  # untouched
    assert (await api.get(WATCHLIST, key=bot, **as_profile(1))).status == 403

    # It can make keys for its own profile only, and sees only those.
    child = await api.post("/api/v1/api-keys", {"label": "spare"}, key=bot)
    assert child.status == 201 and child.data["profile_id"] == kid
    escalate = await api.post("/api/v1/api-keys", {"label": "admin", "profile_id": 1}, key=bot)
    assert escalate.status == 403
    labels = {k["label"] for k in (await api.get("/api/v1/api-keys", key=bot)).data["keys"]}
    assert labels == {"kid's bot", "spare"}
    admin_key_id = next(k["id"] for k in (await api.get("/api/v1/api-keys")).data["keys"]
                        if k["label"] == "tests")
    assert (await api.delete(f"/api/v1/api-keys/{admin_key_id}", key=bot)).status == 404
    assert (await api.get(WISHLIST)).status == 200  # the admin's key still works

    # Nor can it manage profiles beyond its own name and colour.
    assert (await api.post(PROFILES, {"name": "Other"}, key=bot)).status == 403
    assert (await api.delete(f"{PROFILES}/{kid}", key=bot)).status == 403
    assert (await api.request("PUT", f"{PROFILES}/{kid}", json_body={"is_admin": True},
                              key=bot)).status == 403
    assert (await api.request("PUT", f"{PROFILES}/1", json_body={"name": "Mine"},
                              key=bot)).status == 403
    own = await api.request("PUT", f"{PROFILES}/{kid}", json_body={"name": "Teen"}, key=bot)
    assert own.status == 200 and own.data["profile"]["name"] == "Teen"

    unknown = await api.post("/api/v1/api-keys", {"label": "x", "profile_id": 42})
    assert unknown.status == 404 and unknown.error["code"] == "NOT_FOUND"
    assert unknown.error["message"].startswith("Profile 42 not found;")


async def test_a_key_bound_to_a_non_admin_profile_cannot_change_what_profiles_share(api, key):
    kid = await new_profile(api, "Kid")
    bot = (await api.post("/api/v1/api-keys", {"label": "kid's bot", "profile_id": kid})).data["key"]
    forbidden = f"This API key is bound to profile {kid}, which is not an admin; it cannot "
    settings = await api.patch("/api/v1/settings", {"logging.level": "DEBUG"}, key=bot)
    assert settings.status == 403, settings.json
    assert settings.error == {"code": "FORBIDDEN", "message": forbidden + "change settings."}
    assert (await api.get("/api/v1/settings")).data["settings"]["logging"]["level"] != "DEBUG"
    backup = await api.post("/api/v1/system/backups", {}, key=bot)
    assert backup.status == 403 and backup.error["message"] == forbidden + "start a backup."
    cancel = await api.post("/api/v1/downloads/cancel-all", {}, key=bot)
    assert cancel.status == 403, cancel.json
    # Reading stays open to it, and a key bound to an admin profile may change settings.
    assert (await api.get("/api/v1/settings", key=bot)).status == 200
    boss = await new_profile(api, "Boss", is_admin=True)
    boss_key = (await api.post("/api/v1/api-keys", {"label": "boss", "profile_id": boss})).data["key"]
    changed = await api.patch("/api/v1/settings", {"logging.level": "DEBUG"}, key=boss_key)
    assert changed.status == 200, changed.json


async def test_watchlists_are_per_profile(api, key):
    kid = await new_profile(api, "Kid")
    assert (await api.post(WATCHLIST, {"artist_id": "4tZwfgrHOc3mvqYlEYSvVi",
                                       "artist_name": "Daft Punk"})).status == 201
    both = await api.post(WATCHLIST, {"artist_id": "4tZwfgrHOc3mvqYlEYSvVi",
                                      "artist_name": "Daft Punk"}, **as_profile(kid))
    assert both.status == 201 and both.data["created"] is True
    assert (await api.post(WATCHLIST, {"artist_id": "1234", "artist_name": "Justice"},
                           **as_profile(kid))).status == 201

    def names(reply) -> list[str]:
        return [a["artist_name"] for a in reply.data["artists"]]

    assert names(await api.get(WATCHLIST)) == ["Daft Punk"]
    assert names(await api.get(WATCHLIST, **as_profile(kid))) == ["Justice", "Daft Punk"]
    assert (await api.patch(f"{WATCHLIST}/1234", {"include_live": True})).status == 404
    assert (await api.delete(f"{WATCHLIST}/1234")).status == 404
    assert (await api.delete(f"{WATCHLIST}/4tZwfgrHOc3mvqYlEYSvVi", **as_profile(kid))).status == 200
    assert names(await api.get(WATCHLIST)) == ["Daft Punk"]
    assert names(await api.get(WATCHLIST, **as_profile(kid))) == ["Justice"]


async def test_deleting_a_profile_removes_its_rows_and_keeps_the_shared_library(api, key, music):
    await api.core.library.store.save([
        record("Daft Punk", "Discovery", "Aerodynamic", folder=str(music / "Daft Punk" / "Discovery"))])
    tracks_before = await api.core.db.fetchval("SELECT count(*) FROM tracks")
    kid = await new_profile(api, "Kid")
    for body in (track("t-kid", "Digital Love"), track("t-shared", "Face to Face")):
        assert (await api.post(WISHLIST, body, **as_profile(kid))).status == 201
    assert (await api.post(WISHLIST, track("t-shared", "Face to Face"))).status == 201
    assert (await api.post(WATCHLIST, {"artist_id": "1234", "artist_name": "Justice"},
                           **as_profile(kid))).status == 201
    bot = (await api.post("/api/v1/api-keys", {"label": "bot", "profile_id": kid})).data["key"]
    assert await wished(api, key=bot) == ["t-kid", "t-shared"]  # verified, so kept in memory
    await Accounts(api.core.db, kid).store("spotify").put("token", {"access_token": "kid's"})
    await Accounts(api.core.db).store("spotify").put("token", {"access_token": "admin's"})

    gone = await api.delete(f"{PROFILES}/{kid}")
    assert gone.status == 200, gone.json
    assert gone.data["removed"] == {"wishlist_tracks": 2, "watchlist_artists": 1, "playlists": 0,
                                    "account_rows": 1, "api_keys": 1}
    assert (await api.get(f"{PROFILES}/{kid}")).status == 404
    assert (await api.get(WISHLIST, **as_profile(kid))).status == 404
    assert (await api.get(WISHLIST, key=bot)).error["code"] == "INVALID_KEY"

    # The library is shared and stays; the track the admin also wanted stays on the admin's list.
    assert await api.core.db.fetchval("SELECT count(*) FROM tracks") == tracks_before == 1
    found = await api.get("/api/v1/library/tracks", params={"title": "Aerodynamic"})
    assert [t["title"] for t in found.data["tracks"]] == ["Aerodynamic"]
    assert await wished(api) == ["t-shared"]
    assert await api.core.db.fetchval("SELECT count(*) FROM wishlist_tracks") == 1
    assert await api.core.db.fetchval("SELECT count(*) FROM wishlist_profiles") == 0
    assert await api.core.db.fetchval("SELECT count(*) FROM watchlist_artists") == 0
    assert await Accounts(api.core.db).store("spotify").get("token") == {"access_token": "admin's"}
    assert await Accounts(api.core.db, kid).store("spotify").get("token") is None
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert "Profile Deleted" in {a["title"] for a in feed}


async def soulsync_cli(*args: str) -> tuple[int, str, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "soulsync_core", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    out, err = await child.communicate()
    return child.returncode or 0, out.decode(), err.decode()


async def test_keys_create_binds_a_key_to_a_profile_on_the_command_line(core, data_dir):
    kid = (await core.profiles.create("Kid")).id
    code, out, err = await soulsync_cli("keys", "create", "--label", "bot", "--profile", str(kid),
                                        "--data-dir", str(data_dir))
    assert code == 0, err
    raw = out.strip()
    assert raw.startswith("sk_") and f"bound to profile {kid}" in err
    key_id = await core.keys.authenticate(raw)
    assert key_id is not None and core.keys.binding(key_id) == kid
    code, out, err = await soulsync_cli("keys", "list", "--data-dir", str(data_dir))
    assert code == 0 and "PROFILE" in out
    assert any(line.startswith(key_id) and f"  {kid}  " in line for line in out.splitlines())

    code, out, err = await soulsync_cli("keys", "create", "--profile", "9", "--data-dir",
                                        str(data_dir))
    assert code == 1 and out == "" and "there is no profile 9" in err


@pytest.mark.parametrize("path", ["/api/v1/wishlist", "/api/v1/watchlist", "/api/v1/playlists"])
def test_profiled_operations_document_the_header_and_the_query(openapi_doc, path):
    operation = openapi_doc["paths"][path]["get"]
    names = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert {("X-Profile-Id", "header"), ("profile_id", "query")} <= names
    assert {"400", "403", "404"} <= set(operation["responses"])


async def test_a_scan_adds_new_releases_to_the_wishlist_of_each_profile_watching(soulsync_factory):
    disco = Discography()
    api = await soulsync_factory(plugins=[("disco", discography_plugin(disco))], environ=QUIET)
    api.core.watchlist.clock = api.core.wishlist.clock = Clock(NOW)
    kid = await new_profile(api, "Kid")
    for artist_id, name, who in [("100", "Daft Punk", 1), ("100", "Daft Punk", kid),
                                 ("200", "Justice", kid)]:
        reply = await api.post(WATCHLIST, {"artist_id": artist_id, "artist_name": name},
                               **as_profile(who))
        assert reply.status == 201, reply.json
    disco.release("100", "a1", "Homework 2", "2026-03-08", ["One More Time", "Aerodynamic"])
    disco.release("200", "b1", "Cross 2", "2026-03-08", ["Genesis"], artist="Justice")
    # The admin already wants one of them; the kid does not yet.
    assert (await api.post(WISHLIST, track("a1-1", "One More Time"))).status == 201

    assert (await api.post(f"{WATCHLIST}/scan")).status == 202
    await api.core.jobs.wait(WATCHLIST_JOB)
    assert (await api.get(f"{WATCHLIST}/scan")).data["state"] == "completed"
    assert await wished(api) == ["a1-1", "a1-2"]
    assert sorted(await wished(api, **as_profile(kid))) == ["a1-1", "a1-2", "b1-1"]
    assert await api.core.db.fetchval("SELECT count(*) FROM wishlist_tracks") == 3
