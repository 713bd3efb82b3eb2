"""The search endpoints and the auto chain (CONTRACT decision 6), with in-test providers."""

from __future__ import annotations

import asyncio
import time
import types
from typing import Any

import pytest

from soulsync_core.config import Section, Setting
from soulsync_core.hooks import ProviderError, RateLimited, hookimpl
from soulsync_core.models import Album, Artist, Health, Track


class StubProvider:
    """A metadata provider whose behaviour each test sets: results, error, delay."""

    def __init__(self, name: str, results: int = 1, configured: bool = True):
        self.name = name
        self.results = results
        self.error: Exception | None = None
        self.delay = 0.0
        self.calls = 0
        self._configured = configured

    @property
    def configured(self) -> bool:
        return self._configured

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def health(self) -> Health:
        return Health(ok=self.error is None)

    async def _answer(self, make: Any, limit: int) -> list[Any]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return [make(i) for i in range(min(self.results, limit))]

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        return await self._answer(lambda i: Track(f"{self.name}{i}", f"{query} {i}", ["A"], "B", 1000), limit)

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        return await self._answer(lambda i: Album(f"{self.name}{i}", query, ["A"]), limit)

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        return await self._answer(lambda i: Artist(f"{self.name}{i}", query), limit)

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        return []

    async def album_tracks(self, album_id: str) -> list[Track]:
        return []


def plugin_of(*providers: StubProvider) -> types.SimpleNamespace:
    """A plugin object offering ``providers`` through the metadata_providers hook."""

    @hookimpl
    def metadata_providers(settings: Any) -> list[StubProvider]:
        return list(providers)

    return types.SimpleNamespace(metadata_providers=metadata_providers)


@pytest.fixture
def stubs() -> dict[str, StubProvider]:
    return {name: StubProvider(name) for name in ("hydrabase", "spotify", "itunes")}


@pytest.fixture
async def api(soulsync_factory, stubs):
    return await soulsync_factory(plugins=[("stubs", plugin_of(*stubs.values()))],
                                  environ={"SOULSYNC_SEARCH__TIMEOUT_SECONDS": "0.5"})


@pytest.mark.parametrize("kind", ["tracks", "albums", "artists"])
async def test_auto_answers_from_first_provider_in_order(api, stubs, kind):
    reply = await api.post(f"/api/v1/search/{kind}", {"query": "Daft Punk"})
    assert reply.status == 200
    assert reply.data["source"] == "hydrabase"
    assert len(reply.data[kind]) == 1
    assert stubs["spotify"].calls == 0


@pytest.mark.parametrize("kind", ["tracks", "albums", "artists"])
async def test_auto_skips_a_failing_provider(api, stubs, kind):
    stubs["hydrabase"].error = ProviderError("socket closed")
    reply = await api.post(f"/api/v1/search/{kind}", {"query": "x"})
    assert reply.data["source"] == "spotify"


async def test_auto_skips_rate_limited_provider_during_cool_down(api, stubs):
    stubs["hydrabase"].results = 0
    stubs["spotify"].error = RateLimited("429", retry_after=30)
    first = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert first.data["source"] == "itunes"
    stubs["spotify"].error = None  # recovered, but the cool-down still holds
    second = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert second.data["source"] == "itunes"
    assert stubs["spotify"].calls == 1
    explicit = await api.post("/api/v1/search/tracks", {"query": "x", "source": "spotify"})
    assert explicit.status == 503
    assert explicit.error["code"] == "SOURCE_UNAVAILABLE"
    assert "spotify" in explicit.error["message"] and "rate limited" in explicit.error["message"]


async def test_auto_with_no_results_anywhere_is_empty_with_requested_source(api, stubs):
    for stub in stubs.values():
        stub.results = 0
    reply = await api.post("/api/v1/search/albums", {"query": "nothing"})
    assert reply.status == 200
    assert reply.data == {"albums": [], "source": "auto"}


async def test_auto_skips_unconfigured_and_known_unhealthy(soulsync_factory):
    off = StubProvider("hydrabase", configured=False)
    sick = StubProvider("spotify")
    fine = StubProvider("itunes")
    api = await soulsync_factory(plugins=[("stubs", plugin_of(off, sick, fine))])
    sick.error = ProviderError("down")
    await api.core.health.check_all()
    sick.error = None  # healthy again, but auto trusts the last check until the next one
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert reply.data["source"] == "itunes"
    assert off.calls == 0 and sick.calls == 0
    status = (await api.get("/api/v1/system/status")).data["services"]
    assert status == {"hydrabase": False, "spotify": False, "itunes": True}


async def test_hanging_provider_does_not_delay_past_its_timeout(api, stubs):
    stubs["hydrabase"].delay = 30
    started = time.monotonic()
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    elapsed = time.monotonic() - started
    assert reply.data["source"] == "spotify"
    assert elapsed < 1.5  # timeout is 0.5 s


async def test_explicit_source_answers_even_when_empty_and_503_when_down(api, stubs):
    stubs["itunes"].results = 0
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "source": "itunes"})
    assert reply.status == 200 and reply.data == {"tracks": [], "source": "itunes"}
    stubs["itunes"].error = ProviderError("iTunes answered HTTP 503")
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "source": "itunes"})
    assert reply.status == 503
    assert reply.error["message"] == "itunes is unavailable: iTunes answered HTTP 503."
    stubs["itunes"].delay, stubs["itunes"].error = 30, None
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "source": "itunes"})
    assert reply.status == 503 and "did not answer within 0.5 s" in reply.error["message"]


async def test_unexpected_provider_exception_is_503_not_500(api, stubs):
    stubs["hydrabase"].error = KeyError("boom")
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "source": "hydrabase"})
    assert reply.status == 503 and "unexpectedly" in reply.error["message"]
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert reply.data["source"] == "spotify"


async def test_unknown_source_lists_the_valid_ones(api):
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "source": "deezer"})
    assert reply.status == 400
    assert reply.error["message"] == ("source must be one of auto, hydrabase, itunes, spotify; "
                                      "'deezer' is not a registered source.")


@pytest.mark.parametrize(("body", "message"), [
    ({}, "query is required."),
    ({"query": ""}, "query must be a non-empty string."),
    ({"query": "   "}, "query must be a non-empty string."),
    ({"query": 5}, "query must be a string, not an integer."),
    ({"query": "x", "limit": "x"}, "limit must be an integer, not a string."),
    ({"query": "x", "source": ["spotify"]}, "source must be a string, not a list."),
])
async def test_bad_search_bodies_are_400(api, body, message):
    reply = await api.post("/api/v1/search/tracks", body)
    assert reply.status == 400
    assert reply.error == {"code": "BAD_REQUEST", "message": message}


async def test_limit_is_clamped_to_1_50(api, stubs):
    stubs["hydrabase"].results = 80
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "limit": 500})
    assert len(reply.data["tracks"]) == 50
    reply = await api.post("/api/v1/search/tracks", {"query": "x", "limit": 0})
    assert len(reply.data["tracks"]) == 1
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert len(reply.data["tracks"]) == 20


async def test_track_result_has_the_documented_fields(api):
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    track = reply.data["tracks"][0]
    assert {"id", "name", "artists", "album", "duration_ms", "popularity", "preview_url",
            "image_url", "release_date"} <= set(track)


async def test_auto_order_is_a_live_setting(api, stubs):
    await api.patch("/api/v1/settings", {"search.auto_order": ["itunes", "spotify"]})
    reply = await api.post("/api/v1/search/artists", {"query": "x"})
    assert reply.data["source"] == "itunes"
    assert stubs["hydrabase"].calls == 0


# ------------------------------------------------------- no source to ask, cool-down cap


async def test_auto_with_no_source_to_ask_is_503_with_each_reason(soulsync_factory):
    off = StubProvider("hydrabase", configured=False)
    limited, sick = StubProvider("spotify"), StubProvider("itunes")
    api = await soulsync_factory(plugins=[("stubs", plugin_of(off, limited, sick))], environ={
        "SOULSYNC_SEARCH__AUTO_ORDER": "hydrabase,spotify,itunes,deezer"})
    sick.error = ProviderError("iTunes answered HTTP 503")
    await api.core.health.check_all()
    limited.error = RateLimited("429", retry_after=60)
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert reply.status == 503, reply.json
    assert reply.error == {"code": "SOURCE_UNAVAILABLE", "message": (
        "auto is unavailable: no metadata source could be asked (hydrabase: it is not configured "
        "(see its settings section); spotify: it is rate limited for 60 seconds; itunes: it is "
        "down (unhealthy); deezer: it is not installed).")}
    again = await api.post("/api/v1/search/albums", {"query": "x"})  # spotify cools down now
    assert again.status == 503 and "spotify: it is rate limited for 60 more seconds" in \
        again.error["message"]


async def test_auto_with_no_source_installed_is_503(soulsync_factory):
    api = await soulsync_factory()
    reply = await api.post("/api/v1/search/artists", {"query": "x"})
    assert reply.status == 503
    assert reply.error["message"] == (
        "auto is unavailable: no metadata source could be asked (hydrabase: it is not "
        "installed; spotify: it is not installed; itunes: it is not installed).")


async def test_empty_answers_stay_200_when_one_source_answered(api, stubs):
    stubs["hydrabase"].error = ProviderError("socket closed")
    stubs["spotify"].results = stubs["itunes"].results = 0
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert reply.status == 200 and reply.data == {"tracks": [], "source": "auto"}


@pytest.mark.parametrize(("order", "bad"), [(["itunes", "deezer"], "'deezer'"),
                                            (["Spotify"], "'Spotify'")])
async def test_auto_order_refuses_names_of_no_installed_source(api, order, bad):
    reply = await api.patch("/api/v1/settings", {"search.auto_order": order})
    assert reply.status == 400
    assert reply.error["message"] == (f"search.auto_order: {bad} is not an installed metadata "
                                      "source (installed: hydrabase, itunes, spotify).")
    assert api.core.settings.get("search.auto_order") == ["hydrabase", "spotify", "itunes"]
    empty = await api.patch("/api/v1/settings", {"search.auto_order": []})
    assert empty.status == 400 and "at least one metadata source" in empty.error["message"]


async def test_a_429_cool_down_is_capped_by_the_setting(api, stubs):
    stubs["hydrabase"].error = RateLimited("429", retry_after=3600)
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert reply.data["source"] == "spotify"
    assert 290 < api.core.search.cooldown_left("hydrabase") <= 300  # default 300 s, not 3600
    await api.patch("/api/v1/settings", {"search.max_cooldown_seconds": 20})
    stubs["spotify"].error = RateLimited("429", retry_after=100_000)
    await api.post("/api/v1/search/tracks", {"query": "x"})
    assert 10 < api.core.search.cooldown_left("spotify") <= 20


class GatedStub(StubProvider):
    """A stub whose health check waits until ``gate`` is set."""

    def __init__(self, name: str):
        super().__init__(name)
        self.gate = asyncio.Event()
        self.gate.set()

    async def health(self) -> Health:
        await self.gate.wait()
        return await super().health()


async def test_a_settings_change_makes_a_down_source_asked_at_once_and_rechecked(soulsync_factory):
    source = GatedStub("itunes")
    section = Section("itunes", (Setting("itunes.base_url", str, "", "Where it answers."),))
    api = await soulsync_factory(plugins=[("stubs", plugin_of(source))], sections=[section],
                                 environ={"SOULSYNC_SEARCH__AUTO_ORDER": "itunes"})
    source.error = ProviderError("connection refused")
    await api.core.health.check_all()
    down = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert down.status == 503 and "itunes: it is down" in down.error["message"]
    source.error = None
    source.gate.clear()  # the re-check the change starts does not answer yet
    assert (await api.patch("/api/v1/settings", {"itunes.base_url": "http://itunes"})).status == 200
    reply = await api.post("/api/v1/search/tracks", {"query": "x"})
    assert reply.status == 200 and reply.data["source"] == "itunes"
    assert api.core.health.state("itunes").ok is False  # the last check predates the change
    source.gate.set()
    await api.core.health.wait_rechecks()
    assert api.core.health.state("itunes").ok is True
    status = (await api.get("/api/v1/system/status")).data["services"]
    assert status["itunes"] is True
