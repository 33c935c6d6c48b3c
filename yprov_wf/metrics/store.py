"""The metric hot path: ``log`` checks a point, appends it to the buffer in one operation and returns;
every ``flush_every`` points the buffer goes to the append-only log in one write (no fsync: it
survives a killed process).

Appending a point's four items with one list extend is a single operation under the GIL, so threads that share one run never tear or
mispair a point, with no lock on the hot path; defining a series and flushing take a lock, and a flush
takes the points it found by slicing them off the front, so points appended meanwhile stay.
"""

from __future__ import annotations

import numbers
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from yprov_wf.context import as_context
from yprov_wf.metrics.rawlog import encode_points, encode_series
from yprov_wf.timestamps import MILLIS_FROM, unix_seconds
from yprov_wf.values import check_text

_now = time.time
_STEP_MIN, _STEP_MAX = -(1 << 63), (1 << 63) - 1  # int64


class MetricStore:
    """Buffers the points of one ML run and flushes them durably to ``log_path``."""

    __slots__ = (
        "_ids", "_counts", "_rows", "_pending", "_flush_every", "_path", "_file", "_on_error", "_failed",
        "series", "_lock", "_flush_at",
    )

    def __init__(self, log_path: Path, flush_every: int, on_error: Callable[[BaseException], None]) -> None:
        if not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"save_after_n_logs must be a positive int, got {flush_every!r}")
        self._ids: dict[tuple[str, object], int] = {}
        self._counts: list[int] = []
        self._rows: list[int | float] = []  # series id, step, value, unix time; point after point
        self._flush_at = 4 * flush_every
        self._pending: list[bytes] = []
        self._flush_every = flush_every
        self._path = log_path
        self._file = None
        self._on_error = on_error
        self._failed = False
        self.series: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def log(self, key: str, value: float, context: object = None, step: int | None = None,
            timestamp: float | None = None) -> None:
        """Append one point. Raises TypeError naming ``key`` for a value that is not a real number."""
        if type(value) is not float:
            value = _as_number(key, value)
        if timestamp is None:
            timestamp = _now()
        elif type(timestamp) is not float or not 0.0 <= timestamp < MILLIS_FROM:  # ms, datetime, bad: checked
            timestamp = unix_seconds(timestamp, f"metric {key!r}: timestamp")
        try:
            sid = self._ids.get((key, context))
        except TypeError:  # an unhashable key or context
            sid = None
        if sid is None:
            sid = self._define(key, context)
        if step is None:
            step = self._counts[sid]
        elif type(step) is not int or not _STEP_MIN <= step <= _STEP_MAX:
            step = _as_step(key, step)
        rows = self._rows
        rows += (sid, step, value, timestamp)  # one list extend: atomic under the GIL
        self._counts[sid] += 1
        if len(rows) >= self._flush_at:
            self.flush()

    def _define(self, key: str, context: object) -> int:
        if not isinstance(key, str) or not key:
            raise TypeError(f"metric key must be a non-empty str, got {key!r}")
        check_text(key, "metric key")
        ctx = as_context(context)
        with self._lock:
            sid = self._ids.get((key, ctx))
            if sid is None:
                sid = len(self.series)
                self.series.append((key, ctx))
                self._counts.append(0)
                self._pending.append(encode_series(sid, key, ctx))
                self._ids[(key, ctx)] = sid
            self._ids[(key, context)] = sid
        return sid

    def flush(self) -> None:
        """Write the buffered points to the log; on an I/O error warn once and drop from then on."""
        with self._lock:
            rows = self._rows
            n = len(rows) & ~3  # whole points only (four items each)
            if not n and not self._pending:
                return
            batch = rows[:n]
            del rows[:n]  # points other threads append meanwhile stay for the next flush
            chunks, self._pending = self._pending, []
            if self._failed:
                return
            try:
                if batch:
                    chunks.append(encode_points(array("I", batch[0::4]), array("q", batch[1::4]),
                                                array("d", batch[2::4]), array("d", batch[3::4])))
                self._send(chunks)
            except Exception as exc:  # provenance-side: never break the training loop
                self._failed = True
                self._on_error(exc)

    def _send(self, chunks: list[bytes]) -> None:
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self._path, "ab", buffering=0)
        self._file.write(b"".join(chunks))

    def close(self) -> bool:
        """Flush and close the log. Returns whether every point reached it."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        return not self._failed

    def detach(self) -> None:
        """Stop writing without touching the log (a forked child: the parent goes on writing it)."""
        self._lock = threading.Lock()  # another thread of the parent may have held it at the fork
        self._failed = True
        self._file = None
        self._pending = []
        self._rows.clear()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def points(self) -> int:
        return sum(self._counts)


class NullMetricStore(MetricStore):
    """Validates like the real store and records nothing (non-zero ranks without collect_all_processes)."""

    __slots__ = ()

    def _send(self, chunks: list[bytes]) -> None:
        pass


def _as_number(key: str, value: object) -> float:
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            raise TypeError(f"metric {key!r}: value {str(value)[:40]} does not fit a float64") from None
    item = getattr(value, "item", None)  # one-element torch tensors and numpy arrays
    if callable(item) and getattr(value, "shape", None) is not None:
        try:
            value = item()
        except (ValueError, RuntimeError):
            pass
        else:
            if isinstance(value, numbers.Real):
                return float(value)
    raise TypeError(f"metric {key!r}: value must be a real number, got {type(value).__name__}")


def _as_step(key: str, step: object) -> int:
    if isinstance(step, numbers.Integral) and _STEP_MIN <= int(step) <= _STEP_MAX:
        return int(step)
    raise TypeError(f"metric {key!r}: step must be an int, got {step!r}")
