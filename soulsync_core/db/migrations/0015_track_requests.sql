-- Track requests (POST /api/v1/request, see soulsync_core/track_requests.py): what a bot asked
-- for, what it was resolved to, the download started for it and the notification owed.

-- ``asked`` is the request as given (JSON: {query} or {title, artist, duration_ms});
-- ``match`` the metadata track it was resolved to (JSON, NULL before); ``metadata`` the
-- client's passthrough object (JSON). ``notify_state``: none (no notify_url), pending,
-- delivered, failed.
CREATE TABLE track_requests (
    id                 TEXT PRIMARY KEY,
    query              TEXT NOT NULL,
    asked              TEXT NOT NULL,
    force              INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    already_in_library INTEGER NOT NULL DEFAULT 0,
    match              TEXT,
    download_id        INTEGER,
    library_track_id   INTEGER,
    error              TEXT,
    metadata           TEXT NOT NULL DEFAULT '{}',
    notify_url         TEXT,
    notify_state       TEXT NOT NULL DEFAULT 'none',
    notify_attempts    INTEGER NOT NULL DEFAULT 0,
    notify_error       TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    completed_at       TEXT
);

CREATE INDEX track_requests_status ON track_requests (status);
CREATE INDEX track_requests_download ON track_requests (download_id) WHERE download_id IS NOT NULL;
CREATE INDEX track_requests_notify ON track_requests (notify_state) WHERE notify_state = 'pending';
CREATE INDEX track_requests_completed ON track_requests (completed_at) WHERE completed_at IS NOT NULL;
