"""API keys: generation, hashing, lookup by hash, bootstrap, revocation, last-used tracking.

A raw key exists only in the answer that creates it. The table holds its SHA-256 hex, and the
``UNIQUE`` constraint on that column is the index every request is authenticated through.
``last_used_at`` is kept in memory per request and written in one batch every
``FLUSH_SECONDS`` (and at shutdown), so authentication never writes to the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import uuid

import msgspec

from soulsync_core.activity import Activity
from soulsync_core.db import Database
from soulsync_core.events import EventBus
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

KEY_PREFIX = "sk_"
PREFIX_LENGTH = 11
FLUSH_SECONDS = 60.0
# Anything shaped like a key; the log formatter and access log scrub these.
RAW_KEY_PATTERN = re.compile(r"sk_[A-Za-z0-9_-]{43}")


def generate_key() -> str:
    """Return a new raw key: ``sk_`` + 43 URL-safe characters (32 random bytes)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    """Return the SHA-256 hex digest that is stored for ``raw``."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyInfo(msgspec.Struct):
    """A key as listed: never the hash, never the raw key."""

    id: str
    label: str
    key_prefix: str
    created_at: str
    last_used_at: str | None


class NewApiKey(msgspec.Struct):
    """A key just created; ``key`` is the raw key and is never shown again."""

    key: str
    id: str
    label: str
    key_prefix: str
    created_at: str


_INSERT = "INSERT INTO api_keys (id, label, key_hash, key_prefix, created_at) "


# Verified keys kept in memory at most (a NAS has a handful; the bound is for safety).
MAX_VERIFIED = 1000


class ApiKeys:
    """The key store of one database."""

    def __init__(self, db: Database, activity: Activity, events: EventBus | None = None):
        self._db = db
        self._events = events or EventBus()
        self._activity = activity
        self._last_used: dict[str, str] = {}
        # Keys found by hash, trusted while the database's change number stays the same: a
        # key revoked or created (by the API or `soulsync keys` in another process) moves it.
        # Unknown keys are never kept, so guessing cannot fill memory.
        self._verified: dict[str, str] = {}
        self._verified_at: int | None = None

    async def create(self, label: str) -> NewApiKey:
        """Create a key with ``label`` and record it in the activity feed."""
        new, params = _new_key(label)
        await self._db.execute(_INSERT + "VALUES (?, ?, ?, ?, ?)", params)
        await self._record_created(new)
        return new

    async def bootstrap(self, label: str) -> NewApiKey | None:
        """Create the first key; return None when any key exists already.

        One ``INSERT … WHERE NOT EXISTS`` statement decides, so of any number of concurrent
        calls (in this process or another) exactly one can succeed.
        """
        new, params = _new_key(label)
        inserted = await self._db.execute(
            _INSERT + "SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM api_keys)", params
        )
        if inserted != 1:
            return None
        await self._record_created(new)
        return new

    async def _record_created(self, new: NewApiKey) -> None:
        await self._activity.record(
            "api_key.created", "API Key Created", f"'{new.label}' ({new.key_prefix}…)"
        )
        self._events.publish("api_key.created",
                             ApiKeyInfo(new.id, new.label, new.key_prefix, new.created_at, None))

    async def list(self) -> list[ApiKeyInfo]:
        """Return every key in creation order, with ``last_used_at`` current to this request."""
        rows = await self._db.fetchall(
            "SELECT id, label, key_prefix, created_at, last_used_at FROM api_keys "
            "ORDER BY created_at, rowid"
        )
        return [
            ApiKeyInfo(r["id"], r["label"], r["key_prefix"], r["created_at"],
                       self._last_used.get(r["id"], r["last_used_at"]))
            for r in rows
        ]

    async def count(self) -> int:
        """Return how many keys exist."""
        return int(await self._db.fetchval("SELECT COUNT(*) FROM api_keys") or 0)

    async def revoke(self, key_id: str) -> ApiKeyInfo | None:
        """Delete the key ``key_id``; return what it was, or None when there is no such key."""
        row = await self._db.fetchone(
            "SELECT id, label, key_prefix, created_at, last_used_at FROM api_keys WHERE id = ?",
            (key_id,),
        )
        if row is None or await self._db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)) != 1:
            return None
        self._last_used.pop(key_id, None)
        info = ApiKeyInfo(row["id"], row["label"], row["key_prefix"], row["created_at"],
                          row["last_used_at"])
        await self._activity.record(
            "api_key.revoked", "API Key Revoked", f"'{info.label}' ({info.key_prefix}…)"
        )
        self._events.publish("api_key.revoked", info)
        return info

    async def authenticate(self, raw: str) -> str | None:
        """Return the id of the key ``raw``, or None when it is unknown or revoked.

        A key verified since the database last changed is answered from memory (no round
        trip to a database thread per request); any commit makes every key be looked up
        again, so a revocation counts from the next request.
        """
        digest = hash_key(raw)
        version = self._db.changes.version()
        if version is None or version != self._verified_at:
            self._verified.clear()
            self._verified_at = version
        key_id = self._verified.get(digest)
        if key_id is None:
            key_id = await self._db.fetchval("SELECT id FROM api_keys WHERE key_hash = ?",
                                             (digest,))
            if key_id is not None and version is not None and len(self._verified) < MAX_VERIFIED:
                self._verified[digest] = key_id
        if key_id is not None:
            self._last_used[key_id] = utc_now_iso()
        return key_id

    async def flush_last_used(self) -> None:
        """Write the in-memory ``last_used_at`` values in one transaction."""
        if not self._last_used:
            return
        pending, self._last_used = self._last_used, {}
        try:
            await self._db.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                [(when, key_id) for key_id, when in pending.items()],
            )
        except Exception:
            # Keep the values for the next try; newer uses since the swap win.
            self._last_used = pending | self._last_used
            raise

    async def run_flusher(self, interval: float = FLUSH_SECONDS) -> None:
        """Flush ``last_used_at`` every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush_last_used()
            except Exception:
                log.exception("could not save last_used_at of API keys; will retry")


def _new_key(label: str) -> tuple[NewApiKey, tuple[str, str, str, str, str]]:
    raw = generate_key()
    new = NewApiKey(raw, str(uuid.uuid4()), label, raw[:PREFIX_LENGTH], utc_now_iso())
    return new, (new.id, new.label, hash_key(raw), new.key_prefix, new.created_at)
