"""The music library: a scan of ``library.music_dir`` mirrored into SQLite, and its queries.

``tags`` reads one file, ``scanner`` walks the folder, ``store`` writes, ``queries`` reads for
the API, ``objects`` shapes the API objects, ``folding`` makes names searchable, and
``service`` ties them to the core (scan jobs, schedule, imports, stats).
"""

from soulsync_core.library.service import LibraryService

__all__ = ["LibraryService"]
