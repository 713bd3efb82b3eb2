-- The number of artists per first letter ('a'..'z', '#'): the total of
-- GET /library/artists?letter= is one row read instead of counting the letter's range of the
-- artists_letter index (21 us for the 582 "m" artists of a 500,000-track library, and twice
-- that at 1,000,000 tracks, where the rest of the page costs the same).
CREATE TABLE artist_letters (
    letter  TEXT PRIMARY KEY,
    artists INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO artist_letters (letter, artists) SELECT letter, count(*) FROM artists GROUP BY letter;

CREATE TRIGGER artist_letters_insert AFTER INSERT ON artists BEGIN
    INSERT INTO artist_letters (letter, artists) VALUES (new.letter, 1)
        ON CONFLICT (letter) DO UPDATE SET artists = artists + 1;
END;
CREATE TRIGGER artist_letters_delete AFTER DELETE ON artists BEGIN
    UPDATE artist_letters SET artists = artists - 1 WHERE letter = old.letter;
END;
CREATE TRIGGER artist_letters_update AFTER UPDATE OF letter ON artists
    WHEN old.letter IS NOT new.letter BEGIN
    UPDATE artist_letters SET artists = artists - 1 WHERE letter = old.letter;
    INSERT INTO artist_letters (letter, artists) VALUES (new.letter, 1)
        ON CONFLICT (letter) DO UPDATE SET artists = artists + 1;
END;
