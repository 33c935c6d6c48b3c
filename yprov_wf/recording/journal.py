"""The per-task journal (``journal/<task-run-id>.jsonl``): every record is appended as one JSON line
the moment it is logged, and records are rebuilt by replaying those lines.

The live scopes and ``yprov-wf recover`` both go through :func:`apply`, so a task rebuilt after a
kill holds exactly what had been logged before it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

from yprov_wf.layout import open_creating_folder
from yprov_wf.recording.records import DataRecord, ParamRecord, TaskRecord, WorkflowRecord


class Journal:
    """Append-only JSON-lines file, one ``write`` per event, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: typing.BinaryIO | None = None

    def append(self, event: str, payload: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open_creating_folder(self.path, "ab", buffering=0)
        self._file.write(encode_line({"event": event, **payload}))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def encode_line(event: dict[str, Any]) -> bytes:
    """One journal line. Whatever got into a record is written: lone surrogates as JSON escapes (read
    back as they were), objects json cannot write (a path, a numpy number) as their text."""
    try:
        return json.dumps(event, ensure_ascii=False, allow_nan=True).encode("utf-8") + b"\n"
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return json.dumps(event, ensure_ascii=True, allow_nan=True, default=str).encode("ascii") + b"\n"


def encode(record: Any) -> dict[str, Any]:
    """A record as a JSON-able dict: what ``dataclasses.asdict`` gives, without its deep copy of every
    scalar (it is on each task's path, several times)."""
    return _encode_value(record)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _encode_value(value: Any) -> Any:
    cls = type(value)
    if cls in _SCALARS:
        return value
    names = _field_names(cls)
    if names is not None:
        return {name: _encode_value(getattr(value, name)) for name in names}
    if cls is list:
        return [_encode_value(v) for v in value]
    if cls is dict:
        return {_encode_value(k): _encode_value(v) for k, v in value.items()}
    return dataclasses.asdict(_Box(value))["value"]  # tuples, subclasses, other objects: as asdict copies them


@dataclasses.dataclass
class _Box:
    value: Any


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass (None for any other class)."""
    return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None


def decode(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a record dataclass (and the dataclasses nested in it) from :func:`encode`'s output."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _decode_value(hints[f.name], data[f.name])
    return cls(**kwargs)


@cache
def _hints(cls: type) -> dict[str, Any]:
    from yprov_wf.recording import run_records  # the names TaskRecord.runs refers to

    return typing.get_type_hints(cls, localns=vars(run_records))


def _decode_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode_value(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_decode_value(item, v) for v in value]
    if dataclasses.is_dataclass(hint):
        return decode(hint, value)
    return value


def apply(task: TaskRecord | None, event: dict[str, Any]) -> TaskRecord:
    """Apply one journal event to a task's records; ``task`` is None before ``task_opened``."""
    kind = event["event"]
    if kind == "task_opened":
        return decode(TaskRecord, event)
    if task is None:
        raise ValueError(f"journal event {kind!r} before task_opened")
    if kind == "task_param":
        task.params.append(decode(ParamRecord, event))
    elif kind in ("task_input", "task_output"):
        (task.inputs if kind == "task_input" else task.outputs).append(decode(DataRecord, event))
    elif kind == "task_closed":
        task.status, task.ended, task.error = event["status"], event["ended"], event.get("error")
        task.outputs.extend(decode(DataRecord, f) for f in event.get("outputs", ()))
        task.attributes.update(event.get("attributes", {}))
    elif kind in _RUN_EVENTS:
        _apply_run_event(task, kind, event)
    else:
        raise ValueError(f"unknown journal event {kind!r}")
    return task


# an ML run's list events: the run's list each appends to, and the record (in run_records) it holds
_RUN_LISTS = {
    "param": ("params", "ParamRecord"),
    "artifact": ("artifacts", "ArtifactRecord"),
    "model_version": ("model_versions", "ModelVersionRecord"),
    "model": ("models", "ModelRecord"),
    "dataset": ("datasets", "DatasetRecord"),
    "source": ("sources", "SourceRecord"),
}
_RUN_EVENTS = frozenset({"run_opened", "run_closed", "command", *_RUN_LISTS})


def _apply_run_event(task: TaskRecord, kind: str, event: dict[str, Any]) -> None:
    """An event of an ML run inside the task (only tasks that ran one load the ML-run records)."""
    from yprov_wf.recording import run_records as r

    if kind == "run_opened":
        task.runs.append(decode(r.RunRecord, event))
        return
    run = task.run(event["run_id"])
    if kind == "run_closed":
        run.status, run.ended, run.error = event["status"], event["ended"], event.get("error")
        run.series = [decode(r.SeriesSummary, s) for s in event.get("series", ())]
        mf = event.get("metrics_file")
        run.metrics_file = decode(DataRecord, mf) if mf else None
    elif kind == "command":
        run.command = decode(r.CommandRecord, event)
    else:
        attr, cls = _RUN_LISTS[kind]
        getattr(run, attr).append(decode(getattr(r, cls), event))


def read_events(path: Path) -> list[dict[str, Any]]:
    """The journal's events; a torn last line (killed process) is skipped."""
    events = []
    with open(path, "rb") as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:
                break
    return events


def replay_task(path: Path) -> TaskRecord | None:
    task = None
    for event in read_events(path):
        task = apply(task, event)
    return task


def replay_workflow(path: Path) -> WorkflowRecord | None:
    wf = None
    for event in read_events(path):
        if event["event"] == "workflow_opened":
            wf = decode(WorkflowRecord, event)
        elif event["event"] == "workflow_environment" and wf is not None:
            wf.environment.update(event.get("environment", {}))
        elif event["event"] == "workflow_closed" and wf is not None:
            wf.status, wf.ended, wf.error = event["status"], event["ended"], event.get("error")
            wf.attributes.update(event.get("attributes", {}))
    return wf
