"""The ML runs found under provenance folders, each with its workflow and task, and their metric data
read back from the run's Parquet file (or, for a run still going, from its append-only log)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yprov_wf.layout import WorkflowDir
from yprov_wf.recording.records import Scalar, TaskRecord, WorkflowRecord
from yprov_wf.recording.run_records import RunRecord

WorkflowRun = tuple[WorkflowRecord, list[TaskRecord], Path]


@dataclass(slots=True)
class RunView:
    """One ML run with the workflow run and task it belongs to."""

    workflow: WorkflowRecord
    task: TaskRecord
    run: RunRecord
    root: Path  # the workflow run folder

    @property
    def label(self) -> str:
        return self.run.run_id

    def params(self) -> dict[str, Scalar]:
        """Workflow, task and run params in one mapping (a run's own value wins over its task's)."""
        out: dict[str, Scalar] = {}
        for p in (*self.workflow.params, *self.task.params, *self.run.params):
            out[p.key] = p.value
        return out

    def final_metrics(self) -> dict[str, float | None]:
        """The last value of each series, named ``key`` or ``key@context``."""
        return {series_name(s.key, s.context): s.last for s in self.run.series}


@dataclass(slots=True)
class SeriesData:
    """Every point of one series, as numpy arrays sorted as logged: step, value, unix time."""

    key: str
    context: str | None
    steps: Any
    values: Any
    times: Any

    @property
    def name(self) -> str:
        return series_name(self.key, self.context)


def series_name(key: str, context: str | None) -> str:
    """How a series is named in tables and on the command line: ``key`` or ``key@context``."""
    return f"{key}@{context}" if context else key


def load_workflows(paths: Iterable[str | os.PathLike[str]]) -> list[WorkflowRun]:
    """The workflow runs under each path (a save dir, a workflow's folder or one run), each once."""
    from yprov_wf.recording.summary import load_workflow_runs

    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(f"paths must be a list of folders, got the single path {str(paths)!r}")
    seen: set[Path] = set()
    out: list[WorkflowRun] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        for wf, tasks, root in load_workflow_runs(path):
            if root.resolve() not in seen:
                seen.add(root.resolve())
                out.append((wf, tasks, root))
    return out


def run_views(workflows: Sequence[WorkflowRun]) -> list[RunView]:
    """Every ML run of the given workflow runs, in workflow, task and start order."""
    return [RunView(wf, task, run, root) for wf, tasks, root in workflows for task in tasks for run in task.runs]


def load_series(view: RunView) -> list[SeriesData]:
    """Every point of every series of a run, grouped by series in first-logged order."""
    wdir = WorkflowDir(view.root)
    mf = view.run.metrics_file
    if mf is not None and mf.path:
        path = wdir.resolve(mf.path)
        if path.is_file():
            return _from_parquet(path)
    log = wdir.metrics_log(view.run.run_id)
    return _from_log(log) if log.is_file() else []


def _from_parquet(path: Path) -> list[SeriesData]:
    # read_dictionary gives key and context as dictionary arrays: grouping needs no pyarrow.compute, whose
    # import (with pandas) costs ~0.5 s, seconds on a loaded machine, more than the rest of a report
    import numpy as np
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, read_dictionary=["key", "context"]) as f:  # not read_table: that imports
        table = f.read(columns=["key", "context", "step", "value", "timestamp"])  # pyarrow.dataset and pandas
    if table.num_rows == 0:
        return []
    keys: dict[str | None, int] = {}
    contexts: dict[str | None, int] = {}
    k = np.concatenate([_dictionary_codes(c, keys) for c in table.column("key").chunks])
    c = np.concatenate([_dictionary_codes(c, contexts) for c in table.column("context").chunks])
    key_of, context_of = list(keys), list(contexts)
    n_ctx = len(context_of)
    steps, values, micros = (_numbers(table.column(n), t) for n, t in (("step", "<i8"), ("value", "<f8"),
                                                                        ("timestamp", "<i8")))
    return _group(k * n_ctx + c, steps, values, micros / 1e6,
                  lambda code: (key_of[code // n_ctx], context_of[code % n_ctx]))


def _dictionary_codes(chunk, lookup: dict[str | None, int]):
    """Codes of a dictionary-encoded string chunk in ``lookup``'s numbering (None for nulls)."""
    import numpy as np

    idx = chunk.indices
    n = len(idx)
    width = idx.type.bit_width // 8
    raw = np.frombuffer(idx.buffers()[1], dtype=f"<i{width}", count=idx.offset + n)[idx.offset:]
    mapping = np.array([lookup.setdefault(v, len(lookup)) for v in chunk.dictionary.to_pylist()] or [0], np.int64)
    codes = mapping[np.clip(raw, 0, len(mapping) - 1)]
    if idx.null_count:
        bits = np.unpackbits(np.frombuffer(idx.buffers()[0], np.uint8), bitorder="little")
        valid = bits[idx.offset:idx.offset + n].astype(bool)
        codes = np.where(valid, codes, lookup.setdefault(None, len(lookup)))
    return codes


def _numbers(column, dtype: str):
    """A 64-bit numeric or timestamp column with no nulls as one numpy array, read from its buffers
    (``to_numpy`` on a timestamp column imports pandas)."""
    import numpy as np

    parts = [np.frombuffer(ch.buffers()[1], dtype=dtype, count=ch.offset + len(ch))[ch.offset:] for ch in column.chunks]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _from_log(path: Path) -> list[SeriesData]:
    import numpy as np

    from yprov_wf.metrics.rawlog import read_chunks

    defs: dict[int, tuple[str, str | None]] = {}
    parts = []
    for kind, body in read_chunks(path):
        if kind == "series":
            defs[body["id"]] = (body["key"], body["context"])
        else:
            parts.append(body)
    if not parts:
        return []
    sids, steps, values, times = (np.concatenate(col) for col in zip(*parts))
    known = np.isin(sids, np.fromiter(defs, dtype=sids.dtype, count=len(defs)))
    return _group(sids[known].astype(np.int64), steps[known], values[known], times[known], defs.__getitem__)


def _group(codes: Any, steps: Any, values: Any, times: Any, name_of) -> list[SeriesData]:
    import numpy as np

    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    ends = np.r_[starts[1:], len(order)]
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        idx = order[a:b]
        key, context = name_of(int(sorted_codes[a]))
        out.append((int(idx[0]), SeriesData(key, context, steps[idx], values[idx], times[idx])))
    out.sort(key=lambda item: item[0])
    return [s for _, s in out]
