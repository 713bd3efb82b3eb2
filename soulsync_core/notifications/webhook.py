"""The signed webhook: POST the event's JSON with an HMAC-SHA256 signature of the body.

A receiver recomputes ``hmac.new(secret, body, sha256).hexdigest()`` over the raw body and
compares it with ``X-SoulSync-Signature: sha256=<hex>`` (docs/notifications.md has the check).
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from soulsync_core.outbound import post_json

SIGNATURE_HEADER = "X-SoulSync-Signature"
EVENT_HEADER = "X-SoulSync-Event"


class DeliveryFailed(Exception):
    """One delivery attempt failed; ``str()`` says why, without the target's URL."""


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-SoulSync-Signature`` value of ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_signed(session: aiohttp.ClientSession, url: str, secret: str, event_type: str,
                      body: bytes, seconds: float) -> str:
    """POST ``body`` to ``url`` signed with ``secret``, once, through the one outbound POST
    (:func:`soulsync_core.outbound.post_json`); return the receiver's answer in short.

    Raises DeliveryFailed for a status of 300 or more, a timeout or a connection error; its
    reason never holds the URL. Webhook URLs come from the operator's settings, not from API
    clients, so a receiver on the LAN (Home Assistant on the NAS) is allowed.
    """
    headers = {SIGNATURE_HEADER: signature(secret, body), EVENT_HEADER: event_type}
    result = await post_json(session, url, body, allow_private=True, headers=headers,
                             timeout_seconds=seconds, retries=0)
    if not result.delivered:
        raise DeliveryFailed(result.error or "not delivered")
    return f"HTTP {result.status}"
