"""The data flow of one workflow run: which generation each task input is, never joined on a digest alone.

Each output of a task is its own entity (one generation). An input is the generation it names (an output
record that ``log_output`` returned, passed on to ``log_input``), or, for a file, the latest generation of
the same path before the use, when that generation has the digest the consumer read. Empty files, copies,
identical bytes in different files and a file regenerated later or in another run are thus told apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from yprov_wf.prov import vocabulary as v
from yprov_wf.recording.records import MISSING, DataRecord, TaskRecord


@dataclass(frozen=True, slots=True)
class Generation:
    """One output of one task: the entity (local id), its record, and when it was generated."""

    task_id: str
    entity: str
    record: DataRecord
    time: float


def output_entity(task: TaskRecord, index: int) -> str:
    """The local id of a task's ``index``-th output."""
    return task.outputs[index].entity or v.output_id(task.task_id, index)


def input_entity(task: TaskRecord, index: int) -> str:
    """The local id a task's bundle gives its ``index``-th input (the output it names, or its own)."""
    return task.inputs[index].entity or v.input_id(task.task_id, index)


def generation_time(task: TaskRecord, f: DataRecord) -> float:
    return f.time if f.time is not None else (task.ended if task.ended is not None else task.started)


def use_time(task: TaskRecord, f: DataRecord) -> float:
    return f.time if f.time is not None else task.started


def generations(tasks: Sequence[TaskRecord]) -> dict[str, Generation]:
    """Every output of the run by entity id."""
    out: dict[str, Generation] = {}
    for task in tasks:
        if task.status == MISSING:
            continue
        for i, f in enumerate(task.outputs):
            g = Generation(task.task_id, output_entity(task, i), f, generation_time(task, f))
            out.setdefault(g.entity, g)
    return out


def resolve(tasks: Sequence[TaskRecord]) -> dict[tuple[str, int], Generation]:
    """The generation each input read, by (task id, input index); inputs that no task of this run
    generated (raw data, a value whose producer is unknown) are absent."""
    gens = generations(tasks)
    by_path: dict[str, list[Generation]] = {}
    for g in gens.values():
        if g.record.path is not None:
            by_path.setdefault(g.record.path, []).append(g)
    found: dict[tuple[str, int], Generation] = {}
    for task in tasks:
        for i, f in enumerate(task.inputs):
            g = gens.get(f.entity) if f.entity else None
            if g is None and f.path is not None:
                g = _latest(by_path.get(f.path, ()), use_time(task, f), f.sha256)
            if g is not None:
                found[(task.task_id, i)] = g
    return found


def informants(task: TaskRecord, flow: dict[tuple[str, int], Generation]) -> set[str]:
    """The other tasks whose outputs ``task`` used (its wasInformedBy)."""
    return {g.task_id for i in range(len(task.inputs)) if (g := flow.get((task.task_id, i))) is not None} - {
        task.task_id}


def _latest(candidates: Sequence[Generation], when: float, sha256: str) -> Generation | None:
    """The last generation at or before ``when``, if it holds the bytes that were read; otherwise the
    file changed after it without a record, and nothing is linked."""
    before = [g for g in candidates if g.time <= when]
    if not before:
        return None
    last = max(before, key=lambda g: (g.time, g.task_id, g.entity))
    return last if last.record.sha256 == sha256 else None


class GenerationIndex:
    """The file outputs recorded so far in this process for one workflow run, so that a task's bundle
    can name the very generation each input file is (the same rule as :func:`resolve`); thread-safe.
    A process that sees only some of the run's tasks leaves the others to ``workflow.json``."""

    def __init__(self) -> None:
        import threading

        self._by_path: dict[str, list[Generation]] = {}
        self._lock = threading.Lock()

    def add(self, task_id: str, outputs: Sequence[DataRecord], when: float) -> None:
        """Outputs that carry their entity id; ``when`` is the generation time of those with none."""
        with self._lock:
            for f in outputs:
                if f.path is not None and f.entity:
                    g = Generation(task_id, f.entity, f, f.time if f.time is not None else when)
                    self._by_path.setdefault(f.path, []).append(g)

    def link(self, inputs: Sequence[DataRecord], when: float) -> None:
        """Give each input file that names no entity the entity of the generation it reads, if known."""
        with self._lock:
            for f in inputs:
                if f.path is not None and not f.entity:
                    g = _latest(self._by_path.get(f.path, ()), f.time if f.time is not None else when, f.sha256)
                    if g is not None:
                        f.entity = g.entity
