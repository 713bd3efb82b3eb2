"""Profiles: the people sharing one SoulSync, each with their own lists and accounts.

A profile owns its wishlist, watchlist, playlist sync state, streaming account logins (Spotify,
TIDAL) and the API keys bound to it; the library and downloads are shared by all. Profile 1
(``Admin``) is the default every request acts as unless it names another, and it can be
neither deleted nor stripped of ``is_admin``.

Deleting a profile removes what only it owned: its wishlist tracks and watched artists (a
track or artist another profile also wants stays, now theirs), its playlist sync state, its
account logins and the API keys bound to it, in one transaction. Library files, downloads
and the playlists' M3U8 files in the music folder are shared and stay.

A wishlist track or watched artist wanted by several profiles is one row (the old UNIQUE
constraints stay, see migration 0010): ``profile_id`` is the profile that added it first and
``<table>_profiles`` lists the others. :func:`visible_to`, :func:`join` and :func:`leave`
are the one way wishlist.py and watchlist.py read and change that membership.
"""

from __future__ import annotations

import re
import unicodedata

import aiosqlite
import msgspec

from soulsync_core.activity import Activity
from soulsync_core.db import Database
from soulsync_core.timefmt import utc_now_iso

DEFAULT_PROFILE = 1
DEFAULT_COLOR = "#6366f1"
NAME_MAX = 64
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# The tables with shared rows: table -> (its membership table, that table's column).
_MEMBERSHIP = {"wishlist_tracks": ("wishlist_profiles", "wishlist_id"),
               "watchlist_artists": ("watchlist_profiles", "watchlist_id")}

class Profile(msgspec.Struct):
    """A profile as the API returns it; timestamps ISO-8601 UTC."""

    id: int
    name: str
    avatar_color: str
    is_admin: bool
    created_at: str
    updated_at: str


class ProfileRemoved(msgspec.Struct):
    """What a deleted profile had: its rows are gone, except shared wishlist tracks and
    watched artists that another profile also wants (those stay, theirs)."""

    wishlist_tracks: int
    watchlist_artists: int
    playlists: int
    account_rows: int
    api_keys: int


class ProfileInputError(ValueError):
    """A name or colour that cannot be stored; ``str()`` says what to send instead."""


class ProfileConflict(ValueError):
    """The name is taken by another profile; ``str()`` says which."""


class ProfileProtected(ValueError):
    """Profile 1 cannot be deleted or made a non-admin; ``str()`` says why."""


def account_name(account: str, profile_id: int) -> str:
    """Return the ``account_data.account`` value of ``account`` for ``profile_id``
    (profile 1 keeps the plain name, so rows written before profiles existed stay its own)."""
    return account if profile_id == DEFAULT_PROFILE else f"{account}@{profile_id}"


def visible_to(table: str, profile_id: int) -> tuple[str, tuple[int, int]]:
    """Return ``(SQL condition, params)`` selecting the rows of ``table`` that ``profile_id``
    has: the ones it added first or joined later."""
    members, column = _MEMBERSHIP[table]
    return (f"({table}.profile_id = ? OR {table}.id IN "
            f"(SELECT {column} FROM {members} WHERE profile_id = ?))", (profile_id, profile_id))


async def has(conn: aiosqlite.Connection, table: str, row_id: int, profile_id: int) -> bool:
    """Return whether ``profile_id`` has the row ``row_id`` of ``table`` (inside a write)."""
    condition, params = visible_to(table, profile_id)
    cursor = await conn.execute(f"SELECT 1 FROM {table} WHERE id = ? AND {condition}",
                                (row_id, *params))
    return await cursor.fetchone() is not None


async def join(conn: aiosqlite.Connection, table: str, row_id: int, profile_id: int) -> bool:
    """Give ``profile_id`` the existing row ``row_id`` of ``table`` (inside a write); return
    whether it was new to that profile."""
    if await has(conn, table, row_id, profile_id):
        return False
    members, column = _MEMBERSHIP[table]
    await conn.execute(f"INSERT INTO {members} ({column}, profile_id) VALUES (?, ?)",
                       (row_id, profile_id))
    return True


async def leave(conn: aiosqlite.Connection, table: str, row_id: int, profile_id: int) -> bool:
    """Take the row ``row_id`` of ``table`` from ``profile_id`` (inside a write): the row goes
    when no other profile has it, else the other profile with the lowest id becomes its first. Return
    whether the profile had it."""
    members, column = _MEMBERSHIP[table]
    cursor = await conn.execute(f"DELETE FROM {members} WHERE {column} = ? AND profile_id = ?",
                                (row_id, profile_id))
    if cursor.rowcount:
        return True
    cursor = await conn.execute(f"SELECT 1 FROM {table} WHERE id = ? AND profile_id = ?",
                                (row_id, profile_id))
    if await cursor.fetchone() is None:
        return False
    cursor = await conn.execute(
        f"SELECT profile_id FROM {members} WHERE {column} = ? ORDER BY profile_id LIMIT 1", (row_id,))
    heir = await cursor.fetchone()
    if heir is None:
        await conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
    else:
        await conn.execute(f"UPDATE {table} SET profile_id = ? WHERE id = ?", (heir[0], row_id))
        await conn.execute(f"DELETE FROM {members} WHERE {column} = ? AND profile_id = ?",
                           (row_id, heir[0]))
    return True


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise ProfileInputError("name is required: a non-empty profile name.")
    # Names reach the activity feed and logs: no control characters (line breaks became spaces).
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ProfileInputError("name must not contain control characters.")
    if len(name) > NAME_MAX:
        raise ProfileInputError(f"name must be at most {NAME_MAX} characters.")
    return name


def _color(raw: str) -> str:
    if not _COLOR.fullmatch(raw):
        raise ProfileInputError(f"avatar_color must be an #rrggbb colour like {DEFAULT_COLOR}, "
                                f"not {raw!r}.")
    return raw.lower()


def _profile(row: aiosqlite.Row) -> Profile:
    return Profile(row["id"], row["name"], row["avatar_color"], bool(row["is_admin"]),
                   row["created_at"], row["updated_at"])


class ProfileService:
    """The ``profiles`` table and what deleting a profile takes with it."""

    def __init__(self, db: Database, activity: Activity):
        self._db = db
        self._activity = activity

    async def list(self) -> list[Profile]:
        """Return every profile, profile 1 first, then in creation order."""
        return [_profile(r) for r in await self._db.fetchall("SELECT * FROM profiles ORDER BY id")]

    async def get(self, profile_id: int) -> Profile | None:
        """Return the profile, or None when there is none with that id."""
        row = await self._db.fetchone("SELECT * FROM profiles WHERE id = ?", (profile_id,))
        return _profile(row) if row else None

    async def exists(self, profile_id: int) -> bool:
        """Return whether a profile with that id exists."""
        return await self._db.fetchval("SELECT 1 FROM profiles WHERE id = ?",
                                       (profile_id,)) is not None

    async def create(self, name: str, avatar_color: str = DEFAULT_COLOR,
                     is_admin: bool = False) -> Profile:
        """Create a profile; raise ProfileInputError for a bad name or colour, ProfileConflict
        when another profile has the name (compared without case)."""
        clean, color, now = _name(name), _color(avatar_color), utc_now_iso()
        async with self._db.write() as conn:
            await self._check_free(conn, clean, None)
            cursor = await conn.execute(
                "INSERT INTO profiles (name, name_fold, avatar_color, is_admin, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (clean, clean.casefold(), color, int(is_admin), now, now))
            profile_id = int(cursor.lastrowid or 0)
        await self._activity.record("profile.created", "Profile Created", f"'{clean}'")
        created = await self.get(profile_id)
        assert created is not None  # just written
        return created

    async def update(self, profile_id: int, *, name: str | None = None,
                     avatar_color: str | None = None, is_admin: bool | None = None
                     ) -> Profile | None:
        """Change the given fields; return the profile, None when there is none. Raises
        ProfileInputError, ProfileConflict, and ProfileProtected for ``is_admin=False`` on
        profile 1."""
        if profile_id == DEFAULT_PROFILE and is_admin is False:
            raise ProfileProtected("Profile 1 is the admin default and stays an admin.")
        fields: dict[str, object] = {}
        if name is not None:
            fields["name"] = _name(name)
            fields["name_fold"] = str(fields["name"]).casefold()
        if avatar_color is not None:
            fields["avatar_color"] = _color(avatar_color)
        if is_admin is not None:
            fields["is_admin"] = int(is_admin)
        async with self._db.write() as conn:
            cursor = await conn.execute("SELECT 1 FROM profiles WHERE id = ?", (profile_id,))
            if await cursor.fetchone() is None:
                return None
            if "name" in fields:
                await self._check_free(conn, str(fields["name"]), profile_id)
            if fields:
                assignments = ", ".join(f"{column} = ?" for column in fields)
                await conn.execute(
                    f"UPDATE profiles SET {assignments}, updated_at = ? WHERE id = ?",
                    (*fields.values(), utc_now_iso(), profile_id))
        return await self.get(profile_id)

    async def delete(self, profile_id: int) -> ProfileRemoved | None:
        """Delete a profile and what only it owned (see the module docstring), in one
        transaction; return the counts, None when there is no such profile. Raises
        ProfileProtected for profile 1."""
        if profile_id == DEFAULT_PROFILE:
            raise ProfileProtected("Profile 1 is the admin default and cannot be deleted.")
        async with self._db.write() as conn:
            cursor = await conn.execute("SELECT name FROM profiles WHERE id = ?", (profile_id,))
            row = await cursor.fetchone()
            if row is None:
                return None
            counts = {}
            for table in _MEMBERSHIP:
                counts[table] = await self._leave_all(conn, table, profile_id)
            # Pins have no foreign key (they outlive re-syncs); entries go with their playlist.
            await conn.execute("DELETE FROM playlist_pins WHERE playlist_id IN "
                               "(SELECT id FROM playlists WHERE profile_id = ?)", (profile_id,))
            cursor = await conn.execute("DELETE FROM playlists WHERE profile_id = ?", (profile_id,))
            playlists = cursor.rowcount
            cursor = await conn.execute("DELETE FROM account_data WHERE profile_id = ?",
                                        (profile_id,))
            account_rows = cursor.rowcount
            cursor = await conn.execute("DELETE FROM api_keys WHERE profile_id = ?", (profile_id,))
            api_keys = cursor.rowcount
            await conn.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))
        removed = ProfileRemoved(counts["wishlist_tracks"], counts["watchlist_artists"],
                                 playlists, account_rows, api_keys)
        await self._activity.record(
            "profile.deleted", "Profile Deleted",
            f"'{row[0]}': {removed.wishlist_tracks} wishlist tracks, "
            f"{removed.watchlist_artists} watched artists, {removed.playlists} playlists, "
            f"{removed.api_keys} API keys")
        return removed

    @staticmethod
    async def _leave_all(conn: aiosqlite.Connection, table: str, profile_id: int) -> int:
        condition, params = visible_to(table, profile_id)
        cursor = await conn.execute(f"SELECT id FROM {table} WHERE {condition}", params)
        rows = await cursor.fetchall()
        for (row_id,) in rows:
            await leave(conn, table, row_id, profile_id)
        return len(rows)

    @staticmethod
    async def _check_free(conn: aiosqlite.Connection, name: str, own_id: int | None) -> None:
        cursor = await conn.execute("SELECT id, name FROM profiles WHERE name_fold = ?",
                                    (name.casefold(),))
        taken = await cursor.fetchone()
        if taken is not None and taken[0] != own_id:
            raise ProfileConflict(f"Profile {taken[0]} is already named {taken[1]!r}; "
                                  "choose another name.")
