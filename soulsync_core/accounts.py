"""Account data of plugins (OAuth tokens, logins in progress), kept in SQLite.

Plugins receive :class:`Accounts` through their provider hooks and never see the database;
values never pass through settings, the API or the logs. The daemon and ``soulsync auth``
open the same database, so each read goes to SQLite (a primary-key lookup) rather than a
cache that the other process could leave stale.

Accounts belong to a profile (see :mod:`soulsync_core.profiles`): each profile has its own
:class:`Accounts`, and the core builds the playlist sources of a profile with it, so each
profile logs in its own Spotify or TIDAL user.
"""

from __future__ import annotations

from typing import Any

import msgspec

from soulsync_core.db import Database
from soulsync_core.profiles import DEFAULT_PROFILE, account_name
from soulsync_core.timefmt import utc_now_iso

# How a service writes its own name where people read it.
_TITLES = {"tidal": "TIDAL", "itunes": "iTunes"}


def service_title(name: str) -> str:
    """Return a provider name as people write it: ``spotify`` -> Spotify, ``tidal`` -> TIDAL."""
    return _TITLES.get(name, name.capitalize())


class AccountStore:
    """The :class:`soulsync_core.hooks.AccountStore` of one account of one profile."""

    def __init__(self, db: Database, account: str, profile_id: int = DEFAULT_PROFILE):
        self._db = db
        self.profile_id = profile_id
        # The stored name (``spotify@2`` for profile 2): the table's key is (account, key).
        self.account = account_name(account, profile_id)

    async def get(self, key: str) -> dict[str, Any] | None:
        """Return the JSON object stored under ``key``, None when there is none."""
        text = await self._db.fetchval(
            "SELECT value FROM account_data WHERE account = ? AND key = ?", (self.account, key))
        return None if text is None else msgspec.json.decode(text)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        await self._db.execute(
            "INSERT INTO account_data (account, key, value, updated_at, profile_id) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (account, key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (self.account, key, msgspec.json.encode(value).decode(), utc_now_iso(),
             self.profile_id))

    async def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it is absent."""
        await self._db.execute("DELETE FROM account_data WHERE account = ? AND key = ?",
                               (self.account, key))


class Accounts:
    """Hands each plugin the store of an account of one profile by name (see
    :mod:`soulsync_core.hooks`)."""

    def __init__(self, db: Database, profile_id: int = DEFAULT_PROFILE):
        self._db = db
        self.profile_id = profile_id

    def store(self, account: str) -> AccountStore:
        """Return the store of ``account`` of this profile; cheap, no I/O."""
        return AccountStore(self._db, account, self.profile_id)
