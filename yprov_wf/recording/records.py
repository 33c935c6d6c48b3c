"""What gets recorded: plain dataclasses, JSON-able field by field, free of any PROV or file format.

A task's records are built by applying journal events (see ``journal.py``), both while it runs and
when ``yprov-wf recover`` rebuilds a killed task, so the two can never disagree. The records of the ML
runs inside a task are in ``run_records.py`` (an engine recording only its tasks never loads them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yprov_wf.recording.run_records import RunRecord

Scalar = str | int | float | bool | None

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"  # the process exited without closing the scope
CRASHED = "crashed"  # the process died; rebuilt by `yprov-wf recover`
MISSING = "missing"  # an expected rank of a distributed step that wrote no bundle
STATUSES = (RUNNING, COMPLETED, FAILED, INTERRUPTED, CRASHED, MISSING)


@dataclass(slots=True)
class DataRecord:
    """A file or an in-memory value that a task used or generated: one generation, its digest an attribute.

    ``path`` is set for files (absolute, or relative to the workflow run folder for its own files);
    values (a task's result, a tensor argument) have a ``name`` and a readable ``description`` instead.
    ``entity`` is the PROV entity's local id: given to each output when it is recorded (one generation);
    on an input, the output it is when the caller knows (a record that ``log_output`` returned), else
    None (the input's own entity; ``workflow.json`` links a file to the generation it read).
    ``time`` is when it was used or generated (None: the task's start or end).
    """

    path: str | None
    sha256: str  # "": no content seen (a pipe streams its bytes; a temporary file removed before it was hashed)
    size: int
    name: str | None = None
    description: str | None = None
    entity: str | None = None
    time: float | None = None
    kind: str | None = None  # TEMPORARY or PIPE: a file expected to be gone after the workflow run


TEMPORARY = "temporary"  # removed by the engine once no longer needed (Snakemake temp())
PIPE = "pipe"  # a named pipe between two running jobs (Snakemake pipe()): never on disk afterwards
FILE_KINDS = (TEMPORARY, PIPE)


@dataclass(slots=True)
class AgentRecord:
    """Who or what acted: the person who ran the work (``role="person"``), or a software agent: yprov-wf
    itself (``"recorder"``), the workflow engine (``"engine"``), a launcher such as torchrun or SLURM
    (``"launcher"``)."""

    role: str
    name: str  # the user name, or an IRI naming the person (ORCID…); the software's name
    version: str | None = None
    instance: str | None = None  # a launcher's own id: torchrun's run id, SLURM's job id


@dataclass(slots=True)
class ParamRecord:
    key: str
    value: Scalar
    type: str  # the Python type name of the original value
    context: str | None = None  # yProv4ML 2.x/3.x log_param(key, value, context)


@dataclass(slots=True)
class TaskRecord:
    """One attempt of one workflow task; it becomes one PROV bundle."""

    task_id: str
    name: str
    workflow_id: str
    workflow_name: str
    namespace: str
    started: float
    attempt: int = 1
    host: str = ""
    pid: int = 0
    parent_task: str | None = None  # the task that launched this one (e.g. torchrun ranks), else the workflow
    status: str = RUNNING
    ended: float | None = None
    error: str | None = None
    params: list[ParamRecord] = field(default_factory=list)
    inputs: list[DataRecord] = field(default_factory=list)
    outputs: list[DataRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    attributes: dict[str, Scalar] = field(default_factory=dict)  # engine-specific ids and settings
    agents: list[AgentRecord] = field(default_factory=list)  # the workflow's, plus this process's launcher

    def run(self, run_id: str) -> RunRecord:
        for r in reversed(self.runs):
            if r.run_id == run_id:
                return r
        raise KeyError(run_id)


@dataclass(slots=True)
class WorkflowRecord:
    """One workflow run: the collection every task bundle belongs to."""

    workflow_id: str
    name: str
    namespace: str
    started: float
    engine: str = "python"
    status: str = RUNNING
    ended: float | None = None
    error: str | None = None
    params: list[ParamRecord] = field(default_factory=list)
    environment: dict[str, Scalar] = field(default_factory=dict)
    attributes: dict[str, Scalar] = field(default_factory=dict)  # engine-specific ids and settings
    agents: list[AgentRecord] = field(default_factory=list)
