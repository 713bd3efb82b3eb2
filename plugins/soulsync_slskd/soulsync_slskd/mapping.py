"""slskd's JSON turned into SoulSync models: search responses into candidates, transfers.

slskd omits attributes it does not know (an MP3 has no ``bitDepth``, a FLAC no ``bitRate``), so
every optional field is read with ``.get``. Transfer states are flag strings such as
``"Completed, Rejected"``; :func:`transfer_state` maps them:

=====================================================================  ===========  ===========
slskd ``state``                                                        state        ``error``
=====================================================================  ===========  ===========
``Requested``, ``Queued, Remotely``, ``Queued, Locally``,              queued       None
``Initializing`` (and anything else not completed)
``InProgress``                                                         downloading  None
``Completed, Succeeded``                                               completed    None
``Completed, Cancelled``                                               cancelled    ``Cancelled``
``Completed, Errored`` / ``Rejected`` / ``TimedOut`` / ``Aborted`` …   failed       the flag, then
                                                                                    slskd's reason
=====================================================================  ===========  ===========
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from soulsync_core.models import Candidate, Transfer, TransferState

Row = dict[str, Any]

COMPLETED = "Completed"
SUCCEEDED = "Succeeded"
CANCELLED = "Cancelled"


def extension_of(filename: str, reported: str = "") -> str:
    """Return the lower-case extension of a remote path, or slskd's ``extension`` without one.

    Peers' own ``extension`` is unreliable (Nicotine+ sends ""), the file name is not.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[1] if "." in name[1:] else ""
    return (suffix or reported.lstrip(".")).lower()


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def to_candidate(response: Row, file: Row) -> Candidate:
    """Map one file of one peer's search response."""
    filename = str(file.get("filename", ""))
    return Candidate(
        username=str(response.get("username", "")),
        filename=filename,
        size=_int_or_none(file.get("size")) or 0,
        extension=extension_of(filename, str(file.get("extension") or "")),
        bitrate=_int_or_none(file.get("bitRate")),
        bit_depth=_int_or_none(file.get("bitDepth")),
        sample_rate=_int_or_none(file.get("sampleRate")),
        duration_s=_int_or_none(file.get("length")),
        has_free_slot=bool(response.get("hasFreeUploadSlot", False)),
        queue_length=_int_or_none(response.get("queueLength")) or 0,
        upload_speed=_int_or_none(response.get("uploadSpeed")) or 0,
    )


def candidates(responses: Iterable[Any], *, min_upload_speed: int = 0,
               max_queue: int = 0) -> list[Candidate]:
    """Return every downloadable file of every response, in slskd's order.

    Locked files (``lockedFiles``, or ``isLocked``) are left out: the peer will not send them.
    With ``min_upload_speed`` > 0, peers slower than it (bytes/s) are left out; with
    ``max_queue`` > 0, peers with a longer upload queue are left out.
    """
    found: list[Candidate] = []
    for response in responses:
        if not isinstance(response, dict) or not response.get("username"):
            continue
        if min_upload_speed > 0 and (_int_or_none(response.get("uploadSpeed")) or 0) < min_upload_speed:
            continue
        if max_queue > 0 and (_int_or_none(response.get("queueLength")) or 0) > max_queue:
            continue
        for file in response.get("files") or []:
            if isinstance(file, dict) and file.get("filename") and not file.get("isLocked"):
                found.append(to_candidate(response, file))
    return found


def transfer_state(state: str) -> tuple[TransferState, str | None]:
    """Return ``(our state, the slskd flag naming the failure or None)`` for a state string."""
    flags = [flag.strip() for flag in state.split(",") if flag.strip()]
    if COMPLETED in flags:
        outcome = next((flag for flag in flags if flag != COMPLETED), "Failed")
        if outcome == SUCCEEDED:
            return "completed", None
        return ("cancelled" if outcome == CANCELLED else "failed"), outcome
    if "InProgress" in flags:
        return "downloading", None
    return "queued", None


def to_transfer(row: Row) -> Transfer:
    """Map one transfer object; a failure's ``error`` is the slskd flag plus its reason."""
    state, flag = transfer_state(str(row.get("state", "")))
    error = None
    if flag is not None:
        reason = " ".join(str(row.get("exception") or "").split())
        error = f"{flag}: {reason}" if reason else flag
    return Transfer(
        id=str(row.get("id", "")),
        username=str(row.get("username", "")),
        filename=str(row.get("filename", "")),
        state=state,
        size=_int_or_none(row.get("size")) or 0,
        bytes_transferred=_int_or_none(row.get("bytesTransferred")) or 0,
        percent=float(row.get("percentComplete") or 0.0),
        average_speed=float(row.get("averageSpeed") or 0.0),
        error=error,
    )


def transfers(groups: Any) -> list[Transfer]:
    """Flatten ``GET /transfers/downloads`` (users, then directories, then files)."""
    found: list[Transfer] = []
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, dict):
            continue
        for directory in group.get("directories") or []:
            if not isinstance(directory, dict):
                continue
            for row in directory.get("files") or []:
                if isinstance(row, dict) and row.get("id"):
                    found.append(to_transfer({"username": group.get("username", ""), **row}))
    return found
