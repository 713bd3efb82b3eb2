-- Artist and album JSON kept ready-made, so that a page of them is read, not built.
--
-- Building an artist's 26-key object with json_object() cost ~5.5 us a row, most of the SQL
-- time of a page of 50. The parts of the object that change only when the row itself changes
-- are stored as JSON text; what changes with every track written (album_count, track_count,
-- an album's duration) or depends on another table (is_watched) is spliced in when read
-- (soulsync_core/library/objects.py, STORED_ARTIST / STORED_ALBUM):
--   artist: json_head || album_count, track_count, is_watched, image_url || '}'
--   album:  json_head || track_count, duration || json_tail
-- json_head is the object's text up to the spliced keys without its closing brace, json_tail
-- the rest without its opening one. The expressions below must give exactly the keys and
-- values of ARTIST_FIELDS / ALBUM_FIELDS in objects.py, in order;
-- tests/test_library_queries.py compares the stored text with the built one after writes.
-- The triggers keep the text in step whatever statement changes a column it shows (the ISO
-- times of 0006 are set by triggers too: their UPDATE fires the *_json_update triggers).
-- Tracks are not stored (500,000 x ~1 KB would double the database); they keep json_object().

ALTER TABLE artists ADD COLUMN json_head TEXT;
ALTER TABLE albums ADD COLUMN json_head TEXT;
ALTER TABLE albums ADD COLUMN json_tail TEXT;

UPDATE artists SET json_head = rtrim(json_object(
    'id', id, 'name', name, 'thumb_url', NULL, 'banner_url', NULL, 'genres', json(genres),
    'summary', NULL, 'style', NULL, 'mood', NULL, 'label', NULL, 'server_source', 'soulsync',
    'created_at', created_iso, 'updated_at', updated_iso, 'musicbrainz_id', musicbrainz_id,
    'spotify_artist_id', spotify_artist_id, 'itunes_artist_id', itunes_artist_id,
    'audiodb_id', NULL, 'deezer_id', deezer_id, 'tidal_id', NULL, 'qobuz_id', NULL,
    'genius_id', NULL, 'lastfm_url', NULL, 'genius_url', NULL), '}');

UPDATE albums SET
    json_head = rtrim(json_object(
        'id', id, 'artist_id', artist_id,
        'artist_name', (SELECT ar.name FROM artists ar WHERE ar.id = albums.artist_id),
        'title', title, 'year', year, 'thumb_url', NULL, 'genres', json(genres)), '}'),
    json_tail = ltrim(json_object(
        'style', NULL, 'mood', NULL, 'label', NULL, 'explicit', NULL, 'record_type', record_type,
        'server_source', 'soulsync', 'created_at', created_iso, 'updated_at', updated_iso,
        'upc', NULL, 'copyright', NULL, 'musicbrainz_release_id', musicbrainz_release_id,
        'spotify_album_id', spotify_album_id, 'itunes_album_id', itunes_album_id,
        'audiodb_id', NULL, 'deezer_id', deezer_id, 'tidal_id', NULL, 'qobuz_id', NULL), '{');

CREATE TRIGGER artists_json_insert AFTER INSERT ON artists BEGIN
    UPDATE artists SET json_head = rtrim(json_object(
        'id', id, 'name', name, 'thumb_url', NULL, 'banner_url', NULL, 'genres', json(genres),
        'summary', NULL, 'style', NULL, 'mood', NULL, 'label', NULL, 'server_source', 'soulsync',
        'created_at', created_iso, 'updated_at', updated_iso, 'musicbrainz_id', musicbrainz_id,
        'spotify_artist_id', spotify_artist_id, 'itunes_artist_id', itunes_artist_id,
        'audiodb_id', NULL, 'deezer_id', deezer_id, 'tidal_id', NULL, 'qobuz_id', NULL,
        'genius_id', NULL, 'lastfm_url', NULL, 'genius_url', NULL), '}')
     WHERE id = new.id;
END;
CREATE TRIGGER artists_json_update AFTER UPDATE OF id, name, genres, created_iso, updated_iso,
    musicbrainz_id, spotify_artist_id, itunes_artist_id, deezer_id ON artists BEGIN
    UPDATE artists SET json_head = rtrim(json_object(
        'id', id, 'name', name, 'thumb_url', NULL, 'banner_url', NULL, 'genres', json(genres),
        'summary', NULL, 'style', NULL, 'mood', NULL, 'label', NULL, 'server_source', 'soulsync',
        'created_at', created_iso, 'updated_at', updated_iso, 'musicbrainz_id', musicbrainz_id,
        'spotify_artist_id', spotify_artist_id, 'itunes_artist_id', itunes_artist_id,
        'audiodb_id', NULL, 'deezer_id', deezer_id, 'tidal_id', NULL, 'qobuz_id', NULL,
        'genius_id', NULL, 'lastfm_url', NULL, 'genius_url', NULL), '}')
     WHERE id = new.id;
END;
-- Albums show their artist's name.
CREATE TRIGGER artists_json_name AFTER UPDATE OF name ON artists BEGIN
    UPDATE albums SET json_head = rtrim(json_object(
        'id', id, 'artist_id', artist_id, 'artist_name', new.name,
        'title', title, 'year', year, 'thumb_url', NULL, 'genres', json(genres)), '}')
     WHERE artist_id = new.id;
END;

CREATE TRIGGER albums_json_insert AFTER INSERT ON albums BEGIN
    UPDATE albums SET
        json_head = rtrim(json_object(
            'id', id, 'artist_id', artist_id,
            'artist_name', (SELECT ar.name FROM artists ar WHERE ar.id = albums.artist_id),
            'title', title, 'year', year, 'thumb_url', NULL, 'genres', json(genres)), '}'),
        json_tail = ltrim(json_object(
            'style', NULL, 'mood', NULL, 'label', NULL, 'explicit', NULL, 'record_type', record_type,
            'server_source', 'soulsync', 'created_at', created_iso, 'updated_at', updated_iso,
            'upc', NULL, 'copyright', NULL, 'musicbrainz_release_id', musicbrainz_release_id,
            'spotify_album_id', spotify_album_id, 'itunes_album_id', itunes_album_id,
            'audiodb_id', NULL, 'deezer_id', deezer_id, 'tidal_id', NULL, 'qobuz_id', NULL), '{')
     WHERE id = new.id;
END;
CREATE TRIGGER albums_json_update AFTER UPDATE OF id, artist_id, title, year, genres, record_type,
    created_iso, updated_iso, musicbrainz_release_id, spotify_album_id, itunes_album_id,
    deezer_id ON albums BEGIN
    UPDATE albums SET
        json_head = rtrim(json_object(
            'id', id, 'artist_id', artist_id,
            'artist_name', (SELECT ar.name FROM artists ar WHERE ar.id = albums.artist_id),
            'title', title, 'year', year, 'thumb_url', NULL, 'genres', json(genres)), '}'),
        json_tail = ltrim(json_object(
            'style', NULL, 'mood', NULL, 'label', NULL, 'explicit', NULL, 'record_type', record_type,
            'server_source', 'soulsync', 'created_at', created_iso, 'updated_at', updated_iso,
            'upc', NULL, 'copyright', NULL, 'musicbrainz_release_id', musicbrainz_release_id,
            'spotify_album_id', spotify_album_id, 'itunes_album_id', itunes_album_id,
            'audiodb_id', NULL, 'deezer_id', deezer_id, 'tidal_id', NULL, 'qobuz_id', NULL), '{')
     WHERE id = new.id;
END;
