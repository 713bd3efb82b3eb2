"""``/profiles``: list, create, read, change and delete profiles (see soulsync_core/profiles.py).

A key bound to a profile that is not an admin may read the profiles and change its own name
and colour, nothing else: it cannot create or delete profiles nor make itself an admin.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from soulsync_core.api.admin import require_admin_key
from soulsync_core.api.endpoints import Routes, core_of, path_id
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.middlewares import BOUND_PROFILE
from soulsync_core.profiles import (
    DEFAULT_COLOR,
    NAME_MAX,
    Profile,
    ProfileConflict,
    ProfileInputError,
    ProfileProtected,
    ProfileRemoved,
)

routes = Routes("profiles")

# Not blank, no control characters other than whitespace (which becomes single spaces). The
# pattern is for the document only: soulsync_core.profiles checks the same with a message that
# says what to fix, where a regex failure would only quote the regex.
_ALLOWED = r"[^\x00-\x08\x0e-\x1f\x7f-\x9f]"
Name = Annotated[str, msgspec.Meta(
    min_length=1, max_length=NAME_MAX,
    extra_json_schema={"pattern": rf"^{_ALLOWED}*[^\s\x00-\x1f\x7f-\x9f]{_ALLOWED}*$"})]
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


class ProfileList(msgspec.Struct):
    profiles: list[Profile]


class CreateProfile(msgspec.Struct):
    """``name`` is unique without regard to case."""

    name: Name
    avatar_color: Color = DEFAULT_COLOR
    is_admin: bool = False


class UpdateProfile(msgspec.Struct, forbid_unknown_fields=True):
    """Any of the fields; those absent stay as they are."""

    name: Name | None = None
    avatar_color: Color | None = None
    is_admin: bool | None = None


class ProfileAnswer(msgspec.Struct):
    message: str
    profile: Profile


class ProfileDeleted(msgspec.Struct):
    message: str
    removed: ProfileRemoved


def _answer_errors(exc: Exception) -> ApiError:
    if isinstance(exc, ProfileConflict):
        return ApiError(409, "CONFLICT", str(exc))
    if isinstance(exc, ProfileProtected):
        return ApiError(403, "FORBIDDEN", str(exc))
    return bad_request(str(exc))


@routes.get("/profiles", "Every profile, profile 1 (the admin default) first.",
            response=ProfileList)
async def list_profiles(request: web.Request) -> web.Response:
    return ok(ProfileList(await core_of(request).profiles.list()))


@routes.post("/profiles", "Create a profile (its wishlist, watchlist, playlists and accounts "
             "start empty).", body=CreateProfile, response=ProfileAnswer, status=201,
             errors=(409,))
async def create_profile(request: web.Request, body: CreateProfile) -> web.Response:
    await require_admin_key(request, "create profiles")
    try:
        profile = await core_of(request).profiles.create(body.name, body.avatar_color,
                                                         body.is_admin)
    except (ProfileInputError, ProfileConflict) as exc:
        raise _answer_errors(exc) from None
    return ok(ProfileAnswer("Profile created.", profile), status=201)


@routes.get("/profiles/{profile_id}", "One profile.", response=Profile,
            path_types={"profile_id": int}, errors=(404,))
async def get_profile(request: web.Request) -> web.Response:
    profile_id = path_id(request, "profile_id", "Profile")
    profile = await core_of(request).profiles.get(profile_id)
    if profile is None:
        raise not_found(f"Profile {profile_id} not found.")
    return ok(profile)


@routes.route("PUT", "/profiles/{profile_id}", "Change a profile's name, colour or admin flag "
              "(profile 1 stays an admin).", body=UpdateProfile, response=ProfileAnswer,
              path_types={"profile_id": int}, errors=(404, 409))
async def update_profile(request: web.Request, body: UpdateProfile) -> web.Response:
    profile_id = path_id(request, "profile_id", "Profile")
    if request.get(BOUND_PROFILE) not in (None, profile_id) or body.is_admin is not None:
        await require_admin_key(request, "change another profile or an admin flag")
    try:
        profile = await core_of(request).profiles.update(
            profile_id, name=body.name, avatar_color=body.avatar_color, is_admin=body.is_admin)
    except (ProfileInputError, ProfileConflict, ProfileProtected) as exc:
        raise _answer_errors(exc) from None
    if profile is None:
        raise not_found(f"Profile {profile_id} not found.")
    return ok(ProfileAnswer("Profile updated.", profile))


@routes.delete("/profiles/{profile_id}", "Delete a profile with its wishlist, watchlist, "
               "playlist sync state, account logins and bound API keys; the library and "
               "downloads stay. Profile 1 cannot be deleted.", response=ProfileDeleted,
               path_types={"profile_id": int}, errors=(404,))
async def delete_profile(request: web.Request) -> web.Response:
    profile_id = path_id(request, "profile_id", "Profile")
    await require_admin_key(request, "delete profiles")
    core = core_of(request)
    try:
        removed = await core.profiles.delete(profile_id)
    except ProfileProtected as exc:
        raise _answer_errors(exc) from None
    if removed is None:
        raise not_found(f"Profile {profile_id} not found.")
    await core.forget_profile(profile_id)
    return ok(ProfileDeleted("Profile deleted.", removed))
