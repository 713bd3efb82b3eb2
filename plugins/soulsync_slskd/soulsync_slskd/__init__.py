"""SoulSync download client for Soulseek, through slskd's REST API (``/api/v0``)."""

__version__ = "0.1.0"
