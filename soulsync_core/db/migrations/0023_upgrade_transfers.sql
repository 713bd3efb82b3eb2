-- Quality upgrades, part two (see soulsync_core/downloads/upgrades.py): stored ranks for the
-- cutoff list, transfers that survive a restart, album folders tried and refused.

-- The quality profile rule (matching.quality.quality_rank().rule) each library file meets and
-- whether that is below the cutoff (``below``: rule > the cutoff's index), with the keys the
-- cutoff list is ordered by (artist, album, disc, track), so GET /library/upgrades is one
-- indexed range, never a ranking of every row nor a sort per request. A track without a row
-- is not ranked yet; the triggers drop a row when the file's figures or its place change or
-- the track goes, and a new profile (upgrade_rank_profile) drops them all.
CREATE TABLE track_quality (
    track_id      INTEGER PRIMARY KEY,
    rule          INTEGER NOT NULL,
    below         INTEGER NOT NULL,
    name_key      TEXT NOT NULL,
    title_key     TEXT NOT NULL,
    disc_number   INTEGER,
    track_number  INTEGER
);
CREATE INDEX track_quality_below ON track_quality
    (below, name_key, title_key, disc_number, track_number, track_id);

-- The quality profile the stored ranks were computed under and the cutoff ``below`` says (one row).
CREATE TABLE upgrade_rank_profile (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    profile  TEXT NOT NULL,
    cutoff   INTEGER
);

CREATE TRIGGER track_quality_stale AFTER UPDATE OF format, bitrate, bit_depth, sample_rate,
    album_id, artist_id, disc_number, track_number ON tracks BEGIN
    DELETE FROM track_quality WHERE track_id = old.id;
END;

CREATE TRIGGER track_quality_gone AFTER DELETE ON tracks BEGIN
    DELETE FROM track_quality WHERE track_id = old.id;
END;

CREATE TRIGGER track_quality_artist_renamed AFTER UPDATE OF name_key ON artists BEGIN
    DELETE FROM track_quality WHERE track_id IN (SELECT id FROM tracks WHERE artist_id = old.id);
END;

CREATE TRIGGER track_quality_album_renamed AFTER UPDATE OF title_key ON albums BEGIN
    DELETE FROM track_quality WHERE track_id IN (SELECT id FROM tracks WHERE album_id = old.id);
END;

-- An upgrade's file asked of the download client and not yet put in place (or given up):
-- after a restart the run picks the transfer up again (by ``transfer_id``, else by user and
-- file) instead of asking twice. ``folder`` is set when the file came with an album folder.
CREATE TABLE upgrade_transfers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id     INTEGER NOT NULL UNIQUE,
    username     TEXT NOT NULL,
    filename     TEXT NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0,
    transfer_id  TEXT,
    folder       TEXT,
    created_at   TEXT NOT NULL
);

-- Album folders tried as an upgrade (a whole album below the cutoff) and not asked for again.
CREATE TABLE upgrade_refused_folders (
    username  TEXT NOT NULL,
    folder    TEXT NOT NULL,
    reason    TEXT NOT NULL,
    tried_at  TEXT NOT NULL,
    PRIMARY KEY (username, folder)
) WITHOUT ROWID;
