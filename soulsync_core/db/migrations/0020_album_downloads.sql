-- Album downloads (POST /api/v1/downloads with an album, see soulsync_core/downloads/albums.py):
-- a whole release taken from one peer's folder. Its tracks are ordinary rows of ``downloads``.

-- ``album`` is the release asked for with its tracklist (JSON, downloads.album_store.AlbumWanted);
-- ``queries`` the Soulseek searches (JSON list), ``next_query`` the next one to run;
-- ``folders`` every (peer, folder) found with its verdict (JSON, folder_scoring.FolderScore),
-- ``chosen`` the index in ``folders`` of the folder being taken (NULL: none) and ``chosen_reason``
-- why; ``tried_folders`` the folders given up on and why (JSON); ``tracks`` the download id of
-- each tracklist entry (JSON list, NULL entries before the downloads exist).
CREATE TABLE album_downloads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    status          TEXT NOT NULL,
    album_key       TEXT NOT NULL,
    album           TEXT NOT NULL,
    client          TEXT NOT NULL,
    queries         TEXT NOT NULL DEFAULT '[]',
    next_query      INTEGER NOT NULL DEFAULT 0,
    folders         TEXT NOT NULL DEFAULT '[]',
    chosen          INTEGER,
    chosen_reason   TEXT,
    tried_folders   TEXT NOT NULL DEFAULT '[]',
    tracks          TEXT NOT NULL DEFAULT '[]',
    error           TEXT,
    note            TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);

CREATE INDEX album_downloads_status ON album_downloads (status);
CREATE INDEX album_downloads_key ON album_downloads (album_key);
