"""The ML runs found under provenance folders, each with its workflow and task, and their metric data
read back from the run's Parquet file (or, for a run still going, from its append-only log)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yprov_wf.layout import WorkflowDir
from yprov_wf.recording.records import RunRecord, Scalar, TaskRecord, WorkflowRecord

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


def load_workflows(paths: Iterable[Path]) -> list[WorkflowRun]:
    """The workflow runs under each path (a save dir, a workflow's folder or one run), each once."""
    from yprov_wf.recording.summary import load_workflow_runs

    seen: set[Path] = set()
    out: list[WorkflowRun] = []
    for path in paths:
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
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["key", "context", "step", "value", "timestamp"])
    if table.num_rows == 0:
        return []
    keys = pc.dictionary_encode(table.column("key").combine_chunks())
    contexts = pc.dictionary_encode(pc.fill_null(table.column("context").combine_chunks(), ""))
    kd, cd = keys.dictionary.to_pylist(), contexts.dictionary.to_pylist()
    codes = (keys.indices.to_numpy(zero_copy_only=False).astype(np.int64) * len(cd)
             + contexts.indices.to_numpy(zero_copy_only=False))
    steps = table.column("step").combine_chunks().to_numpy(zero_copy_only=False)
    values = table.column("value").combine_chunks().to_numpy(zero_copy_only=False)
    micros = table.column("timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    return _group(codes, steps, values, micros / 1e6, lambda c: (kd[c // len(cd)], cd[c % len(cd)] or None))


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
