"""Accuracy of the shared matcher over a hand-labelled set of (wanted, library track) pairs.

``tests/data/match_pairs.jsonl`` holds one pair a line, written by hand from real releases
(streaming-service titles on the wanted side, typical file tags on the library side)::

    {"wanted": [title, [artists], album, seconds, isrc?],
     "candidate": [title, [album artist, track artist?], album, seconds, isrc?],
     "same": true, "note": "what the pair tests"}

``seconds`` is null when the length is unknown; ``same`` says whether the two are the same
recording. Every pair runs through :func:`track_similarity` with the default settings; the
matcher must keep precision >= 0.98 and recall >= 0.95 on the whole set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from soulsync_core.matching import TrackInfo, track_similarity

PAIRS_FILE = Path(__file__).parent / "data" / "match_pairs.jsonl"
MIN_PRECISION = 0.98
MIN_RECALL = 0.95


def _info(fields: list[Any]) -> TrackInfo:
    title, artists, album, seconds, *rest = fields
    return TrackInfo(title, tuple(artists), album, round((seconds or 0) * 1000), rest[0] if rest else None)


def load_pairs() -> list[dict[str, Any]]:
    """Return the labelled pairs, in file order."""
    with PAIRS_FILE.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_the_labelled_set_is_large_balanced_and_described() -> None:
    pairs = load_pairs()
    positives = sum(p["same"] for p in pairs)
    assert len(pairs) >= 300
    assert 0.4 <= positives / len(pairs) <= 0.6
    assert all(p["note"].strip() for p in pairs)
    keys = [json.dumps([p["wanted"], p["candidate"]], ensure_ascii=False) for p in pairs]
    assert len(set(keys)) == len(keys), "a pair is listed twice"


def test_precision_and_recall_on_the_labelled_set() -> None:
    pairs = load_pairs()
    true_pos = false_pos = false_neg = 0
    wrong: list[str] = []
    for number, pair in enumerate(pairs, start=1):
        score = track_similarity(_info(pair["wanted"]), _info(pair["candidate"]))
        if score.matched and pair["same"]:
            true_pos += 1
        elif score.matched:
            false_pos += 1
        elif pair["same"]:
            false_neg += 1
        if score.matched != pair["same"]:
            kind = "false match" if score.matched else "missed"
            wrong.append(f"line {number} {kind} ({pair['note']}): {pair['wanted'][:2]} vs "
                         f"{pair['candidate'][:2]}; confidence {score.confidence}, {score.reasons}")
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / (true_pos + false_neg)
    report = (f"precision {precision:.3f}, recall {recall:.3f} over {len(pairs)} pairs; "
              "misclassified:\n" + "\n".join(wrong))
    assert precision >= MIN_PRECISION and recall >= MIN_RECALL, report


@pytest.mark.parametrize("note", ["feat. in wanted title", "40 s shorter: an edit", "cover"])
def test_examples_from_the_set_behave(note: str) -> None:
    pair = next(p for p in load_pairs() if p["note"] == note)
    assert track_similarity(_info(pair["wanted"]), _info(pair["candidate"])).matched == pair["same"]
