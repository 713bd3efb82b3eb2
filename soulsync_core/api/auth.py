"""``/auth/<name>``: connecting a streaming account (Spotify, TIDAL) by the copy-paste flow.

A NAS has no browser. ``GET /api/v1/auth/<name>`` gives the address to open on any device;
after approving, the browser is sent to the redirect address. When that reaches the daemon
(``/auth/<name>/callback``) the login finishes there; otherwise the user copies the address
from the browser's bar and sends it with ``POST /api/v1/auth/<name>``.
"""

from __future__ import annotations

import html

import msgspec
from aiohttp import web

from soulsync_core.accounts import service_title
from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.middlewares import profile_of
from soulsync_core.core import Core
from soulsync_core.hooks import AccountLogin, LoginFailed, NotConfigured, ProviderError
from soulsync_core.models import Account
from soulsync_core.profiles import DEFAULT_PROFILE

routes = Routes("auth")
# The browser's redirect carries no API key; the login's one-time ``state`` guards it.
callback_routes = Routes("auth", prefix="")


class AccountObject(msgspec.Struct):
    connected: bool
    user_id: str | None
    display_name: str | None
    scopes: list[str]


class LoginStarted(msgspec.Struct):
    """Open ``url``, approve, then send the address the browser ends on to POST."""

    account: AccountObject
    url: str
    redirect_uri: str
    state: str
    expires_in: int
    message: str


class FinishBody(msgspec.Struct):
    """The address the browser was sent to after approving (``redirect_url``), or its code."""

    redirect_url: str | None = None
    code: str | None = None


class AccountAnswer(msgspec.Struct):
    message: str
    account: AccountObject


def _object(account: Account) -> AccountObject:
    return AccountObject(account.connected, account.user_id, account.display_name,
                         list(account.scopes))


async def login_of(core: Core, name: str, profile_id: int) -> AccountLogin:
    """Return the login of account ``name`` of a profile; raise a 404 naming the ones there
    are."""
    logins = await core.logins_of(profile_id)
    if name not in logins:
        known = ", ".join(sorted(logins)) or "none installed"
        raise not_found(f"No account login named {name!r} (accounts: {known}).")
    return logins[name]




@routes.get("/auth/{name}", "The connected account, and a new login: the address to open.",
            response=LoginStarted, errors=(404, 503), profiled=True)
async def begin_login(request: web.Request) -> web.Response:
    core = core_of(request)
    login = await login_of(core, request.match_info["name"], profile_of(request))
    try:
        start = await core.begin_login(login, profile_of(request))
    except NotConfigured as exc:
        raise ApiError(503, "NOT_CONFIGURED", str(exc)) from None
    account = await login.account()
    profile_id = profile_of(request)
    as_profile = f" with X-Profile-Id: {profile_id}" if profile_id != DEFAULT_PROFILE else ""
    return ok(LoginStarted(
        _object(account), start.url, start.redirect_uri, start.state, start.expires_in,
        f"Open url, approve, then POST the address your browser ends on to "
        f"/api/v1/auth/{login.name}{as_profile} as redirect_url (within "
        f"{start.expires_in // 60} minutes)."))


@routes.post("/auth/{name}", "Finish a login with the redirect address (or code) copied from "
             "the browser.", body=FinishBody, response=AccountAnswer, errors=(404, 503),
             profiled=True)
async def finish_login(request: web.Request, body: FinishBody) -> web.Response:
    core = core_of(request)
    login = await login_of(core, request.match_info["name"], profile_of(request))
    response = (body.redirect_url or body.code or "").strip()
    if not response:
        raise bad_request("Send redirect_url (the whole address your browser was sent to after "
                          "approving) or code.")
    try:
        account = await core.finish_login(login, response)
    except LoginFailed as exc:
        raise bad_request(str(exc)) from None
    except ProviderError as exc:
        raise ApiError(503, "SOURCE_UNAVAILABLE", f"{service_title(login.name)} could not finish the "
                       f"login: {exc}") from None
    return ok(AccountAnswer(f"{service_title(login.name)} account connected.", _object(account)))


@routes.delete("/auth/{name}", "Log out: forget the account's tokens.", response=AccountAnswer,
               errors=(404,), profiled=True)
async def logout(request: web.Request) -> web.Response:
    core = core_of(request)
    login = await login_of(core, request.match_info["name"], profile_of(request))
    await login.logout()
    await core.activity.record("account.disconnected",
                               f"{service_title(login.name)} Account Disconnected", "Logged out")
    await core.health.check(login.name)
    return ok(AccountAnswer(f"{service_title(login.name)} account disconnected.",
                            _object(await login.account())))


def _page(status: int, title: str, text: str) -> web.Response:
    body = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
            "</body></html>")
    return web.Response(status=status, text=body, content_type="text/html")


@callback_routes.get("/auth/{name}/callback", "Where the service sends the browser after a "
                     "login; finishes it (HTML for the person at the browser).", auth=False,
                     enveloped=False, response=str, content_type="text/html",
                     errors=(400, 404, 503))
async def login_callback(request: web.Request) -> web.Response:
    core = core_of(request)
    name = request.match_info["name"]
    try:
        login = await core.callback_login(name, str(request.url))
        if login is None:
            return _page(404, "Unknown account", f"SoulSync has no account login named {name!r}.")
        account = await core.finish_login(login, str(request.url))
    except LoginFailed as exc:
        return _page(400, "Login not finished", str(exc))
    except ProviderError as exc:
        return _page(503, "Login not finished", f"{service_title(name)} could not finish the login: {exc}")
    who = account.display_name or account.user_id or "your account"
    return _page(200, f"{service_title(name)} connected",
                 f"SoulSync is connected to {service_title(name)} as {who}. You can close this tab.")
