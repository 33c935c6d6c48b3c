"""User-given timestamps: unix seconds, a datetime, or unix milliseconds (yProv4ML's unit), told apart by
magnitude, checked at the call so that one odd value never reaches the writer.

The rule: a number below 1e11 is seconds (1e11 s is the year 5138); from 1e11 up to 1e14 it is
milliseconds (1e11 ms is 1973-03-03, 1e14 ms the year 5138) and is divided by 1000. Anything else
(negative, not finite, 1e14 or more: microseconds or nanoseconds) raises ValueError naming the value.
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime

MILLIS_FROM = 1e11  # seconds below, milliseconds from here
MILLIS_UNTIL = 1e14  # and up to here


def unix_seconds(timestamp: object, what: str = "timestamp") -> float:
    """``timestamp`` (seconds, milliseconds or a datetime) as unix seconds; ValueError/TypeError naming it."""
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    if not isinstance(timestamp, numbers.Real) or isinstance(timestamp, bool):
        raise TypeError(f"{what} must be unix seconds, unix milliseconds or a datetime, got {timestamp!r}")
    t = float(timestamp)
    if 0.0 <= t < MILLIS_FROM:
        return t
    if MILLIS_FROM <= t < MILLIS_UNTIL:
        return t / 1000.0
    why = "is not finite" if not math.isfinite(t) else "is negative" if t < 0 else \
        "is too large for seconds or milliseconds (microseconds? divide by 1e6)"
    raise ValueError(f"{what} {timestamp!r} {why}; give unix seconds, unix milliseconds or a datetime")


def when(timestamp: object, now: float, what: str = "timestamp") -> float:
    """The time of a record: ``now`` when no timestamp was given, else :func:`unix_seconds` of it."""
    return now if timestamp is None else unix_seconds(timestamp, what)
