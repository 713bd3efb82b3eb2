"""The signed webhook: POST the event's JSON with an HMAC-SHA256 signature of the body.

A receiver recomputes ``hmac.new(secret, body, sha256).hexdigest()`` over the raw body and
compares it with ``X-SoulSync-Signature: sha256=<hex>`` (docs/notifications.md has the check).
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

SIGNATURE_HEADER = "X-SoulSync-Signature"
EVENT_HEADER = "X-SoulSync-Event"


class DeliveryFailed(Exception):
    """One delivery attempt failed; ``str()`` says why, without the target's URL."""


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-SoulSync-Signature`` value of ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_signed(session: aiohttp.ClientSession, url: str, secret: str, event_type: str,
                      body: bytes, seconds: float) -> str:
    """POST ``body`` to ``url`` signed with ``secret``; return the receiver's answer in short.

    Raises DeliveryFailed for a status of 300 or more, a timeout or a connection error.
    """
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body),
               EVENT_HEADER: event_type}
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=seconds)) as response:
            if response.status >= 300:
                raise DeliveryFailed(f"the receiver answered HTTP {response.status}")
            return f"HTTP {response.status}"
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {seconds:g} s") from None
    except aiohttp.ClientError as exc:
        # The exception text of a connection error names the address; keep only its kind.
        raise DeliveryFailed(f"could not connect ({type(exc).__name__})") from None
