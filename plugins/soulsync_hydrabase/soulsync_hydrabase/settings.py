"""The ``hydrabase`` settings section: which node, with which key, how long to wait for it."""

from __future__ import annotations

from soulsync_core.hooks import Section, Setting

URL = "hydrabase.url"
API_KEY = "hydrabase.api_key"
TIMEOUT = "hydrabase.timeout_seconds"

# A change to one of these closes the socket and reconnects with the new values.
CONNECTION_KEYS = frozenset({URL, API_KEY})


def _check_url(value: str) -> str | None:
    if value and not value.strip().startswith(("ws://", "wss://")):
        return "must start with ws:// or wss:// (e.g. ws://localhost:4545)"
    return None


SECTION = Section("hydrabase", (
    Setting(URL, str, "",
            "WebSocket URL of the Hydrabase node (e.g. ws://localhost:4545); empty disables "
            "the source.", check=_check_url),
    Setting(API_KEY, str, "", "The node's API key, sent as the x-api-key handshake header.",
            secret=True),
    Setting(TIMEOUT, float, 8.0,
            "How long to wait for the node to answer one request (it asks its peers first).",
            minimum=0.1, maximum=120),
), "The Hydrabase P2P metadata network (one WebSocket to a node).")
