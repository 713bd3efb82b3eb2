-- Live events and notifications (soulsync_core/events.py, soulsync_core/notifications/).

-- The event id counter: one row, the highest id the running daemon may hand out. A daemon
-- continues after it, so event ids never repeat across restarts (even after a crash).
CREATE TABLE event_counter (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    reserved_through INTEGER NOT NULL
);

-- The delivery log: one row per notification delivered or given up on. ``target`` is the
-- target's name; ``error`` never holds the target's URL (it holds secrets).
CREATE TABLE notification_log (
    id         INTEGER PRIMARY KEY,
    target     TEXT NOT NULL,
    event_id   INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    ok         INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX notification_log_target ON notification_log (target, id);
