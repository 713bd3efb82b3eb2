-- The library: a mirror of the audio files in library.music_dir (see soulsync_core/library/).
--
-- Speed rules (a 500,000-track library must answer in milliseconds on a small NAS):
-- * every API query walks an index or the FTS5 trigram index, never a whole table;
-- * counts (per artist, per album, totals, per genre) are maintained by the triggers below,
--   never computed with COUNT(*) per request;
-- * *_fold columns hold the unidecode-folded lower-case text that searches compare with.
-- Timestamps are Unix seconds (an ISO string per row would cost ~50 bytes x 500,000 rows).
-- Ids use AUTOINCREMENT so that an id once shown to a client never names another row later.

CREATE TABLE artists (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL,
    name_key          TEXT NOT NULL UNIQUE,      -- case-folded name: one artist per spelling
    name_fold         TEXT NOT NULL,
    letter            TEXT NOT NULL,             -- 'a'..'z' or '#', from name_fold
    genres            TEXT NOT NULL DEFAULT '[]',
    musicbrainz_id    TEXT,
    spotify_artist_id TEXT,
    itunes_artist_id  TEXT,
    deezer_id         TEXT,
    album_count       INTEGER NOT NULL DEFAULT 0,
    track_count       INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX artists_name ON artists (name_fold, id);
CREATE INDEX artists_letter ON artists (letter, name_fold, id);
CREATE INDEX artists_musicbrainz ON artists (musicbrainz_id) WHERE musicbrainz_id IS NOT NULL;
CREATE INDEX artists_spotify ON artists (spotify_artist_id) WHERE spotify_artist_id IS NOT NULL;
CREATE INDEX artists_itunes ON artists (itunes_artist_id) WHERE itunes_artist_id IS NOT NULL;
CREATE INDEX artists_deezer ON artists (deezer_id) WHERE deezer_id IS NOT NULL;

CREATE TABLE albums (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    artist_id              INTEGER NOT NULL REFERENCES artists (id),
    title                  TEXT NOT NULL,
    title_key              TEXT NOT NULL,          -- case-folded title
    title_fold             TEXT NOT NULL,
    release_key            TEXT NOT NULL DEFAULT '',  -- MusicBrainz release id, when tagged
    year                   INTEGER,
    genres                 TEXT NOT NULL DEFAULT '[]',
    record_type            TEXT NOT NULL DEFAULT 'album',
    track_count            INTEGER NOT NULL DEFAULT 0,
    duration               INTEGER NOT NULL DEFAULT 0,  -- ms, sum over its tracks
    musicbrainz_release_id TEXT,
    spotify_album_id       TEXT,
    itunes_album_id        TEXT,
    deezer_id              TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    UNIQUE (artist_id, title_key, release_key)
);
CREATE INDEX albums_artist_year ON albums (artist_id, year, title_fold);
CREATE INDEX albums_title ON albums (title_fold, id);
CREATE INDEX albums_year ON albums (year, title_fold, id);
CREATE INDEX albums_musicbrainz ON albums (musicbrainz_release_id) WHERE musicbrainz_release_id IS NOT NULL;
CREATE INDEX albums_spotify ON albums (spotify_album_id) WHERE spotify_album_id IS NOT NULL;
CREATE INDEX albums_itunes ON albums (itunes_album_id) WHERE itunes_album_id IS NOT NULL;
CREATE INDEX albums_deezer ON albums (deezer_id) WHERE deezer_id IS NOT NULL;

-- Folders that hold audio files; a scan compares the files of each folder with its rows.
CREATE TABLE folders (
    id   INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);

CREATE TABLE tracks (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    album_id                 INTEGER NOT NULL REFERENCES albums (id),
    artist_id                INTEGER NOT NULL,  -- the album's artist (denormalised)
    folder_id                INTEGER NOT NULL REFERENCES folders (id),
    file_name                TEXT NOT NULL,
    title                    TEXT NOT NULL,
    title_fold               TEXT NOT NULL,
    artist_fold              TEXT NOT NULL,     -- the album artist, folded
    track_artist             TEXT,
    track_artist_fold        TEXT,              -- NULL when it is the album artist
    track_number             INTEGER,
    disc_number              INTEGER NOT NULL DEFAULT 1,
    year                     INTEGER,
    genres                   TEXT,              -- JSON list, NULL for none
    duration                 INTEGER,           -- ms
    format                   TEXT NOT NULL,
    bitrate                  INTEGER,           -- kbps
    sample_rate              INTEGER,
    bit_depth                INTEGER,
    bpm                      REAL,
    file_size                INTEGER NOT NULL,
    file_mtime               INTEGER NOT NULL,  -- ns
    musicbrainz_recording_id TEXT,
    isrc                     TEXT,
    spotify_track_id         TEXT,
    itunes_track_id          TEXT,
    deezer_id                TEXT,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    UNIQUE (folder_id, file_name)
);
CREATE INDEX tracks_album ON tracks (album_id, disc_number, track_number, title_fold);
CREATE INDEX tracks_title ON tracks (title_fold);
-- Finds a moved file: same size and mtime as a row whose path no longer exists.
CREATE INDEX tracks_size ON tracks (file_size);
CREATE INDEX tracks_musicbrainz ON tracks (musicbrainz_recording_id) WHERE musicbrainz_recording_id IS NOT NULL;
CREATE INDEX tracks_isrc ON tracks (isrc) WHERE isrc IS NOT NULL;
CREATE INDEX tracks_spotify ON tracks (spotify_track_id) WHERE spotify_track_id IS NOT NULL;
CREATE INDEX tracks_itunes ON tracks (itunes_track_id) WHERE itunes_track_id IS NOT NULL;
CREATE INDEX tracks_deezer ON tracks (deezer_id) WHERE deezer_id IS NOT NULL;

-- Audio files that could not be read, so that an unchanged broken file is not re-read (and
-- warned about) by every scan.
CREATE TABLE library_skipped (
    folder_id  INTEGER NOT NULL REFERENCES folders (id),
    file_name  TEXT NOT NULL,
    file_size  INTEGER NOT NULL,
    file_mtime INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (folder_id, file_name)
) WITHOUT ROWID;

-- The maintained totals (one row).
CREATE TABLE library_stats (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    artists     INTEGER NOT NULL DEFAULT 0,
    albums      INTEGER NOT NULL DEFAULT 0,
    tracks      INTEGER NOT NULL DEFAULT 0,
    last_update TEXT
);
INSERT INTO library_stats (id) VALUES (1);

-- Artists and albums per genre, for GET /library/genres.
CREATE TABLE library_genres (
    source TEXT NOT NULL,      -- 'artists' or 'albums'
    name   TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (source, name)
) WITHOUT ROWID;

-- Substring search: FTS5 trigram indexes over the folded columns (external content).
CREATE VIRTUAL TABLE artists_fts USING fts5 (name_fold, content = 'artists', content_rowid = 'id',
                                             tokenize = 'trigram');
CREATE VIRTUAL TABLE albums_fts USING fts5 (title_fold, content = 'albums', content_rowid = 'id',
                                            tokenize = 'trigram');
CREATE VIRTUAL TABLE tracks_fts USING fts5 (title_fold, artist_fold, track_artist_fold,
                                            content = 'tracks', content_rowid = 'id',
                                            tokenize = 'trigram');

-- Artists: totals and search index.
CREATE TRIGGER artists_insert AFTER INSERT ON artists BEGIN
    UPDATE library_stats SET artists = artists + 1 WHERE id = 1;
    INSERT INTO artists_fts (rowid, name_fold) VALUES (new.id, new.name_fold);
END;
CREATE TRIGGER artists_delete AFTER DELETE ON artists BEGIN
    UPDATE library_stats SET artists = artists - 1 WHERE id = 1;
    INSERT INTO artists_fts (artists_fts, rowid, name_fold) VALUES ('delete', old.id, old.name_fold);
    UPDATE library_genres SET count = count - 1
     WHERE source = 'artists' AND name IN (SELECT value FROM json_each(old.genres));
    DELETE FROM library_genres WHERE source = 'artists' AND count <= 0;
END;
CREATE TRIGGER artists_genres AFTER UPDATE OF genres ON artists BEGIN
    UPDATE library_genres SET count = count - 1
     WHERE source = 'artists' AND name IN (SELECT value FROM json_each(old.genres));
    INSERT INTO library_genres (source, name, count)
        SELECT 'artists', value, 1 FROM json_each(new.genres) WHERE true
        ON CONFLICT (source, name) DO UPDATE SET count = count + 1;
    DELETE FROM library_genres WHERE source = 'artists' AND count <= 0;
END;

-- Albums: the artist's album count, totals, search index; an artist left without albums goes.
CREATE TRIGGER albums_insert AFTER INSERT ON albums BEGIN
    UPDATE artists SET album_count = album_count + 1 WHERE id = new.artist_id;
    UPDATE library_stats SET albums = albums + 1 WHERE id = 1;
    INSERT INTO albums_fts (rowid, title_fold) VALUES (new.id, new.title_fold);
END;
CREATE TRIGGER albums_delete AFTER DELETE ON albums BEGIN
    UPDATE library_stats SET albums = albums - 1 WHERE id = 1;
    INSERT INTO albums_fts (albums_fts, rowid, title_fold) VALUES ('delete', old.id, old.title_fold);
    UPDATE library_genres SET count = count - 1
     WHERE source = 'albums' AND name IN (SELECT value FROM json_each(old.genres));
    DELETE FROM library_genres WHERE source = 'albums' AND count <= 0;
    UPDATE artists SET album_count = album_count - 1 WHERE id = old.artist_id;
    DELETE FROM artists WHERE id = old.artist_id AND album_count <= 0;
END;
CREATE TRIGGER albums_genres AFTER UPDATE OF genres ON albums BEGIN
    UPDATE library_genres SET count = count - 1
     WHERE source = 'albums' AND name IN (SELECT value FROM json_each(old.genres));
    INSERT INTO library_genres (source, name, count)
        SELECT 'albums', value, 1 FROM json_each(new.genres) WHERE true
        ON CONFLICT (source, name) DO UPDATE SET count = count + 1;
    DELETE FROM library_genres WHERE source = 'albums' AND count <= 0;
END;

-- Tracks: counts and duration of album and artist, totals, search index; an album left
-- without tracks goes (and through albums_delete, an artist left without albums).
CREATE TRIGGER tracks_insert AFTER INSERT ON tracks BEGIN
    UPDATE albums SET track_count = track_count + 1, duration = duration + coalesce(new.duration, 0)
     WHERE id = new.album_id;
    UPDATE artists SET track_count = track_count + 1 WHERE id = new.artist_id;
    UPDATE library_stats SET tracks = tracks + 1 WHERE id = 1;
    INSERT INTO tracks_fts (rowid, title_fold, artist_fold, track_artist_fold)
        VALUES (new.id, new.title_fold, new.artist_fold, new.track_artist_fold);
END;
CREATE TRIGGER tracks_delete AFTER DELETE ON tracks BEGIN
    INSERT INTO tracks_fts (tracks_fts, rowid, title_fold, artist_fold, track_artist_fold)
        VALUES ('delete', old.id, old.title_fold, old.artist_fold, old.track_artist_fold);
    UPDATE library_stats SET tracks = tracks - 1 WHERE id = 1;
    UPDATE artists SET track_count = track_count - 1 WHERE id = old.artist_id;
    UPDATE albums SET track_count = track_count - 1, duration = duration - coalesce(old.duration, 0)
     WHERE id = old.album_id;
    DELETE FROM albums WHERE id = old.album_id AND track_count <= 0;
END;
CREATE TRIGGER tracks_move AFTER UPDATE OF album_id, artist_id, duration ON tracks BEGIN
    UPDATE artists SET track_count = track_count - 1 WHERE id = old.artist_id;
    UPDATE artists SET track_count = track_count + 1 WHERE id = new.artist_id;
    UPDATE albums SET track_count = track_count - 1, duration = duration - coalesce(old.duration, 0)
     WHERE id = old.album_id;
    UPDATE albums SET track_count = track_count + 1, duration = duration + coalesce(new.duration, 0)
     WHERE id = new.album_id;
    DELETE FROM albums WHERE id = old.album_id AND track_count <= 0;
END;
CREATE TRIGGER tracks_search AFTER UPDATE OF title_fold, artist_fold, track_artist_fold ON tracks BEGIN
    INSERT INTO tracks_fts (tracks_fts, rowid, title_fold, artist_fold, track_artist_fold)
        VALUES ('delete', old.id, old.title_fold, old.artist_fold, old.track_artist_fold);
    INSERT INTO tracks_fts (rowid, title_fold, artist_fold, track_artist_fold)
        VALUES (new.id, new.title_fold, new.artist_fold, new.track_artist_fold);
END;
