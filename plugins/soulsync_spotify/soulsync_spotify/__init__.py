"""SoulSync metadata source for the Spotify Web API (search, discographies, album tracks)."""
