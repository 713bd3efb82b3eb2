-- Profiles (see soulsync_core/profiles.py): people sharing one SoulSync. Wishlist, watchlist,
-- playlist sync state, streaming accounts and API key bindings belong to a profile; the
-- library and downloads are shared. Profile 1 is the admin default and always exists.
--
-- Add-only: every existing row lands in profile 1 through the columns' DEFAULT 1, and no table
-- is rebuilt (a rebuild would drop columns other migrations add beside this one). Because the
-- old UNIQUE constraints (one wishlist row per track id, one watchlist row per artist) cannot
-- be dropped without a rebuild, a track or artist wanted by a second profile is one row with
-- the profile that added it first in ``profile_id`` and the others in a ``*_profiles`` table.
CREATE TABLE profiles (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    name_fold    TEXT NOT NULL UNIQUE,              -- casefolded name: names are unique
    avatar_color TEXT NOT NULL DEFAULT '#6366f1',
    is_admin     INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
INSERT INTO profiles (id, name, name_fold, avatar_color, is_admin, created_at, updated_at)
VALUES (1, 'Admin', 'admin', '#6366f1', 1, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'),
        strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));

ALTER TABLE wishlist_tracks ADD COLUMN profile_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX wishlist_profile ON wishlist_tracks (profile_id, date_added, id);
CREATE TABLE wishlist_profiles (
    wishlist_id INTEGER NOT NULL REFERENCES wishlist_tracks (id) ON DELETE CASCADE,
    profile_id  INTEGER NOT NULL,
    PRIMARY KEY (wishlist_id, profile_id)
) WITHOUT ROWID;
CREATE INDEX wishlist_profiles_profile ON wishlist_profiles (profile_id);

ALTER TABLE watchlist_artists ADD COLUMN profile_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX watchlist_profile ON watchlist_artists (profile_id);
CREATE TABLE watchlist_profiles (
    watchlist_id INTEGER NOT NULL REFERENCES watchlist_artists (id) ON DELETE CASCADE,
    profile_id   INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, profile_id)
) WITHOUT ROWID;
CREATE INDEX watchlist_profiles_profile ON watchlist_profiles (profile_id);

-- The profile whose sync (and whose account's playlist) the stored state is.
ALTER TABLE playlists ADD COLUMN profile_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX playlists_profile ON playlists (profile_id);

-- Rows of profiles other than 1 are stored under ``account`` "<name>@<profile id>" (the
-- primary key stays (account, key)); profile_id says whose they are.
ALTER TABLE account_data ADD COLUMN profile_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX account_data_profile ON account_data (profile_id);

-- A key bound to a profile acts only as that profile; NULL: profile 1 unless the request
-- names another.
ALTER TABLE api_keys ADD COLUMN profile_id INTEGER REFERENCES profiles (id) ON DELETE CASCADE;
