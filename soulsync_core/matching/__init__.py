"""The one matching module: is this file or library track the wanted recording, and which is best.

Pure, synchronous functions shared by the download ranking, the wishlist and playlist sync:

* :mod:`.text` — folding, title cleaning, version markers, artist credits (noise vs version
  decisions are documented there);
* :mod:`.queries` — Soulseek search queries for a wanted track;
* :mod:`.paths` — what a Soulseek remote path says about its file;
* :mod:`.quality` — audio formats and the quality profile setting;
* :mod:`.similarity` — gates and confidence, and :func:`track_similarity` for library tracks;
* :mod:`.ranking` — scoring and ordering search results, with reasons.
"""

from soulsync_core.matching.paths import RemotePath, parse_remote_path
from soulsync_core.matching.quality import (
    DEFAULT_QUALITY_PROFILE,
    QualityProfile,
    QualityRule,
    audio_format,
    check_quality_profile,
    parse_quality_profile,
    quality_label,
)
from soulsync_core.matching.queries import search_queries
from soulsync_core.matching.ranking import Scored, peer_score, rank_candidates, score_candidate
from soulsync_core.matching.similarity import (
    DEFAULT_DURATION_TOLERANCE_S,
    DEFAULT_MIN_CONFIDENCE,
    MatchScore,
    TrackInfo,
    artist_similarity,
    title_similarity,
    track_similarity,
)
from soulsync_core.matching.text import (
    TitleInfo,
    artist_key,
    clean_title,
    credit_names,
    fold,
    parse_title,
    split_artists,
    version_tags,
)

__all__ = [
    "DEFAULT_DURATION_TOLERANCE_S",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_QUALITY_PROFILE",
    "MatchScore",
    "QualityProfile",
    "QualityRule",
    "RemotePath",
    "Scored",
    "TitleInfo",
    "TrackInfo",
    "artist_key",
    "artist_similarity",
    "audio_format",
    "check_quality_profile",
    "clean_title",
    "credit_names",
    "fold",
    "parse_quality_profile",
    "parse_remote_path",
    "parse_title",
    "peer_score",
    "quality_label",
    "rank_candidates",
    "score_candidate",
    "search_queries",
    "split_artists",
    "title_similarity",
    "track_similarity",
    "version_tags",
]
