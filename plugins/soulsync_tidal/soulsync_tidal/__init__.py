"""SoulSync source for TIDAL's developer API: a user's playlists, and catalogue search."""

__version__ = "0.1.0"
