"""What an ML run records (``start_run`` … ``end_run`` inside a task): plain dataclasses like those of
``records.py``, which holds the workflow, task, data, agent and parameter records they build on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yprov_wf.recording.records import RUNNING, DataRecord, ParamRecord, Scalar


@dataclass(slots=True)
class ArtifactRecord:
    name: str
    path: str  # relative to the workflow run folder
    sha256: str
    size: int
    source: str
    is_input: bool = False
    context: str | None = None
    step: int | None = None
    time: float = 0.0


@dataclass(slots=True)
class ModelVersionRecord:
    model_name: str
    version: int
    path: str
    sha256: str
    size: int
    context: str | None = None
    step: int | None = None
    time: float = 0.0


@dataclass(slots=True)
class ModelRecord:
    label: str
    path: str
    sha256: str
    size: int
    time: float
    summary: dict[str, Any] = field(default_factory=dict)  # parameters, memory, layers…
    revision_of: str | None = None  # "<model_name>/<version>" of the last saved version


@dataclass(slots=True)
class DatasetRecord:
    label: str
    kind: str
    samples: int | None
    attributes: dict[str, Scalar]
    context: str | None = None
    time: float = 0.0
    path: str | None = None
    sha256: str | None = None


@dataclass(slots=True)
class SourceRecord:
    """Source code the run executed (a script, files or a folder), copied into the provenance folder,
    with the git state of the repository it came from (when it is in one)."""

    name: str
    path: str  # the copy, relative to the workflow run folder
    sha256: str  # of the file, or of the folder (see layout.digest_path)
    size: int
    files: int
    source: str  # where it was copied from
    git_commit: str | None = None
    git_branch: str | None = None
    git_remote: str | None = None  # credentials redacted
    git_dirty: bool | None = None
    git_diff: str | None = None  # the uncommitted changes (``git diff HEAD``), relative to the run folder
    git_diff_sha256: str | None = None
    time: float = 0.0


@dataclass(slots=True)
class CommandRecord:
    """How the run's process was started: its command line (secrets redacted), folder and interpreter."""

    argv: list[str]
    cwd: str
    executable: str
    time: float = 0.0


@dataclass(slots=True)
class SeriesSummary:
    """What a bundle says about one metric series. Statistics cover finite values only;
    ``non_finite`` counts the NaN and ±inf points (they are kept in the data file)."""

    key: str
    context: str | None
    count: int = 0
    non_finite: int = 0
    first: float | None = None
    last: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    first_step: int | None = None
    last_step: int | None = None
    first_time: float | None = None
    last_time: float | None = None
    source: str | None = None  # where the values came from (yProv4ML's log_metric(..., source=))


@dataclass(slots=True)
class RunRecord:
    """One ML run (start_run … end_run) inside a task."""

    run_id: str
    experiment: str
    started: float
    rank: int = 0
    world_size: int | None = 1  # None: a rank given without a world size
    collect_all_processes: bool = False
    device: str | None = None
    status: str = RUNNING
    ended: float | None = None
    error: str | None = None
    params: list[ParamRecord] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    model_versions: list[ModelVersionRecord] = field(default_factory=list)
    models: list[ModelRecord] = field(default_factory=list)
    datasets: list[DatasetRecord] = field(default_factory=list)
    series: list[SeriesSummary] = field(default_factory=list)
    metrics_file: DataRecord | None = None  # relative to the workflow run folder
    sources: list[SourceRecord] = field(default_factory=list)
    command: CommandRecord | None = None
