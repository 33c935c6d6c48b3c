"""The metric hot path: ``log`` appends to typed arrays and returns; every ``flush_every`` points the
buffer goes to the append-only log in one write (no fsync: it survives a killed process)."""

from __future__ import annotations

import numbers
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from yprov_wf.context import as_context
from yprov_wf.metrics.rawlog import encode_points, encode_series
from yprov_wf.values import TIME_MAX as _TIME_MAX
from yprov_wf.values import TIME_MIN as _TIME_MIN
from yprov_wf.values import check_text, check_time

_now = time.time


class MetricStore:
    """Buffers the points of one ML run and flushes them durably to ``log_path``."""

    __slots__ = (
        "_ids", "_counts", "_sids", "_steps", "_values", "_times", "_pending", "_flush_every",
        "_path", "_file", "_on_error", "_failed", "series",
    )

    def __init__(self, log_path: Path, flush_every: int, on_error: Callable[[BaseException], None]) -> None:
        if not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"save_after_n_logs must be a positive int, got {flush_every!r}")
        self._ids: dict[tuple[str, object], int] = {}
        self._counts: list[int] = []
        self._sids = array("I")
        self._steps = array("q")
        self._values = array("d")
        self._times = array("d")
        self._pending: list[bytes] = []
        self._flush_every = flush_every
        self._path = log_path
        self._file = None
        self._on_error = on_error
        self._failed = False
        self.series: list[tuple[str, str | None]] = []

    def log(self, key: str, value: float, context: object = None, step: int | None = None,
            timestamp: float | None = None) -> None:
        """Append one point. Raises TypeError naming ``key`` for a value that is not a real number."""
        tv = type(value)
        if tv is not float and tv is not int:
            value = _as_number(key, value)
        try:
            sid = self._ids.get((key, context))
        except TypeError:  # an unhashable key or context
            sid = None
        if sid is None:
            sid = self._define(key, context)
        if step is None:
            step = self._counts[sid]
        if timestamp is None:
            timestamp = _now()
        elif type(timestamp) is not float or not _TIME_MIN <= timestamp <= _TIME_MAX:
            timestamp = _as_timestamp(key, timestamp)
        try:
            self._steps.append(step)
        except (TypeError, OverflowError):
            raise TypeError(f"metric {key!r}: step must be an int, got {step!r}") from None
        try:
            self._values.append(value)
        except OverflowError:
            self._steps.pop()
            raise TypeError(f"metric {key!r}: value {str(value)[:40]} does not fit a float64") from None
        self._times.append(timestamp)
        self._sids.append(sid)
        self._counts[sid] += 1
        if len(self._sids) >= self._flush_every:
            self.flush()

    def _define(self, key: str, context: object) -> int:
        if not isinstance(key, str) or not key:
            raise TypeError(f"metric key must be a non-empty str, got {key!r}")
        check_text(key, "metric key")
        ctx = as_context(context)
        sid = self._ids.get((key, ctx))
        if sid is None:
            sid = len(self.series)
            self.series.append((key, ctx))
            self._counts.append(0)
            self._ids[(key, ctx)] = sid
            self._pending.append(encode_series(sid, key, ctx))
        self._ids[(key, context)] = sid
        return sid

    def flush(self) -> None:
        """Write the buffered points to the log; on an I/O error warn once and drop from then on."""
        if not self._sids and not self._pending:
            return
        if not self._failed:
            try:
                if self._file is None:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self._path, "ab", buffering=0)
                chunks = self._pending
                if self._sids:
                    chunks.append(encode_points(self._sids, self._steps, self._values, self._times))
                self._file.write(b"".join(chunks))
            except Exception as exc:  # provenance-side: never break the training loop
                self._failed = True
                self._on_error(exc)
        self._pending = []
        del self._sids[:], self._steps[:], self._values[:], self._times[:]

    def close(self) -> bool:
        """Flush and close the log. Returns whether every point reached it."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        return not self._failed

    def detach(self) -> None:
        """Stop writing without touching the log (a forked child: the parent goes on writing it)."""
        self._failed = True
        self._file = None
        self._pending = []
        del self._sids[:], self._steps[:], self._values[:], self._times[:]

    @property
    def path(self) -> Path:
        return self._path

    @property
    def points(self) -> int:
        return sum(self._counts)


class NullMetricStore(MetricStore):
    """Validates like the real store and records nothing (non-zero ranks without collect_all_processes)."""

    __slots__ = ()

    def flush(self) -> None:
        self._pending = []
        del self._sids[:], self._steps[:], self._values[:], self._times[:]


def _as_number(key: str, value: object) -> float:
    if isinstance(value, numbers.Real):
        return float(value)
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


def _as_timestamp(key: str, timestamp: object) -> float:
    return check_time(timestamp, f"metric {key!r}: timestamp")
