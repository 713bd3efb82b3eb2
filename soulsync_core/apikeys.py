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


# A label is shown in `soulsync keys list`, in activity messages and in log lines: control
# characters (NUL, newlines, escape sequences, the Unicode line separators) would forge or
# break lines there, so the API schema refuses them with this pattern and the store checks it.
LABEL_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
_LABEL = re.compile(LABEL_PATTERN)


class InvalidLabel(ValueError):
    """A key label with a control character; ``str()`` says so."""


def check_label(label: str) -> str:
    """Return ``label``; raise :class:`InvalidLabel` when it holds a control character."""
    if not _LABEL.match(label):
        raise InvalidLabel("A key label must not contain control characters (newlines, tabs, "
                           "NUL, escape sequences).")
    return label


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
    profile_id: int | None = None


class NewApiKey(msgspec.Struct):
    """A key just created; ``key`` is the raw key and is never shown again."""

    key: str
    id: str
    label: str
    key_prefix: str
    created_at: str
    profile_id: int | None = None


_INSERT = "INSERT INTO api_keys (id, label, key_hash, key_prefix, created_at, profile_id) "


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
        self._verified: dict[str, tuple[str, int | None]] = {}
        self._verified_at: int | None = None
        # The profile each key was bound to when it last authenticated (None: unbound).
        self._bindings: dict[str, int | None] = {}

    async def create(self, label: str, profile_id: int | None = None) -> NewApiKey:
        """Create a key with ``label``, bound to ``profile_id`` when given (the profile must
        exist), and record it in the activity feed (InvalidLabel for a label with a control
        character)."""
        new, params = _new_key(check_label(label), profile_id)
        await self._db.execute(_INSERT + "VALUES (?, ?, ?, ?, ?, ?)", params)
        await self._record_created(new)
        return new

    async def bootstrap(self, label: str) -> NewApiKey | None:
        """Create the first key; return None when any key exists already.

        One ``INSERT … WHERE NOT EXISTS`` statement decides, so of any number of concurrent
        calls (in this process or another) exactly one can succeed. InvalidLabel as for
        :meth:`create`.
        """
        new, params = _new_key(check_label(label))
        inserted = await self._db.execute(
            _INSERT + "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM api_keys)", params
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

    async def list(self, profile_id: int | None = None) -> list[ApiKeyInfo]:
        """Return every key (only those bound to ``profile_id`` when given) in creation order,
        with ``last_used_at`` current to this request."""
        where, params = ("WHERE profile_id = ? ", (profile_id,)) if profile_id else ("", ())
        rows = await self._db.fetchall(
            "SELECT id, label, key_prefix, created_at, last_used_at, profile_id FROM api_keys "
            f"{where}ORDER BY created_at, rowid", params
        )
        return [
            ApiKeyInfo(r["id"], r["label"], r["key_prefix"], r["created_at"],
                       self._last_used.get(r["id"], r["last_used_at"]), r["profile_id"])
            for r in rows
        ]

    async def count(self) -> int:
        """Return how many keys exist."""
        return int(await self._db.fetchval("SELECT COUNT(*) FROM api_keys") or 0)

    async def revoke(self, key_id: str, profile_id: int | None = None) -> ApiKeyInfo | None:
        """Delete the key ``key_id`` (only if bound to ``profile_id`` when given); return what
        it was, or None when there is no such key."""
        row = await self._db.fetchone(
            "SELECT id, label, key_prefix, created_at, last_used_at, profile_id FROM api_keys "
            "WHERE id = ?", (key_id,),
        )
        if row is None or (profile_id and row["profile_id"] != profile_id):
            return None
        if await self._db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)) != 1:
            return None
        self._last_used.pop(key_id, None)
        self._bindings.pop(key_id, None)
        info = ApiKeyInfo(row["id"], row["label"], row["key_prefix"], row["created_at"],
                          row["last_used_at"], row["profile_id"])
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
        found = self._verified.get(digest)
        if found is None:
            row = await self._db.fetchone("SELECT id, profile_id FROM api_keys WHERE key_hash = ?",
                                          (digest,))
            found = None if row is None else (row[0], row[1])
            if found is not None and version is not None and len(self._verified) < MAX_VERIFIED:
                self._verified[digest] = found
        if found is None:
            return None
        key_id, bound = found
        self._bindings[key_id] = bound
        self._last_used[key_id] = utc_now_iso()
        return key_id

    def binding(self, key_id: str) -> int | None:
        """Return the profile the key ``key_id`` is bound to (None: unbound), as found by its
        last :meth:`authenticate` (call that first, in the same request)."""
        return self._bindings.get(key_id)

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


def _new_key(label: str, profile_id: int | None = None,
             ) -> tuple[NewApiKey, tuple[str, str, str, str, str, int | None]]:
    raw = generate_key()
    new = NewApiKey(raw, str(uuid.uuid4()), label, raw[:PREFIX_LENGTH], utc_now_iso(), profile_id)
    return new, (new.id, new.label, hash_key(raw), new.key_prefix, new.created_at, profile_id)
