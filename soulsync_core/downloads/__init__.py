"""Downloads: a wanted track becomes a correctly tagged file in the library.

``models`` holds the persisted shapes, ``store`` all of their SQL, ``transfers`` the monitor's
verdict on one transfer (states and timeouts), ``naming`` the library path template and its
sanitising, ``tagging`` the blocking mutagen work, ``importer`` the file's way from the
client's folder into the library, and ``service`` ties them together (requests, workers, the
one monitor loop, cancellation, restart).

This ``__init__`` imports nothing, so that :mod:`soulsync_core.config` can use ``naming``
without importing the service (which imports the core's settings).
"""
