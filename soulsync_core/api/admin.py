"""Admin-only actions: what a key bound to a profile that is not an admin may not do.

Profiles share the library, downloads and settings (see docs/api.md, Profiles). A key bound
to a non-admin profile acts for that profile's lists; it may not change what every profile
shares: settings, profiles, backups, or everyone's downloads at once. Unbound keys (every key
made before profiles existed) act as the operator and may.
"""

from __future__ import annotations

from aiohttp import web

from soulsync_core.api.endpoints import core_of
from soulsync_core.api.envelope import ApiError
from soulsync_core.api.middlewares import BOUND_PROFILE


async def require_admin_key(request: web.Request, action: str) -> None:
    """Return when the request's key is unbound or bound to an admin profile; otherwise raise
    a 403 ``FORBIDDEN`` naming the profile and ``action`` (e.g. "change settings")."""
    bound = request.get(BOUND_PROFILE)
    if bound is None:
        return
    profile = await core_of(request).profiles.get(bound)
    if profile is None or not profile.is_admin:
        raise ApiError(403, "FORBIDDEN", f"This API key is bound to profile {bound}, which is "
                       f"not an admin; it cannot {action}.")
