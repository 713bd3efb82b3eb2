-- Track search by artist, walking the rarer side first (see LibraryQueries._search_tracks).
--
-- tracks_fts holds all three folded columns in one trigram index, so a column filter such as
-- {track_artist_fold} still reads the doclists of every column: looking up "wave" there costs
-- as much as searching the whole table. Album artists are found through artists_fts (10,000
-- rows instead of 500,000) and their tracks through the indexes; this small index holds only
-- the tracks that name their own artist (track_artist_fold is NULL for all the others), so
-- that side is cheap too.
CREATE VIRTUAL TABLE tracks_artist_fts USING fts5 (track_artist_fold, content = 'tracks',
                                                   content_rowid = 'id', tokenize = 'trigram');
INSERT INTO tracks_artist_fts (rowid, track_artist_fold)
    SELECT id, track_artist_fold FROM tracks WHERE track_artist_fold IS NOT NULL;

-- External content: 'delete' must be given the indexed value, and only indexed rows.
CREATE TRIGGER tracks_artist_insert AFTER INSERT ON tracks
    WHEN new.track_artist_fold IS NOT NULL BEGIN
    INSERT INTO tracks_artist_fts (rowid, track_artist_fold) VALUES (new.id, new.track_artist_fold);
END;
CREATE TRIGGER tracks_artist_delete AFTER DELETE ON tracks
    WHEN old.track_artist_fold IS NOT NULL BEGIN
    INSERT INTO tracks_artist_fts (tracks_artist_fts, rowid, track_artist_fold)
        VALUES ('delete', old.id, old.track_artist_fold);
END;
CREATE TRIGGER tracks_artist_update AFTER UPDATE OF track_artist_fold ON tracks BEGIN
    INSERT INTO tracks_artist_fts (tracks_artist_fts, rowid, track_artist_fold)
        SELECT 'delete', old.id, old.track_artist_fold WHERE old.track_artist_fold IS NOT NULL;
    INSERT INTO tracks_artist_fts (rowid, track_artist_fold)
        SELECT new.id, new.track_artist_fold WHERE new.track_artist_fold IS NOT NULL;
END;
