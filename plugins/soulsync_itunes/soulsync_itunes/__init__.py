"""SoulSync metadata source backed by the iTunes Search API (``/search`` and ``/lookup``)."""

__version__ = "0.1.0"
