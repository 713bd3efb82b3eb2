-- Playlist sync (see soulsync_core/playlists/): what each synced playlist held at its last
-- sync, the library track matched to each entry, and the matches people pinned.

-- One row per playlist ever synced. ``id`` is the id the client used in the URL (the source's
-- playlist id); ``snapshot_id`` the source's marker of the contents last synced (NULL when the
-- tracks came in the request); ``library_state`` the library's state that the missing tracks
-- were matched against, so that a re-sync with neither changed does no matching at all.
CREATE TABLE playlists (
    id            TEXT PRIMARY KEY,
    source        TEXT,
    name          TEXT NOT NULL,
    mode          TEXT NOT NULL,
    snapshot_id   TEXT,
    tracks_hash   TEXT NOT NULL,
    library_state TEXT NOT NULL,
    m3u8_path     TEXT,
    job_id        TEXT,
    synced_at     TEXT
);

-- The entries of a playlist at its last sync, in order. ``wanted`` is the track as asked for
-- (JSON); ``wanted_key`` the key that says two entries are the same track
-- (soulsync_core.downloads.wanted.track_key). ``library_track_id`` NULL: not in the library.
-- ``action`` says what was done about a missing track: none, wishlist, downloading,
-- downloaded.
CREATE TABLE playlist_entries (
    playlist_id      TEXT NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    wanted_key       TEXT NOT NULL,
    wanted           TEXT NOT NULL,
    library_track_id INTEGER,
    confidence       REAL,
    method           TEXT,
    action           TEXT NOT NULL DEFAULT 'none',
    download_id      INTEGER,
    PRIMARY KEY (playlist_id, position)
) WITHOUT ROWID;
CREATE INDEX playlist_entries_download ON playlist_entries (download_id)
    WHERE download_id IS NOT NULL;

-- Matches a person made: this entry is that library track (NULL: the library does not have
-- it, whatever the matcher thinks). Kept across syncs and library rescans.
CREATE TABLE playlist_pins (
    playlist_id      TEXT NOT NULL,
    wanted_key       TEXT NOT NULL,
    library_track_id INTEGER,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (playlist_id, wanted_key)
) WITHOUT ROWID;
