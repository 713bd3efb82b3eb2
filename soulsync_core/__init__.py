"""SoulSync: a self-hosted music automation daemon."""

__version__ = "0.1.0"
