-- Quality upgrades (see soulsync_core/downloads/upgrades.py).

-- Files tried as an upgrade and not taken (not better, wrong length, failed transfer): never
-- asked for again, so an upgrade run does not loop over the same peer's file. ``track_id`` is
-- the library track it was tried for.
CREATE TABLE upgrade_refused (
    username  TEXT NOT NULL,
    filename  TEXT NOT NULL,
    track_id  INTEGER,
    reason    TEXT NOT NULL,
    tried_at  TEXT NOT NULL,
    PRIMARY KEY (username, filename)
) WITHOUT ROWID;

-- Files an upgrade replaced, moved into <data dir>/trash; deleted downloads.trash_days days
-- after ``trashed_at`` (ISO-8601 UTC).
CREATE TABLE upgrade_trash (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id       INTEGER,
    original_path  TEXT NOT NULL,
    trash_path     TEXT NOT NULL,
    trashed_at     TEXT NOT NULL
);
CREATE INDEX upgrade_trash_time ON upgrade_trash (trashed_at);
