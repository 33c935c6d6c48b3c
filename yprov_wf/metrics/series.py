"""Turn a run's append-only metric log into its final Parquet file and one summary per series.

The Parquet file (``metrics/<run-id>.parquet``) has one row per point and the columns
``key`` (string), ``context`` (string, null when none), ``step`` (int64), ``value`` (float64) and
``timestamp`` (timestamp[us, UTC]); ``pandas.read_parquet(path)`` reads it. The log is streamed in
batches, so finalising 10M points does not hold them all in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from yprov_wf.metrics.rawlog import read_chunks
from yprov_wf.recording.run_records import SeriesSummary

_BATCH_POINTS = 1 << 20


def finalize_series(log_path: Path | Sequence[Path], parquet_path: Path) -> list[SeriesSummary]:
    """Write ``parquet_path`` from one log, or several logs of one run (the hot-path store's and the
    background sampler's, each with its own series ids), and return the series summaries (empty: no file)."""

    logs = [log_path] if isinstance(log_path, Path) else list(log_path)
    summaries: list[SeriesSummary] = []
    pending: list[tuple] = []
    pending_n = 0
    writer = None
    try:
        for log in logs:
            base = len(summaries)  # this log's series ids start after the previous logs'
            for kind, body in read_chunks(log):
                if kind == "series":
                    if body["id"] == len(summaries) - base:
                        summaries.append(SeriesSummary(body["key"], body["context"]))
                    continue
                if base:
                    sids, *rest = body
                    body = (sids + base, *rest)
                pending.append(body)
                pending_n += len(body[0])
                if pending_n >= _BATCH_POINTS:
                    writer = _write_batch(writer, parquet_path, summaries, pending)
                    pending, pending_n = [], 0
            if pending:  # a later log's ids must not reach a batch before its definitions do
                writer = _write_batch(writer, parquet_path, summaries, pending)
                pending, pending_n = [], 0
    finally:
        if writer is not None:
            writer.close()
    return [s for s in summaries if s.count]


def _write_batch(writer, parquet_path: Path, summaries: list[SeriesSummary], parts: list[tuple]):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    sids, steps, values, times = (np.concatenate(col) for col in zip(*parts))
    known = sids < len(summaries)
    if not known.all():  # points of a definition that was torn off: unattributable, dropped
        sids, steps, values, times = sids[known], steps[known], values[known], times[known]
    _summarise(summaries, sids, steps, values, times)

    contexts = sorted({s.context for s in summaries if s.context is not None})
    context_of = np.array([-1 if s.context is None else contexts.index(s.context) for s in summaries], np.int32)
    table = pa.Table.from_arrays(
        [
            _dictionary(sids.astype(np.int32), [s.key for s in summaries]),
            _dictionary(context_of[sids], contexts),
            _numeric(steps, pa.int64()),
            _numeric(values, pa.float64()),
            _numeric(np.rint(times * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        ],
        names=["key", "context", "step", "value", "timestamp"],
    )
    if writer is None:
        parquet_path.parent.mkdir(parents=True, exist_ok=True)
        writer = pq.ParquetWriter(
            parquet_path, table.schema, compression="zstd", use_dictionary=["key", "context"],
            column_encoding={"step": "DELTA_BINARY_PACKED", "timestamp": "DELTA_BINARY_PACKED"},
        )
    writer.write_table(table)
    return writer


# pa.array() imports pandas (~0.4 s); building arrays from buffers keeps end_run free of it.
def _numeric(values, arrow_type):
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def _strings(items: list[str]):
    import numpy as np
    import pyarrow as pa

    encoded = [s.encode("utf-8") for s in items]
    offsets = np.zeros(len(items) + 1, np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(items), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _dictionary(indices, values: list[str]):
    """A dictionary-encoded string column (pandas reads it as a category); index -1 is null."""
    import numpy as np
    import pyarrow as pa

    valid = indices >= 0
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    idx = pa.Array.from_buffers(pa.int32(), len(indices), [validity, pa.py_buffer(np.where(valid, indices, 0))])
    return pa.DictionaryArray.from_arrays(idx, _strings(values))


def _summarise(summaries: list[SeriesSummary], sids, steps, values, times) -> None:
    import numpy as np

    n = len(summaries)
    counts = np.bincount(sids, minlength=n)
    finite = np.isfinite(values)
    fin_sids, fin_values = sids[finite], values[finite]
    lows = np.full(n, np.inf)
    highs = np.full(n, -np.inf)
    np.minimum.at(lows, fin_sids, fin_values)
    np.maximum.at(highs, fin_sids, fin_values)
    non_finite = np.bincount(sids[~finite], minlength=n)
    present, first_idx = np.unique(sids, return_index=True)
    _, last_rev = np.unique(sids[::-1], return_index=True)
    last_idx = len(sids) - 1 - last_rev
    for sid, i, j in zip(present.tolist(), first_idx.tolist(), last_idx.tolist()):
        s = summaries[sid]
        if s.count == 0:
            s.first, s.first_step, s.first_time = _finite(values[i]), int(steps[i]), float(times[i])
        s.last, s.last_step, s.last_time = _finite(values[j]), int(steps[j]), float(times[j])
        s.count += int(counts[sid])
        s.non_finite += int(non_finite[sid])
        if math.isfinite(lows[sid]):
            s.minimum = lows[sid].item() if s.minimum is None else min(s.minimum, lows[sid].item())
            s.maximum = highs[sid].item() if s.maximum is None else max(s.maximum, highs[sid].item())


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
