"""The settings schema: every key with its type, default, limits and secret flag.

The core declares its sections here; plugins add theirs through the settings-section hook.
Everything that reads or writes a setting (config file, environment, ``PATCH /settings``, the
database) validates through :meth:`Schema.coerce`, so there is one set of rules.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

from soulsync_core.downloads.naming import DEFAULT_PATH_TEMPLATE, check_path_template
from soulsync_core.matching.quality import (
    DEFAULT_QUALITY_PROFILE,
    check_cutoff_entry,
    check_quality_profile,
)
from soulsync_core.matching.similarity import DEFAULT_DURATION_TOLERANCE_S, DEFAULT_MIN_CONFIDENCE
from soulsync_core.notifications.targets import check_targets, check_webhooks

REDACTED = "***REDACTED***"
ENV_PREFIX = "SOULSYNC_"

SettingType = type[str] | type[int] | type[float] | type[bool] | type[list]


class SettingError(ValueError):
    """A value that does not fit the schema; ``key`` names the setting, ``str()`` says what to fix."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Setting:
    """One setting: ``key`` is the full dotted name, e.g. ``logging.level``.

    ``type`` is one of ``str, int, float, bool, list`` (a list of strings). ``choices`` makes a
    string an enum (matched case-insensitively, stored in the canonical spelling). ``check``
    returns an error message for a value that has the right type but is still wrong.
    """

    key: str
    type: SettingType
    default: Any
    description: str
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    restart_required: bool = False
    check: Callable[[Any], str | None] | None = None
    item_type: type[str] | type[dict] = str

    @property
    def env_var(self) -> str:
        """The environment variable that sets this key: dots become ``__`` (``SOULSYNC_LOGGING__LEVEL``)."""
        return ENV_PREFIX + self.key.upper().replace(".", "__")


@dataclass(frozen=True)
class Section:
    """A named group of settings; every key of its settings starts with ``name + "."``."""

    name: str
    settings: tuple[Setting, ...]
    description: str = ""


@dataclass
class Schema:
    """All known settings, by dotted key."""

    settings: dict[str, Setting] = field(default_factory=dict)

    def add_section(self, section: Section) -> None:
        """Add a section; raise ValueError when a key is outside the section or already defined."""
        for setting in section.settings:
            if not setting.key.startswith(section.name + "."):
                raise ValueError(f"setting {setting.key} does not belong to section {section.name}")
            if setting.key in self.settings:
                raise ValueError(f"setting {setting.key} is defined twice")
            self.settings[setting.key] = self.coerce_default(setting)

    @staticmethod
    def coerce_default(setting: Setting) -> Setting:
        # Validating defaults at registration makes a plugin with a bad default fail at load.
        _coerce(setting, setting.default)
        return setting

    def __contains__(self, key: object) -> bool:
        return key in self.settings

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]

    def keys(self) -> list[str]:
        """Return every dotted key, sorted."""
        return sorted(self.settings)

    def coerce(self, key: str, value: Any) -> Any:
        """Return ``value`` validated (and normalised) for ``key``; raise SettingError otherwise."""
        setting = self.settings.get(key)
        if setting is None:
            raise SettingError(key, self.unknown_key_message(key))
        return _coerce(setting, value)

    def unknown_key_message(self, key: str) -> str:
        section = key.split(".", 1)[0]
        siblings = [k.split(".", 1)[1] for k in self.keys() if k.startswith(section + ".")]
        if siblings:
            return f"Unknown setting '{key}'. Keys in section '{section}': {', '.join(siblings)}."
        sections = sorted({k.split(".", 1)[0] for k in self.settings})
        return f"Unknown setting '{key}'. Known sections: {', '.join(sections)}."

    def is_secret(self, key: str) -> bool:
        setting = self.settings.get(key)
        return bool(setting and setting.secret)

    def add_check(self, key: str, check: Callable[[Any], str | None]) -> None:
        """Add a check to ``key`` that needs what is known only at run time (the installed
        plugins); it applies to values validated from now on (``PATCH /settings``)."""
        setting = self.settings[key]
        first = setting.check

        def both(value: Any) -> str | None:
            return (first(value) if first else None) or check(value)

        self.settings[key] = replace(setting, check=both)


def _type_name(kind: SettingType) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list of strings"}[kind]


def _coerce(setting: Setting, value: Any) -> Any:
    key, kind = setting.key, setting.type
    # bool is a subclass of int; a JSON true must never pass as the integer 1.
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is list:
        ok = isinstance(value, list) and all(isinstance(v, setting.item_type) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise SettingError(key, f"{key} must be {_describe(setting)}, not {_json_type(value)}.")
    if setting.choices is not None:
        matches = [c for c in setting.choices if c.lower() == value.lower()]
        if not matches:
            raise SettingError(key, f"{key} must be one of {', '.join(setting.choices)}.")
        value = matches[0]
    if kind in (int, float):
        low, high = setting.minimum, setting.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise SettingError(key, f"{key} must be {_describe(setting)}.")
    if setting.check is not None:
        problem = setting.check(value)
        if problem:
            raise SettingError(key, f"{key}: {problem}")
    return value


def _describe(setting: Setting) -> str:
    text = "a list of objects" if setting.item_type is dict else _type_name(setting.type)
    if setting.choices:
        return f"one of {', '.join(setting.choices)}"
    low, high = setting.minimum, setting.maximum
    if low is not None and high is not None:
        return f"{text} between {_num(low)} and {_num(high)}"
    if low is not None:
        return f"{text} of at least {_num(low)}"
    if high is not None:
        return f"{text} of at most {_num(high)}"
    return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list" if not all(isinstance(v, str) for v in value) else "a list of strings"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def flatten(tree: Mapping[str, Any], schema: Schema, prefix: str = "") -> dict[str, Any]:
    """Turn nested objects and dotted keys into one flat ``{dotted_key: value}`` mapping.

    A mapping value is descended into unless its dotted key names a setting, so
    ``{"logging": {"level": "DEBUG"}}`` and ``{"logging.level": "DEBUG"}`` are the same.
    """
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and key not in schema:
            flat.update(flatten(value, schema, key + "."))
        else:
            flat[key] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{dotted_key: value}`` into nested objects (the shape ``GET /settings`` returns)."""
    tree: dict[str, Any] = {}
    for key in sorted(flat):
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = flat[key]
    return tree


def redact(flat: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Return a copy of ``flat`` with every secret value replaced by ``***REDACTED***``."""
    return {k: (REDACTED if schema.is_secret(k) else v) for k, v in flat.items()}


def parse_env_value(setting: Setting, raw: str) -> Any:
    """Convert an environment string to the setting's type (before validation)."""
    text = raw.strip()
    if setting.type is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingError(setting.key, f"{setting.env_var} must be true or false, not {raw!r}.")
    if setting.type in (int, float):
        try:
            return setting.type(text)
        except ValueError:
            raise SettingError(
                setting.key, f"{setting.env_var} must be {_describe(setting)}, not {raw!r}."
            ) from None
    if setting.type is list and setting.item_type is dict:
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            # Not the raw text: such lists hold secrets (notification URLs).
            raise SettingError(
                setting.key, f"{setting.env_var} must be a JSON list of objects ({exc})."
            ) from None
    if setting.type is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return raw


def read_env(schema: Schema, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the validated settings given by ``SOULSYNC_<SECTION>__<KEY>`` variables; a bad
    value raises SettingError naming the variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key, setting in schema.settings.items():
        raw = environ.get(setting.env_var)
        if raw is not None:
            value = parse_env_value(setting, raw)
            try:
                values[key] = schema.coerce(key, value)
            except SettingError as exc:
                # The operator looks for the variable, not the dotted key: name both.
                raise SettingError(key, f"{setting.env_var}={raw!r}: {exc}") from None
    return values


class ConfigFileError(ValueError):
    """The TOML config file is missing, unreadable or holds a value that does not validate."""


def read_config_file(path: Path, schema: Schema) -> tuple[dict[str, Any], list[str]]:
    """Return ``(validated values, unknown keys)`` from a TOML config file.

    Unknown keys are returned rather than rejected, so that a section of an uninstalled plugin
    does not stop the daemon; the caller logs them.
    """
    try:
        with path.open("rb") as handle:
            tree = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigFileError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"config file {path} cannot be read: {exc}") from None
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in flatten(tree, schema).items():
        if key not in schema:
            unknown.append(key)
            continue
        try:
            values[key] = schema.coerce(key, value)
        except SettingError as exc:
            raise ConfigFileError(f"config file {path}: {exc}") from None
    return values, unknown


def _check_some_source(order: list[str]) -> str | None:
    """Return why an empty ``search.auto_order`` is refused, else None. The installed names
    are known only at run time: the core adds that check (MetadataSearch.check_order)."""
    return None if order else "list at least one metadata source, e.g. itunes"


def _check_networks(value: list[str]) -> str | None:
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"{entry!r} is not an IP address or CIDR network (e.g. 127.0.0.1 or 10.0.0.0/8)"
    return None


RATE_LIMIT_CATEGORIES: tuple[tuple[str, int, str], ...] = (
    ("system", 120, "GET /api/v1/system/*"),
    ("search", 20, "POST /api/v1/search/*"),
    ("downloads", 10, "POST /api/v1/downloads"),
    ("write", 30, "other POST, PUT, PATCH and DELETE requests"),
    ("read", 60, "other GET requests"),
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

CORE_SECTIONS: tuple[Section, ...] = (
    Section("server", (
        Setting("server.host", str, "0.0.0.0", "Address the HTTP server listens on.",
                restart_required=True),
        Setting("server.port", int, 8008, "TCP port of the HTTP server.", minimum=1,
                maximum=65535, restart_required=True),
        Setting("server.trusted_proxies", list, [],
                "Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For header is believed "
                "when deciding a client's address for rate limits.", check=_check_networks),
        Setting("server.max_body_kb", int, 1024, "Largest request body accepted, in KiB.",
                minimum=1, maximum=65536),
    ), "The HTTP server."),
    Section("api", tuple(
        Setting(f"api.rate_limits.{name}", int, default,
                f"Requests per minute per client IP for {what}.", minimum=1, maximum=1_000_000)
        for name, default, what in RATE_LIMIT_CATEGORIES
    ), "The REST API."),
    Section("search", (
        Setting("search.auto_order", list, ["hydrabase", "spotify", "itunes"],
                "Metadata sources source=auto tries, in order; the first with results answers.",
                check=_check_some_source),
        Setting("search.timeout_seconds", float, 10.0,
                "How long one metadata source may take to answer before it is skipped.",
                minimum=0.1, maximum=120),
        Setting("search.max_cooldown_seconds", float, 300.0,
                "Longest a metadata or playlist source is left out after it answered 429, "
                "whatever its Retry-After asks.", minimum=1, maximum=86400),
    ), "Metadata search."),
    Section("plugins", (
        Setting("plugins.enabled", list, [],
                "Plugins to load by entry-point name; empty loads every installed plugin. "
                "The SOULSYNC_PLUGINS variable (comma-separated) overrides it.",
                restart_required=True),
    ), "Plugin loading."),
    Section("library", (
        Setting("library.music_dir", str, "~/Music", "The music folder SoulSync keeps complete."),
        Setting("library.scan_on_start", bool, False,
                "Scan the music folder each time SoulSync starts."),
        Setting("library.scan_interval_minutes", int, 0,
                "Scan the music folder every this many minutes; 0 never scans on a schedule.",
                minimum=0, maximum=10080),
        Setting("library.scan_workers", int, 4,
                "Files whose tags are read at the same time during a scan.", minimum=1,
                maximum=32),
        Setting("library.path_template", str, DEFAULT_PATH_TEMPLATE,
                "Where a download goes, relative to the music folder. Variables: $albumartist, "
                "$artist, $album, $title, $track (two digits), $disc, $year, $ext; each folder "
                "and file name is made safe, and the file always ends with its extension.",
                check=check_path_template),
        Setting("library.answer_cache_mb", int, 8,
                "Memory for finished library answers (artist pages, searches), reused until "
                "the database next changes; 0 turns the cache off.", minimum=0, maximum=1024),
        Setting("library.playlists_dir", str, "",
                "Where synced playlists are written as M3U8 files (paths relative to it, for "
                "media servers such as Navidrome and Jellyfin); empty means a Playlists folder "
                "inside the music folder."),
    ), "The music library."),
    Section("downloads", (
        Setting("downloads.max_concurrent", int, 3,
                "Downloads searched for, transferred or imported at the same time; the others "
                "wait, queued.", minimum=1, maximum=1000),
        Setting("downloads.quality_profile", list, list(DEFAULT_QUALITY_PROFILE),
                "Acceptable files, best first: a format with optional minimums, e.g. flac, "
                "mp3>=320, flac>=24bit>=96khz, lossless.", check=check_quality_profile),
        Setting("downloads.quality_fallback", bool, True,
                "When no file meets the quality profile, take the best other one (lossless "
                "first, then by bitrate) rather than none."),
        Setting("downloads.duration_tolerance_seconds", float, DEFAULT_DURATION_TOLERANCE_S,
                "How far a file's length may be from the wanted track's, in search results and "
                "in the downloaded file.", minimum=0.5, maximum=120),
        Setting("downloads.min_confidence", float, DEFAULT_MIN_CONFIDENCE,
                "Lowest match confidence (0 to 1) a search result needs to be downloaded.",
                minimum=0, maximum=1),
        Setting("downloads.max_attempts", int, 5,
                "Files tried for one track (a new peer or file each time) before it fails.",
                minimum=1, maximum=100),
        Setting("downloads.queued_timeout_seconds", float, 300.0,
                "A transfer the peer keeps queued this long is given up for the next file.",
                minimum=0.01, maximum=86400),
        Setting("downloads.stalled_timeout_seconds", float, 120.0,
                "A transfer that receives no data this long (stuck at 0 % or stalled later) is "
                "given up for the next file.", minimum=0.01, maximum=86400),
        Setting("downloads.monitor_interval_seconds", float, 2.0,
                "How often the transfer list is read (one request for all downloads).",
                minimum=0.01, maximum=300),
        Setting("downloads.search_timeout_seconds", float, 300.0,
                "Longest one Soulseek search may take, waiting for the search pacing and for a "
                "busy slskd (429) included; it bounds an enqueue's waits for a busy slskd too.",
                minimum=0.1, maximum=3600),
        Setting("downloads.file_wait_seconds", float, 30.0,
                "How long a completed file may take to appear in the download client's folder "
                "and stop growing.", minimum=0, maximum=3600),
        Setting("downloads.upgrade_until", str, "",
                "Quality upgrades: library tracks below this downloads.quality_profile entry "
                "(e.g. flac) are searched for again and replaced by a better file; empty is off.",
                check=check_cutoff_entry),
        Setting("downloads.upgrade_interval_hours", int, 24,
                "Run the quality upgrades every this many hours; 0 only on request "
                "(POST /api/v1/library/upgrades/run).", minimum=0, maximum=8760),
        Setting("downloads.upgrades_per_run", int, 20,
                "Most library tracks one upgrade run searches for (Soulseek searches are paced "
                "for the whole daemon); the next run goes on with the rest.", minimum=1,
                maximum=10000),
        Setting("downloads.trash_days", int, 30,
                "Days a file replaced by an upgrade stays in the trash folder of the data "
                "directory before it is deleted.", minimum=1, maximum=3650),
        Setting("downloads.album_min_coverage", float, 1.0,
                "Share of an album's tracklist (0 to 1) a peer's folder must hold to be taken "
                "for an album request; less for large compilations.", minimum=0.01, maximum=1),
        Setting("downloads.album_threshold", int, 3,
                "A wishlist run requests the whole album when this many wanted tracks share "
                "it; 0 never does.", minimum=0, maximum=1000),
    ), "Downloads: choosing files, following transfers, importing into the library."),
    Section("wishlist", (
        Setting("wishlist.interval_minutes", int, 30,
                "Process the wishlist every this many minutes; 0 only on request "
                "(POST /api/v1/wishlist/process).", minimum=0, maximum=10080),
        Setting("wishlist.concurrency", int, 3,
                "Wishlist tracks being downloaded at the same time during a run.", minimum=1,
                maximum=50),
        Setting("wishlist.retry_hours_after_2_failures", float, 4.0,
                "Hours an automatic run waits before trying a track that failed twice (after "
                "0 or 1 failures every run tries it). Manual runs try every track.",
                minimum=0, maximum=8760),
        Setting("wishlist.retry_hours_after_3_failures", float, 24.0,
                "Hours an automatic run waits before trying a track that failed 3 times.",
                minimum=0, maximum=8760),
        Setting("wishlist.retry_hours_after_more_failures", float, 168.0,
                "Hours an automatic run waits before trying a track that failed 4 times or "
                "more; tracks are never given up.", minimum=0, maximum=8760),
    ), "The wishlist: tracks wanted but not in the library yet."),
    Section("watchlist", (
        Setting("watchlist.interval_hours", int, 24,
                "Scan watched artists for new releases every this many hours; 0 only on "
                "request (POST /api/v1/watchlist/scan).", minimum=0, maximum=8760),
        Setting("watchlist.lookback_days", int, 30,
                "How far back the first scan of a newly watched artist looks for releases.",
                minimum=0, maximum=36500),
        Setting("watchlist.max_tracks_per_scan", int, 500,
                "Most tracks one scan adds to the wishlist; the scan stops there and the "
                "artists it did not finish are scanned again next time.", minimum=1,
                maximum=100000),
    ), "The watchlist: artists whose new releases are wanted."),
    Section("playlist_sync", (
        Setting("playlist_sync.mode", str, "replace",
                "What a sync does to the M3U8 file: replace (exactly the playlist's tracks that "
                "are in the library) or append (keep the file's entries, add new ones).",
                choices=("replace", "append")),
        Setting("playlist_sync.download_missing", bool, True,
                "Download a synced playlist's missing tracks at once (they always go on the "
                "wishlist too); the M3U8 is updated as they arrive."),
    ), "Playlist sync: streaming playlists mirrored into the library."),
    Section("logging", (
        Setting("logging.level", str, "INFO", "Lowest level written to the log.",
                choices=LOG_LEVELS),
        Setting("logging.access_log", bool, True, "Write one line per HTTP request."),
    ), "Logging."),
    Section("request", (
        Setting("request.notify_allow_private", bool, False,
                "Let a track request's notify_url point at this machine or the local network "
                "(loopback, private, link-local addresses); off, such URLs are refused."),
        Setting("request.notify_timeout_seconds", float, 10.0,
                "How long one POST to a track request's notify_url may take.",
                minimum=0.1, maximum=120),
        Setting("request.notify_retries", int, 3,
                "Further tries of a notify_url POST that failed (no answer, 5xx, 429), each "
                "after twice the previous wait, starting at 1 s.", minimum=0, maximum=10),
        Setting("request.keep_days", int, 30,
                "Finished track requests are forgotten this many days after they ended.",
                minimum=1, maximum=3650),
    ), "Track requests (POST /api/v1/request): the bots' request-a-track flow."),
    Section("events", (
        Setting("events.buffer_size", int, 5000,
                "Recent events kept in memory, which a client reconnecting with Last-Event-ID "
                "gets again; older gaps get a reset event.", minimum=10, maximum=1_000_000),
        Setting("events.max_streams_per_key", int, 10,
                "Event streams (GET /api/v1/events) one API key may hold open at once.",
                minimum=1, maximum=10_000),
        Setting("events.heartbeat_seconds", float, 15.0,
                "Seconds between the comment lines an idle event stream sends, so reverse "
                "proxies keep the connection.", minimum=0.01, maximum=3600),
        Setting("events.queue_size", int, 1000,
                "Events waiting for one slow stream reader; beyond it the oldest are dropped "
                "and the reader gets a lost event.", minimum=10, maximum=1_000_000),
    ), "Live events: the bus behind the SSE stream, notifications and plugin listeners."),
    Section("notifications", (
        Setting("notifications.targets", list, [],
                "Apprise targets: a list of {url, name, events} objects; url is an Apprise URL "
                "(discord://, tgram://, ntfy://, json:// ...), events a list of event types or "
                "globs (default download.failed, watchlist.release_found, service.down, "
                "playlist.sync.finished).", secret=True, item_type=dict, check=check_targets),
        Setting("notifications.webhooks", list, [],
                "Signed webhooks: a list of {url, secret, name, events} objects; each event is "
                "POSTed as JSON with X-SoulSync-Signature: sha256=<HMAC of the body>.",
                secret=True, item_type=dict, check=check_webhooks),
        Setting("notifications.retries", int, 3,
                "Retries of a failed delivery before it is given up (and logged).", minimum=0,
                maximum=10),
        Setting("notifications.retry_backoff_seconds", float, 5.0,
                "Pause before the first retry; each further retry waits twice as long.",
                minimum=0, maximum=3600),
        Setting("notifications.timeout_seconds", float, 10.0,
                "Longest one delivery attempt may take.", minimum=0.1, maximum=300),
    ), "Notifications: Apprise targets and signed webhooks fed by the events."),
    Section("backup", (
        Setting("backup.interval_hours", int, 24,
                "Back up the database every this many hours (each backup also checks its "
                "integrity); 0 only on request (soulsync backup, POST /api/v1/system/backups).",
                minimum=0, maximum=8760),
        Setting("backup.keep", int, 7,
                "Backups kept in the backup folder; older ones are removed after a new one "
                "passed its integrity check. Backups made before an upgrade are never removed.",
                minimum=1, maximum=1000),
        Setting("backup.dir", str, "",
                "Folder of the backups; empty means a backups folder in the data directory."),
    ), "Backups of the database."),
    Section("health", (
        Setting("health.min_free_disk_mb", int, 1024,
                "GET /api/v1/system/health warns when the music folder's or the data "
                "directory's filesystem has less free space than this, in MiB; 0 never warns.",
                minimum=0, maximum=100_000_000),
        Setting("health.check_interval_seconds", float, 60.0,
                "How often the outside services (slskd, metadata sources) are checked in the "
                "background for GET /api/v1/system/status.", minimum=0.05, maximum=86400),
        Setting("health.retry_interval_seconds", float, 15.0,
                "How often they are checked while one is down, so it is taken back soon "
                "after it recovers.", minimum=0.05, maximum=86400),
    ), "The health list (GET /api/v1/system/health)."),
    Section("metrics", (
        Setting("metrics.public", bool, False,
                "Serve GET /metrics without an API key (for a Prometheus on a trusted network); "
                "off, a scrape needs a key like the API."),
    ), "Prometheus metrics (GET /metrics)."),
)


def core_schema(extra: Iterable[Section] = ()) -> Schema:
    """Return a schema holding the core sections plus ``extra`` (plugins' sections)."""
    schema = Schema()
    for section in (*CORE_SECTIONS, *extra):
        schema.add_section(section)
    return schema
