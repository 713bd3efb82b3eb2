"""SoulSync source for Spotify: metadata search, the user's playlists and liked songs, and the
user login that reads them."""
