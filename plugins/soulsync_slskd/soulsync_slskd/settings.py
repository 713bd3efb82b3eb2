"""The ``soulseek`` settings section: where slskd is, its key and folder, search pacing, filters."""

from __future__ import annotations

from soulsync_core.hooks import Section, Setting


def _check_url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return "must start with http:// or https:// (e.g. http://localhost:5030)"
    return None


SECTION = Section("soulseek", (
    Setting("soulseek.slskd_url", str, "",
            "Base URL of slskd's web API (/api/v0 lives under it), e.g. http://localhost:5030; "
            "include slskd's web.url_base if it has one. Empty disables Soulseek.",
            check=_check_url),
    Setting("soulseek.api_key", str, "",
            "An API key from slskd's web.authentication.api_keys (16 to 255 characters), sent "
            "as X-API-Key. Searching and enqueueing need the ReadWrite role.", secret=True),
    Setting("soulseek.download_path", str, "",
            "slskd's downloads folder as this host sees it (a shared volume), where completed "
            "files are looked for."),
    Setting("soulseek.search_timeout", int, 15,
            "Seconds slskd waits for more answers after the last one before it ends a search; "
            "also the longest Retry-After of slskd's 429 answers that is obeyed (at most 120).",
            minimum=1, maximum=300),
    Setting("soulseek.response_limit", int, 100,
            "slskd ends a search once this many peers answered (after the peer filters).",
            minimum=1, maximum=1000),
    Setting("soulseek.min_peer_upload_speed", int, 0,
            "Ignore peers whose upload speed, as slskd reports it in bytes per second, is lower "
            "(e.g. 1048576 for 1 MiB/s); 0 keeps every peer.", minimum=0),
    Setting("soulseek.max_peer_queue", int, 0,
            "Ignore peers with more uploads queued than this; 0 keeps every peer.", minimum=0),
    Setting("soulseek.searches_per_window", int, 30,
            "Most searches started per window (the Soulseek server bans accounts that search "
            "too often). All searches of the daemon share this budget.",
            minimum=1, maximum=1000),
    Setting("soulseek.search_window_seconds", int, 220,
            "Length of the search pacing window, in seconds.", minimum=1, maximum=86400),
    Setting("soulseek.poll_interval_seconds", float, 1.0,
            "How often a running search's state is asked for.", minimum=0.01, maximum=30),
    Setting("soulseek.timeout_seconds", float, 10.0,
            "How long one request to slskd may take, connecting included.",
            minimum=0.1, maximum=120),
), "Soulseek downloads through slskd.")
