"""Workflow and task scopes: context managers and decorators that open a workflow run and the task
attempts inside it, journal what happens, and write ``workflow.json`` and ``tasks/<id>.json``."""

from __future__ import annotations

import functools
import inspect
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any, TypeVar

from yprov_wf import describe
from yprov_wf.environment import runtime_environment
from yprov_wf.errors import warn_degraded
from yprov_wf.layout import WorkflowDir, atomic_write, new_run_id, new_workflow_run_id, safe_name, sha256_file
from yprov_wf.prov.vocabulary import check_namespace
from yprov_wf.recording import current
from yprov_wf.recording.journal import Journal, apply, encode
from yprov_wf.recording.records import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    DataRecord,
    ParamRecord,
    Scalar,
    TaskRecord,
    WorkflowRecord,
)

F = TypeVar("F", bound=Callable[..., Any])
PathLike = str | os.PathLike

DEFAULT_NAMESPACE = "https://yprov-wf.invalid/"  # RFC 2606 placeholder: set your own namespace
RUN_DIR_ENV = "YPROV_WF_RUN_DIR"  # a workflow run folder that tasks in this process join


def default_save_dir() -> Path:
    return Path(os.environ.get("YPROV_WF_SAVE_DIR", "prov"))


def default_namespace() -> str:
    return os.environ.get("YPROV_WF_NAMESPACE", DEFAULT_NAMESPACE)


class _Scope:
    """Single-use context manager (sync and async) that is also a decorator opening a fresh copy per call."""

    _var: ContextVar[Any]
    _token: Token | None = None
    _state = "new"

    def open(self) -> _Scope:
        raise NotImplementedError

    def close(self, status: str = COMPLETED, error: str | None = None) -> None:
        raise NotImplementedError

    def _fresh(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> _Scope:
        raise NotImplementedError

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close(COMPLETED)
        else:
            status = INTERRUPTED if isinstance(exc, (KeyboardInterrupt, SystemExit)) else FAILED
            self.close(status, current.error_text(exc))

    async def __aenter__(self):
        return self.open()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"{type(self).__name__} decorates a callable, got {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args, **kwargs):
                async with self._fresh(fn, args, kwargs):
                    return await fn(*args, **kwargs)
            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args, **kwargs):
            with self._fresh(fn, args, kwargs):
                return fn(*args, **kwargs)
        return run  # type: ignore[return-value]

    def _enter_context(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"{type(self).__name__} {getattr(self, 'name', '')!r} was already used; "
                               "create a new one (or use it as a decorator)")
        self._state = "open"
        self._token = self._var.set(self)
        current.register(self)

    def _leave_context(self, parent: Any) -> bool:
        """Mark closed and restore the context; False if it was closed already."""
        if self._state != "open":
            return False
        self._state = "closed"
        current.unregister(self)
        try:
            if self._token is not None:
                self._var.reset(self._token)
        except ValueError:  # closed from another context (fluent API): fall back to the parent
            if self._var.get() is self:
                self._var.set(parent)
        return True

    def close_at_exit(self, status: str, error: str) -> None:
        self.close(status, error)

    @property
    def closed(self) -> bool:
        return self._state == "closed"


class WorkflowScope(_Scope):
    """One workflow run: a folder, a workflow activity and the collection of its task bundles."""

    _var = current.workflow_var

    def __init__(self, name: str, *, namespace: str | None = None, save_dir: PathLike | None = None,
                 run_id: str | None = None, params: Mapping[str, Any] | None = None, engine: str = "python",
                 env_vars: Iterable[str] = (), artifact_roots: Iterable[PathLike] | None = None,
                 owner: bool = True, attributes: Mapping[str, Scalar] | None = None) -> None:
        self.name = _check_name(name, "workflow name")
        self.namespace = check_namespace(namespace if namespace is not None else default_namespace())
        self.save_dir = Path(save_dir) if save_dir is not None else default_save_dir()
        self.run_id = safe_name(run_id, "workflow run id") if run_id is not None else None
        self.params = dict(params or {})
        self.engine = engine
        self.env_vars = tuple(env_vars)
        self.artifact_roots = tuple(Path(p) for p in artifact_roots or ())
        self.owner = owner
        self.attributes = {_check_attribute(k): v for k, v in (attributes or {}).items()}
        if not owner and run_id is None:
            raise ValueError("a workflow joined from another process needs the run_id of the owner")
        self._warned = False
        self.broken = False
        self.tasks: list[TaskScope] = []

    def _fresh(self, fn, args, kwargs) -> WorkflowScope:
        return WorkflowScope(self.name, namespace=self.namespace, save_dir=self.save_dir,
                             params=self.params or _call_params(fn, args, kwargs), engine=self.engine,
                             env_vars=self.env_vars, artifact_roots=self.artifact_roots,
                             attributes=self.attributes)

    def open(self) -> WorkflowScope:
        self._enter_context()
        self.run_id = self.run_id or new_workflow_run_id()
        self.dir = WorkflowDir(self.save_dir / safe_name(self.name) / self.run_id)
        self.record = WorkflowRecord(
            workflow_id=self.run_id, name=self.name, namespace=self.namespace, started=time.time(),
            engine=self.engine, params=_param_records(self.params),
            environment=runtime_environment(self.env_vars), attributes=dict(self.attributes),
        )
        self.journal = Journal(self.dir.workflow_journal)
        if self.owner:
            self.io(self.journal.append, "workflow_opened", encode(self.record))
        return self

    def close(self, status: str = COMPLETED, error: str | None = None) -> None:
        if self._state == "new" or not self._leave_context(None):
            return
        for task in list(self.tasks):
            if not task.closed:
                task.close(status if status != COMPLETED else INTERRUPTED,
                           error or "the workflow closed before the task")
        rec = self.record
        rec.status, rec.ended, rec.error = status, time.time(), error
        if not self.owner:  # a participant writes only its task files; the owner writes workflow.json
            return
        self.io(self.journal.append, "workflow_closed", {"status": status, "ended": rec.ended, "error": error,
                                                         "attributes": rec.attributes})
        self.io(write_workflow_file, self.dir, rec)
        self.journal.close()
        if not self.broken:
            self.io(_remove_journal, self.journal.path)

    def set_attribute(self, name: str, value: Scalar) -> None:
        """An engine-specific attribute of the workflow activity (e.g. an engine's own state name)."""
        self.attributes[_check_attribute(name)] = value
        if self._state != "new":
            self.record.attributes[name] = value

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables that make tasks in a child process join this workflow run."""
        return {RUN_DIR_ENV: str(self.dir.root.resolve())}

    def io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a provenance write; on failure warn once and stop writing (the user's work goes on)."""
        if self.broken:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            self.degrade(exc)
            return None

    def degrade(self, exc: BaseException) -> None:
        self.broken = True
        if not self._warned:
            self._warned = True
            warn_degraded(f"yprov-wf: cannot write provenance under {self.save_dir} "
                          f"({type(exc).__name__}: {exc}); "
                          "recording is off for this workflow run, your code goes on", stacklevel=4)

    def allowed_artifact_roots(self) -> list[Path]:
        roots = [Path.cwd(), Path(tempfile.gettempdir()), self.dir.root, *self.artifact_roots]
        extra = os.environ.get("YPROV_WF_ARTIFACT_ROOTS")
        if extra:
            roots += [Path(p) for p in extra.split(os.pathsep) if p]
        return [r.resolve() for r in roots]


def join_workflow(run_dir: PathLike) -> WorkflowScope:
    """A participant scope for a workflow run that another process owns (and will write workflow.json
    for): tasks opened in it write their bundles into ``run_dir``. Reads the owner's name, id and
    namespace from its journal or workflow.json."""
    from yprov_wf.prov.reading import read_workflow_file
    from yprov_wf.recording.journal import replay_workflow

    wdir = WorkflowDir(Path(run_dir))
    if wdir.workflow_journal.is_file():
        rec = replay_workflow(wdir.workflow_journal)
    elif wdir.workflow_file.is_file():
        rec = read_workflow_file(wdir.workflow_file)
    else:
        rec = None
    if rec is None:
        raise FileNotFoundError(f"{run_dir} is not an open workflow run (no journal/workflow.jsonl or workflow.json)")
    return WorkflowScope(rec.name, namespace=rec.namespace, save_dir=wdir.root.parent.parent,
                         run_id=rec.workflow_id, engine=rec.engine, owner=False)


class TaskScope(_Scope):
    """One attempt of one task: a PROV bundle inside the current workflow run (or, with none open, a
    workflow of its own)."""

    _var = current.task_var

    def __init__(self, name: str, *, inputs: Iterable[PathLike] = (), outputs: Iterable[PathLike] = (),
                 params: Mapping[str, Any] | None = None, run_id: str | None = None, attempt: int = 1,
                 attributes: Mapping[str, Scalar] | None = None, namespace: str | None = None,
                 save_dir: PathLike | None = None) -> None:
        self.name = _check_name(name, "task name")
        self.inputs = [Path(p) for p in _paths(inputs, "inputs")]
        self.outputs = [Path(p) for p in _paths(outputs, "outputs")]
        self.params = dict(params or {})
        self.run_id = safe_name(run_id, "task run id") if run_id is not None else None
        if not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be a positive int, got {attempt!r}")
        self.attempt = attempt
        self.attributes = {_check_attribute(k): v for k, v in (attributes or {}).items()}
        self.namespace, self.save_dir = namespace, save_dir
        self.owns_workflow = False
        self.runs: list[Any] = []

    def _fresh(self, fn, args, kwargs) -> TaskScope:
        return TaskScope(self.name, inputs=self.inputs, outputs=self.outputs,
                         params=self.params or _call_params(fn, args, kwargs), attempt=self.attempt,
                         attributes=self.attributes, namespace=self.namespace, save_dir=self.save_dir)

    def open(self) -> TaskScope:
        missing = [str(p) for p in self.inputs if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"task {self.name!r}: input file(s) not found: {', '.join(missing)}")
        wf = current.workflow_var.get() or current.only_open(WorkflowScope)
        if wf is None:
            joined = os.environ.get(RUN_DIR_ENV)
            wf = (join_workflow(joined) if joined else
                  WorkflowScope(self.name, namespace=self.namespace, save_dir=self.save_dir)).open()
            self.owns_workflow = True
        self.workflow = wf
        self._enter_context()
        wf.tasks.append(self)
        self.run_id = self.run_id or new_run_id(self.name)
        self.record = TaskRecord(
            task_id=self.run_id, name=self.name, workflow_id=wf.record.workflow_id,
            workflow_name=wf.name, namespace=wf.namespace, started=time.time(), attempt=self.attempt,
            host=socket.gethostname(), pid=os.getpid(), params=_param_records(self.params),
            inputs=[_file_record(p) for p in self.inputs], attributes=dict(self.attributes),
        )
        self.journal = Journal(wf.dir.task_journal(self.run_id))
        wf.io(self.journal.append, "task_opened", encode(self.record))
        return self

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Record one event: apply it to the in-memory records and append it to the journal."""
        apply(self.record, {"event": event, **payload})
        self.workflow.io(self.journal.append, event, payload)

    def log_param(self, key: str, value: Any) -> None:
        """A task-level parameter (used by the task activity)."""
        _add_param(self.record.params, key, value, lambda p: self.emit("task_param", encode(p)))

    def log_input(self, item: Any, name: str | None = None) -> DataRecord:
        """Record a file (a path) or an in-memory value the task used, identified by its sha256."""
        rec = _data_record(item, name)
        self.emit("task_input", encode(rec))
        return rec

    def log_output(self, item: Any, name: str | None = None) -> DataRecord:
        """Record a file (a path) or a value (e.g. the task's result) the task generated."""
        rec = _data_record(item, name)
        self.emit("task_output", encode(rec))
        return rec

    def set_attribute(self, name: str, value: Scalar) -> None:
        """An engine-specific attribute of the task activity (e.g. an engine's own run id)."""
        self.attributes[_check_attribute(name)] = value
        self.record.attributes[name] = value

    def close(self, status: str = COMPLETED, error: str | None = None) -> None:
        if self._state == "new" or not self._leave_context(None):
            return
        for run in list(self.runs):
            if not run.closed:
                run.end(status if status != COMPLETED else INTERRUPTED, error or "the task closed before the run")
        wf = self.workflow
        outputs = [_file_record(p) for p in self.outputs if p.is_file()]
        self.emit("task_closed", {"status": status, "ended": time.time(), "error": error,
                                  "outputs": [encode(f) for f in outputs], "attributes": self.attributes})
        wf.io(write_task_file, wf.dir, self.record)
        self.journal.close()
        if not wf.broken:
            wf.io(_remove_journal, self.journal.path)
        if self.owns_workflow:
            wf.close(status, error)


def write_task_file(wdir: WorkflowDir, task: TaskRecord) -> None:
    from yprov_wf.prov.mapping import task_document, to_json

    atomic_write(wdir.task_file(task.task_id), to_json(task_document(task)))


def write_workflow_file(wdir: WorkflowDir, wf: WorkflowRecord) -> None:
    """workflow.json from the workflow record and every task file present (any process wrote them)."""
    from yprov_wf.prov.mapping import to_json, workflow_document
    from yprov_wf.prov.reading import read_task_file

    tasks = [read_task_file(p) for p in sorted((wdir.root / "tasks").glob("*.json"))]
    tasks.sort(key=lambda t: (t.started, t.task_id))
    atomic_write(wdir.workflow_file, to_json(workflow_document(wf, tasks)))


def _remove_journal(path: Path) -> None:
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # other journals still open


def _add_param(params: list[ParamRecord], key: str, value: Any, emit: Callable[[ParamRecord], None]) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError(f"param key must be a non-empty str, got {key!r}")
    rendered, type_name = describe.param_value(value)
    for p in params:
        if p.key == key:
            if p.value == rendered and p.type == type_name:
                return
            raise ValueError(f"param {key!r} was already logged as {p.value!r}; cannot change it to {rendered!r}")
    emit(ParamRecord(key, rendered, type_name))


def _param_records(params: Mapping[str, Any]) -> list[ParamRecord]:
    out: list[ParamRecord] = []
    for key, value in params.items():
        _add_param(out, key, value, out.append)
    return out


def _call_params(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A decorated function's arguments by name (what the call was parameterised with)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {}
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items()
            if isinstance(v, (str, int, float, bool, Path)) or v is None}


def _data_record(item: Any, name: str | None) -> DataRecord:
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"data file {str(item)!r} not found")
        rec = _file_record(path)
        rec.name = name
        return rec
    sha, size, description = describe.value_fingerprint(item)
    return DataRecord(path=None, sha256=sha, size=size, name=name, description=description)


def _file_record(path: Path) -> DataRecord:
    p = path.resolve()
    return DataRecord(path=str(p), sha256=sha256_file(p), size=p.stat().st_size)


def _paths(paths: Iterable[PathLike], what: str) -> list[PathLike]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = list(paths)
    for p in out:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"{what} must be file paths, got {type(p).__name__}")
    return out


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise (TypeError if not isinstance(name, str) else ValueError)(f"{what} must be a non-empty str, got {name!r}")
    return name


def _check_attribute(name: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"attribute name {name!r} must be an identifier")
    return name
