"""The append-only metric log written while a run is live (``metrics/<run-id>.ylog``).

A sequence of chunks, each written with one ``write`` call, little-endian:

    b"S" u32 length  JSON {"id": int, "key": str, "context": str | null}     a series definition
    b"P" u32 n       u32[n] series id, i64[n] step, f64[n] value, f64[n] unix time   n points

A process killed mid-run leaves every complete chunk readable; a torn last chunk is ignored.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<cI")
_SERIES = b"S"
_POINTS = b"P"
_POINT_BYTES = 4 + 8 + 8 + 8
_LITTLE = sys.byteorder == "little"


def encode_series(series_id: int, key: str, context: str | None) -> bytes:
    body = json.dumps({"id": series_id, "key": key, "context": context}, ensure_ascii=False).encode()
    return _HEADER.pack(_SERIES, len(body)) + body


def encode_points(sids: array, steps: array, values: array, times: array) -> bytes:
    cols = (sids, steps, values, times)
    if not _LITTLE:
        cols = tuple(_swapped(c) for c in cols)
    return _HEADER.pack(_POINTS, len(sids)) + b"".join(c.tobytes() for c in cols)


def _swapped(a: array) -> array:
    b = array(a.typecode, a)
    b.byteswap()
    return b


def read_chunks(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``("series", dict)`` and ``("points", (sids, steps, values, times))`` numpy arrays."""
    import numpy as np

    with open(path, "rb") as f:
        while True:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            kind, n = _HEADER.unpack(header)
            size = n if kind == _SERIES else n * _POINT_BYTES
            body = f.read(size)
            if len(body) < size:
                return  # torn final chunk from a killed process
            if kind == _SERIES:
                yield "series", json.loads(body)
            elif kind == _POINTS:
                o1, o2, o3 = 4 * n, 12 * n, 20 * n
                yield "points", (
                    np.frombuffer(body, "<u4", n, 0),
                    np.frombuffer(body, "<i8", n, o1),
                    np.frombuffer(body, "<f8", n, o2),
                    np.frombuffer(body, "<f8", n, o3),
                )
            else:
                return  # not a chunk boundary: stop at the last good chunk
