-- Artists' and albums' timestamps also stored as the ISO text the API returns.
--
-- Formatting with strftime() per row was a quarter of the SQL time of an artist page. There
-- are few artists and albums (10,000 and 50,000 for 500,000 tracks: ~3 MB), so their text is
-- kept beside the Unix seconds; tracks keep formatting per row (see 0002 for why). The
-- triggers keep the text in step with created_at and updated_at whatever statement sets them.
ALTER TABLE artists ADD COLUMN created_iso TEXT;
ALTER TABLE artists ADD COLUMN updated_iso TEXT;
ALTER TABLE albums ADD COLUMN created_iso TEXT;
ALTER TABLE albums ADD COLUMN updated_iso TEXT;

UPDATE artists SET created_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch'),
                   updated_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', updated_at, 'unixepoch');
UPDATE albums SET created_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch'),
                  updated_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', updated_at, 'unixepoch');

CREATE TRIGGER artists_iso_insert AFTER INSERT ON artists BEGIN
    UPDATE artists SET created_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.created_at, 'unixepoch'),
                       updated_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.updated_at, 'unixepoch')
     WHERE id = new.id;
END;
CREATE TRIGGER artists_iso_update AFTER UPDATE OF created_at, updated_at ON artists BEGIN
    UPDATE artists SET created_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.created_at, 'unixepoch'),
                       updated_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.updated_at, 'unixepoch')
     WHERE id = new.id;
END;
CREATE TRIGGER albums_iso_insert AFTER INSERT ON albums BEGIN
    UPDATE albums SET created_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.created_at, 'unixepoch'),
                      updated_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.updated_at, 'unixepoch')
     WHERE id = new.id;
END;
CREATE TRIGGER albums_iso_update AFTER UPDATE OF created_at, updated_at ON albums BEGIN
    UPDATE albums SET created_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.created_at, 'unixepoch'),
                      updated_iso = strftime('%Y-%m-%dT%H:%M:%S+00:00', new.updated_at, 'unixepoch')
     WHERE id = new.id;
END;
