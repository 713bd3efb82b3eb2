-- Wishlist: tracks wanted but not in the library yet. See soulsync_core/wishlist.py.
-- No "processing" state exists: a track being fetched only carries the id of its download,
-- a persisted row that finishes on its own (after a restart too), so nothing can be left
-- half-done by a crash. Timestamps are ISO-8601 UTC text, so text order is time order.
CREATE TABLE wishlist_tracks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id       TEXT NOT NULL UNIQUE,          -- provider track id (spotify_track_id on the wire)
    track_data     TEXT NOT NULL,                 -- JSON: the track object as given
    track_name     TEXT NOT NULL,
    artist_name    TEXT NOT NULL,
    album_name     TEXT,
    is_album       INTEGER NOT NULL DEFAULT 0,    -- album.album_type == 'album' (category=albums)
    provider       TEXT,
    match_key      TEXT NOT NULL,                 -- folded first artist | title: "already wanted"
    failure_reason TEXT,
    retry_count    INTEGER NOT NULL DEFAULT 0,
    last_attempted TEXT,
    download_id    INTEGER,                       -- the download fetching it now, if any
    date_added     TEXT NOT NULL,
    source_type    TEXT NOT NULL DEFAULT 'api',
    source_info    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX wishlist_added ON wishlist_tracks (date_added, id);
CREATE INDEX wishlist_category ON wishlist_tracks (is_album, date_added, id);
CREATE INDEX wishlist_match ON wishlist_tracks (match_key);
CREATE INDEX wishlist_download ON wishlist_tracks (download_id) WHERE download_id IS NOT NULL;

-- Watched artists: (source, artist_id) names the artist at the metadata provider that owns
-- the id. last_scan_at is the start of the last scan that covered every release of the artist.
CREATE TABLE watchlist_artists (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    source               TEXT NOT NULL,
    artist_id            TEXT NOT NULL,
    artist_name          TEXT NOT NULL,
    name_fold            TEXT NOT NULL,           -- library folding, for is_watched by name
    image_url            TEXT,
    include_albums       INTEGER NOT NULL DEFAULT 1,
    include_eps          INTEGER NOT NULL DEFAULT 1,
    include_singles      INTEGER NOT NULL DEFAULT 1,
    include_live         INTEGER NOT NULL DEFAULT 0,
    include_remixes      INTEGER NOT NULL DEFAULT 0,
    include_acoustic     INTEGER NOT NULL DEFAULT 0,
    include_compilations INTEGER NOT NULL DEFAULT 0,
    last_scan_at         TEXT,
    date_added           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (source, artist_id)
);
CREATE INDEX watchlist_artist_id ON watchlist_artists (artist_id);
CREATE INDEX watchlist_name ON watchlist_artists (name_fold);

-- When each periodic job runs next, so a restart neither skips nor repeats a daily scan.
CREATE TABLE job_schedule (
    kind        TEXT PRIMARY KEY,
    next_run_at TEXT NOT NULL
);
