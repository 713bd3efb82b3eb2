-- Whole albums on the wishlist, and album downloads that skip the tracks the library has
-- (see soulsync_core/wishlist.py and soulsync_core/downloads/albums.py). Add-only.

-- ``kind`` 'album': the row is an album wanted as a whole (``track_id`` is
-- "album:<source>:<album id>", ``track_data`` the album object); its run requests it through
-- the album downloads and ``album_download_id`` is the album download fetching it now.
-- Album rows keep ``is_album`` 1, so category=albums lists them beside tracks of albums.
ALTER TABLE wishlist_tracks ADD COLUMN kind TEXT NOT NULL DEFAULT 'track';
ALTER TABLE wishlist_tracks ADD COLUMN album_download_id INTEGER;
CREATE INDEX wishlist_album_download ON wishlist_tracks (album_download_id)
    WHERE album_download_id IS NOT NULL;

-- Per tracklist entry of an album download: the library track id it already has (JSON list,
-- NULL entries for the tracks to fetch; '[]' for rows from before this migration).
ALTER TABLE album_downloads ADD COLUMN in_library TEXT NOT NULL DEFAULT '[]';
