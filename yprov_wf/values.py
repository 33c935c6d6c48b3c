"""Checks for the values that enter the records, so that nothing accepted at a call can fail a write
later: texts without lone surrogates, times that are xsd:dateTimes, attribute values that are scalars."""

from __future__ import annotations

import numbers
import os
import re
from datetime import datetime
from typing import Any

Scalar = str | int | float | bool | None

# unix seconds of 0001-01-01 and 9999-12-31T23:59:59 UTC: the times an xsd:dateTime (and Python) can hold
TIME_MIN = -62135596800.0
TIME_MAX = 253402300799.0
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: Any, what: str) -> str:
    """``value`` if it is a str that can be written as UTF-8; TypeError/ValueError naming ``what``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if _SURROGATE.search(value):
        raise ValueError(f"{what} {value!r} holds a lone surrogate (not valid Unicode text)")
    return value


def clean_text(value: str) -> str:
    """Text from outside the caller's control (exception messages, argv, environment) made writable:
    each lone surrogate becomes the visible escape ``\\udcff``."""
    if _SURROGATE.search(value) is None:
        return value
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def check_time(value: Any, what: str) -> float:
    """Unix seconds (a real number or a datetime) between years 1 and 9999; else an error naming ``what``."""
    if isinstance(value, datetime):
        value = value.timestamp()
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be unix seconds or a datetime, got {value!r}")
    t = float(value)
    if not TIME_MIN <= t <= TIME_MAX:  # also false for NaN
        raise ValueError(f"{what} {value!r} is not a time (unix seconds between years 1 and 9999)")
    return t


def check_scalar(value: Any, what: str) -> Scalar:
    """An attribute value as a JSON scalar: str/int/float/bool/None, numpy scalars and paths converted;
    other types (bytes, containers, objects) are a TypeError naming ``what``."""
    cls = type(value)
    if cls is int or cls is float or cls is bool or value is None:  # most values: as they are
        return value
    if isinstance(value, str):
        return check_text(value, what)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return check_text(path, what) if isinstance(path, str) else _refuse(value, what)
    item = getattr(value, "item", None)  # numpy scalars that are not numbers.Real (np.bool_)
    if callable(item) and getattr(value, "shape", None) == ():
        return check_scalar(item(), what)
    return _refuse(value, what)


def _refuse(value: Any, what: str) -> Scalar:
    raise TypeError(f"{what} must be a str, number, bool or None, got {type(value).__name__}")
