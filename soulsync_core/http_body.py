"""Reading an outside service's answer without trusting its size.

A service that answers with hundreds of megabytes (a broken proxy, a wrong URL pointing at a
file server, an attack) must cost one failed call, not the NAS's memory. Clients read bodies
through :func:`read_bounded`; what is larger than :data:`MAX_BODY_BYTES` is refused.
"""

from __future__ import annotations

import aiohttp

from soulsync_core.hooks import ProviderError

# The largest answer a provider may send. The biggest real ones (a slskd search with
# thousands of files, a page of a big playlist) stay well under 4 MiB.
MAX_BODY_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


class BodyTooLarge(ProviderError):
    """The answer was larger than allowed; ``str()`` names the service and the limit."""


def too_large(service: str, limit: int = MAX_BODY_BYTES) -> BodyTooLarge:
    """Return the error for an answer of ``service`` larger than ``limit`` bytes."""
    return BodyTooLarge(f"{service} answered with more than {limit // (1024 * 1024)} MiB; "
                        "the answer was refused (is its address right?)")


async def read_bounded(response: aiohttp.ClientResponse, service: str,
                       limit: int = MAX_BODY_BYTES) -> bytes:
    """Return the body of ``response``; raise BodyTooLarge as soon as it exceeds ``limit``
    bytes (at once when Content-Length says so), without reading the rest."""
    if response.content_length is not None and response.content_length > limit:
        raise too_large(service, limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            raise too_large(service, limit)
        chunks.append(chunk)
    return b"".join(chunks)
