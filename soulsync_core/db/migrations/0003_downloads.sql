-- Downloads: one row per wanted track, from the request to a file in the library (or a reason
-- why not). See soulsync_core/downloads/. JSON columns hold what is only ever read whole.
-- Timestamps are ISO-8601 UTC text like every other table read by the API; status_changed_at
-- is epoch seconds because clients sort by it (the public server's status_change_time).
-- AUTOINCREMENT: a download id once shown to a client never names another download later.

CREATE TABLE downloads (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    status            TEXT NOT NULL CHECK (status IN ('queued', 'searching', 'downloading',
                                                      'post_processing', 'completed', 'failed',
                                                      'not_found', 'cancelled')),
    track_key         TEXT NOT NULL,             -- the same track asked for twice has one key
    track_name        TEXT NOT NULL,
    artist_name       TEXT NOT NULL,
    album_name        TEXT,
    wanted            TEXT NOT NULL,             -- JSON: the track as requested
    client            TEXT NOT NULL,             -- name of the download client (soulseek)
    queries           TEXT NOT NULL DEFAULT '[]',  -- JSON: the search queries, best first
    next_query        INTEGER NOT NULL DEFAULT 0,  -- index of the first query not searched yet
    candidates        TEXT NOT NULL DEFAULT '[]',  -- JSON: ranked results with their breakdown
    tried             TEXT NOT NULL DEFAULT '[]',  -- JSON: finished attempts and their outcome
    attempts          INTEGER NOT NULL DEFAULT 0,  -- files asked for (enqueued), the current one included
    username          TEXT,                      -- the current attempt: peer, remote path, size
    filename          TEXT,
    size              INTEGER,
    quality           TEXT,
    transfer_id       TEXT,                      -- the client's transfer id; NULL while enqueueing
    transfer_state    TEXT,
    progress          REAL NOT NULL DEFAULT 0,
    bytes_transferred INTEGER NOT NULL DEFAULT 0,
    speed             REAL NOT NULL DEFAULT 0,   -- bytes/s
    error             TEXT,
    note              TEXT,
    final_path        TEXT,                      -- set before the move, so a restart can finish it
    library_track_id  INTEGER,
    tagged            INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    status_changed_at REAL NOT NULL,
    finished_at       TEXT
);
CREATE INDEX downloads_status ON downloads (status, id);
-- Finds an unfinished download of the same track, so that asking twice does not fetch twice.
CREATE INDEX downloads_unfinished_track ON downloads (track_key)
    WHERE status IN ('queued', 'searching', 'downloading', 'post_processing');
