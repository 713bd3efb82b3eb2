"""The monitor's verdict on one transfer at one tick: keep waiting, import it, or give it up.

Pure and synchronous: :func:`judge` gets the transfer as the client listed it (None when the
client's list no longer has it), the download's :class:`Watch` (what earlier ticks saw) and the
time, and says what to do. The timers live in memory, on the monotonic clock, and start at the
first tick that sees a transfer: after a restart every transfer gets its full time again,
because what happened while SoulSync was down is unknown.

=========================  ====================================================================
client state               verdict
=========================  ====================================================================
``queued``                 wait; give up after ``queued_timeout`` seconds in the state
``downloading``            wait; give up after ``stalled_timeout`` seconds without a new byte
                           (so "stuck at 0 %" and "stalled at 40 %" alike)
``completed``              import
``failed``                 give up (slskd's Errored/Rejected/TimedOut/Aborted, with its reason)
``cancelled``              give up (someone cancelled it in slskd)
missing                    give up after :data:`VANISH_POLLS` lists in a row that were
                           requested after the enqueue and do not have it
=========================  ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from soulsync_core.models import Transfer

# A transfer must be missing from this many lists in a row to count as vanished: one list
# might have been assembled by slskd a moment before it registered the enqueue.
VANISH_POLLS = 2

Action = Literal["wait", "import", "give_up"]


@dataclass
class Watch:
    """What the monitor saw of one download's current transfer, on the monotonic clock.

    ``enqueued_at`` is when the enqueue returned (lists requested earlier prove nothing about
    the transfer); ``state_since`` when the current client state was first seen;
    ``bytes_since`` when ``bytes`` last changed; ``missing`` counts lists in a row without it.
    """

    enqueued_at: float
    state: str | None = None
    state_since: float = 0.0
    bytes: int = -1
    bytes_since: float = 0.0
    missing: int = 0


@dataclass(frozen=True)
class Limits:
    queued_timeout: float
    stalled_timeout: float


@dataclass(frozen=True)
class Verdict:
    """``action`` to take; ``reason`` says why a transfer is given up (None otherwise)."""

    action: Action
    reason: str | None = None


WAIT = Verdict("wait")


def judge(transfer: Transfer | None, watch: Watch, now: float, listed_at: float,
          limits: Limits) -> Verdict:
    """Return what to do with a download's transfer; updates ``watch`` with what was seen.

    ``listed_at`` is when the list was requested, ``now`` when it is judged (same clock).
    """
    if transfer is None:
        if listed_at >= watch.enqueued_at:
            watch.missing += 1
        if watch.missing >= VANISH_POLLS:
            return Verdict("give_up", "vanished from slskd's transfer list")
        return WAIT
    watch.missing = 0
    if transfer.state != watch.state:
        # A new state restarts the stall clock too: bytes do not flow while queued.
        watch.state, watch.state_since, watch.bytes_since = transfer.state, now, now
    if transfer.bytes_transferred != watch.bytes:
        watch.bytes, watch.bytes_since = transfer.bytes_transferred, now
    if transfer.state == "completed":
        return Verdict("import")
    if transfer.state == "failed":
        return Verdict("give_up", f"slskd reported {transfer.error or 'a failure'}")
    if transfer.state == "cancelled":
        return Verdict("give_up", "cancelled in slskd")
    if transfer.state == "queued" and now - watch.state_since > limits.queued_timeout:
        return Verdict("give_up", f"still queued by the peer after {limits.queued_timeout:g} s")
    if transfer.state == "downloading" and now - watch.bytes_since > limits.stalled_timeout:
        return Verdict("give_up", f"stuck at {transfer.percent:.0f} % for {limits.stalled_timeout:g} s")
    return WAIT
