"""Read provenance back from the files alone, for notebooks: workflow runs → task runs → ML runs, a run's
params, metric series as pandas DataFrames, model versions, artifacts, sources and command.

    runs = yp.load("prov")                      # every workflow run under a folder, oldest first
    run = runs[-1].runs[0]                      # its first ML run
    run.params, run.metric("loss", "training")  # {'lr': 0.1}, DataFrame(step, value, timestamp, …)

Finished tasks are read from their PROV-JSON, open or killed ones from their journals (as ``yprov-wf
show`` does); a live run's points come from its append-only log. pandas is imported only by ``metric()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yprov_wf.layout import WorkflowDir
from yprov_wf.recording.records import AgentRecord, DataRecord, Scalar, TaskRecord, WorkflowRecord
from yprov_wf.recording.run_records import (
    ArtifactRecord,
    CommandRecord,
    DatasetRecord,
    ModelRecord,
    ModelVersionRecord,
    RunRecord,
    SeriesSummary,
    SourceRecord,
)
from yprov_wf.recording.summary import load_workflow_runs

_COLUMNS = ["key", "context", "step", "value", "timestamp"]


class _RecordView:
    """The status and params of the record a view wraps (runs, tasks and workflows alike)."""

    record: Any

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def params(self) -> dict[str, Scalar]:
        return {p.key: p.value for p in self.record.params}


@dataclass(frozen=True)
class MLRun(_RecordView):
    """One ML run (start_run … end_run) as recorded; ``record`` holds every field."""

    record: RunRecord
    task: TaskRecord
    root: Path  # the workflow run folder

    @property
    def id(self) -> str:
        return self.record.run_id

    @property
    def experiment(self) -> str:
        return self.record.experiment

    @property
    def series(self) -> list[SeriesSummary]:
        return list(self.record.series)

    @property
    def model_versions(self) -> list[ModelVersionRecord]:
        return list(self.record.model_versions)

    @property
    def models(self) -> list[ModelRecord]:
        return list(self.record.models)

    @property
    def artifacts(self) -> list[ArtifactRecord]:
        return list(self.record.artifacts)

    @property
    def datasets(self) -> list[DatasetRecord]:
        return list(self.record.datasets)

    @property
    def sources(self) -> list[SourceRecord]:
        return list(self.record.sources)

    @property
    def command(self) -> CommandRecord | None:
        return self.record.command

    def path(self, location: str) -> Path:
        """The file a recorded location (a model version's, an artifact's…) points to, inside the run folder."""
        return WorkflowDir(self.root).resolve(location)

    def metrics(self) -> Any:
        """Every point of the run as a pandas DataFrame: key, context, step, value, timestamp (UTC)."""
        import pandas as pd

        mf = self.record.metrics_file
        if mf is not None:
            return pd.read_parquet(self.path(mf.path))
        log = WorkflowDir(self.root).metrics_log(self.id)
        if log.is_file():
            return _read_log(log)
        return pd.DataFrame({c: [] for c in _COLUMNS})

    def metric(self, key: str, context: str | None = None) -> Any:
        """One series as a DataFrame (step, value, timestamp, context), in logging order. Without
        ``context`` every context of ``key`` is returned. KeyError naming the key if it was never logged."""
        known = {(s.key, s.context) for s in self.record.series}
        df = self.metrics()
        if not known:  # a live run: the series are in its log only
            known = set(zip(df["key"], df["context"].where(df["context"].notna(), None)))
        if not any(k == key and (context is None or c == context) for k, c in known):
            have = ", ".join(sorted(f"{k}@{c}" if c else k for k, c in known)) or "none"
            where = f" in context {context!r}" if context is not None else ""
            raise KeyError(f"run {self.id!r} has no metric {key!r}{where} (it has: {have})")
        rows = df[df["key"] == key]
        if context is not None:
            rows = rows[rows["context"] == context]
        return rows.drop(columns=["key"]).reset_index(drop=True)


@dataclass(frozen=True)
class TaskRun(_RecordView):
    """One task attempt (one PROV bundle) and its ML runs."""

    record: TaskRecord
    runs: list[MLRun] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.record.task_id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def inputs(self) -> list[DataRecord]:
        return list(self.record.inputs)

    @property
    def outputs(self) -> list[DataRecord]:
        return list(self.record.outputs)

    @property
    def agents(self) -> list[AgentRecord]:
        """Who and what ran this task: the workflow's agents plus a launcher of its own process."""
        return list(self.record.agents)


@dataclass(frozen=True)
class WorkflowRun(_RecordView):
    """One workflow run folder: its record, its task attempts and their ML runs."""

    record: WorkflowRecord
    root: Path
    tasks: list[TaskRun] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.record.workflow_id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def agents(self) -> list[AgentRecord]:
        """The person (role ``person``) and the software (``recorder``, ``engine``, ``launcher``) of the run."""
        return list(self.record.agents)

    @property
    def runs(self) -> list[MLRun]:
        """Every ML run of every task, in task order."""
        return [r for t in self.tasks for r in t.runs]

    def task(self, name_or_id: str) -> TaskRun:
        """The task attempt with this id, or the last attempt of the task with this name."""
        found = [t for t in self.tasks if name_or_id in (t.id, t.name)]
        if not found:
            raise KeyError(f"workflow run {self.id!r} has no task {name_or_id!r} "
                           f"(it has: {', '.join(t.name for t in self.tasks) or 'none'})")
        return found[-1]

    def run(self, run_id_or_experiment: str) -> MLRun:
        """The ML run with this id, or the last run of this experiment."""
        found = [r for r in self.runs if run_id_or_experiment in (r.id, r.experiment)]
        if not found:
            raise KeyError(f"workflow run {self.id!r} has no ML run {run_id_or_experiment!r} "
                           f"(it has: {', '.join(r.id for r in self.runs) or 'none'})")
        return found[-1]


def load(path: str | Path) -> list[WorkflowRun]:
    """Every workflow run under ``path`` (a provenance folder, a workflow's folder or one run), oldest first.
    FileNotFoundError if ``path`` does not exist."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"provenance folder {str(path)!r} does not exist")
    out = []
    for wf, tasks, run_root in load_workflow_runs(root):
        out.append(WorkflowRun(wf, run_root, [TaskRun(t, [MLRun(r, t, run_root) for r in t.runs]) for t in tasks]))
    return out


def _read_log(log: Path) -> Any:
    import numpy as np
    import pandas as pd

    from yprov_wf.metrics.rawlog import read_chunks

    series: dict[int, tuple[str, str | None]] = {}
    frames = []
    for kind, body in read_chunks(log):
        if kind == "series":
            series[body["id"]] = (body["key"], body["context"])
            continue
        sids, steps, values, times = body
        keys = np.array([series[int(s)][0] for s in sids], dtype=object)
        contexts = np.array([series[int(s)][1] for s in sids], dtype=object)
        frames.append(pd.DataFrame({"key": keys, "context": contexts, "step": steps.astype("int64"),
                                    "value": values.astype("float64"),
                                    "timestamp": pd.to_datetime(times, unit="s", utc=True)}))
    if not frames:
        return pd.DataFrame({c: [] for c in _COLUMNS})
    return pd.concat(frames, ignore_index=True)
