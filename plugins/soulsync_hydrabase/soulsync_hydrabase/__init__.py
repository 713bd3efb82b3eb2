"""SoulSync metadata source backed by a Hydrabase node, reached over one persistent WebSocket."""

__version__ = "0.1.0"
