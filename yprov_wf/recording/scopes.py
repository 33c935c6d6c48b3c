"""Workflow and task scopes: context managers and decorators that open a workflow run and the task
attempts inside it, journal what happens, and write ``workflow.json`` and ``tasks/<id>.json``."""

from __future__ import annotations

import functools
import inspect
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any, TypeVar

from yprov_wf import describe
from yprov_wf.collectors.energy_fields import COUNTRY_ENV, ENERGY_ENV, check_country, energy_enabled
from yprov_wf.collectors.registry import warn_once
from yprov_wf.collectors.run_collectors import check_interval, check_names
from yprov_wf.environment import InBackground, runtime_environment
from yprov_wf.errors import warn_degraded
from yprov_wf.layout import WorkflowDir, atomic_write, digest_path, new_run_id, new_workflow_run_id, safe_name
from yprov_wf.prov.dataflow import GenerationIndex
from yprov_wf.prov.vocabulary import check_namespace, output_id
from yprov_wf.recording import current
from yprov_wf.recording.agents import person, with_launchers, workflow_agents
from yprov_wf.recording.journal import Journal, apply, encode
from yprov_wf.recording.params import add_param, param_records
from yprov_wf.recording.records import (
    COMPLETED,
    INTERRUPTED,
    STATUSES,
    AgentRecord,
    DataRecord,
    Scalar,
    TaskRecord,
    WorkflowRecord,
)
from yprov_wf.values import check_scalar, check_text, check_time, clean_text

F = TypeVar("F", bound=Callable[..., Any])
PathLike = str | os.PathLike

DEFAULT_NAMESPACE = "https://yprov-wf.invalid/"  # RFC 2606 placeholder: set your own namespace
RUN_DIR_ENV = "YPROV_WF_RUN_DIR"  # a workflow run folder that tasks in this process join
PARENT_TASK_ENV = "YPROV_WF_PARENT_TASK"  # the task (in another process) that launched this process


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
        self.close(*current.exit_status(exc))

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

    def forked(self) -> None:
        """This process is a fork of the one that opened the scope: leave the scope to the parent."""
        self._state = "closed"

    @property
    def closed(self) -> bool:
        return self._state == "closed"


class WorkflowScope(_Scope):
    """One workflow run: a folder, a workflow activity and the collection of its task bundles."""

    _var = current.workflow_var

    def __init__(self, name: str, *, namespace: str | None = None, save_dir: PathLike | None = None,
                 run_id: str | None = None, params: Mapping[str, Any] | None = None, engine: str = "python",
                 env_vars: Iterable[str] = (), artifact_roots: Iterable[PathLike] | None = None,
                 owner: bool = True, expected_tasks: int | None = None,
                 attributes: Mapping[str, Scalar] | None = None, system_metrics_interval: float | None = None,
                 collectors: Iterable[str] | None = None, energy: bool | None = None,
                 energy_country: str | None = None, env_allow: Iterable[str] = (),
                 env_deny: Iterable[str] = (), user: str | bool | None = None,
                 engine_version: str | None = None, source_dir: PathLike | None = None) -> None:
        self.name = _check_name(name, "workflow name")
        self.attributes = _attributes(attributes)
        self.namespace = check_namespace(namespace if namespace is not None else default_namespace())
        self.save_dir = Path(save_dir) if save_dir is not None else default_save_dir()
        self.run_id = safe_name(run_id, "workflow run id") if run_id is not None else None
        self.params = dict(params or {})
        self.engine = engine
        if engine_version is not None and not isinstance(engine_version, str):
            raise TypeError(f"engine_version must be a str, got {type(engine_version).__name__}")
        self.engine_version = engine_version
        if source_dir is not None and not isinstance(source_dir, (str, os.PathLike)):
            raise TypeError(f"source_dir must be a folder path, got {type(source_dir).__name__}")
        self.source_dir = Path(source_dir) if source_dir is not None else None
        if user is not None and not isinstance(user, bool):
            person(user)  # a bad user name fails here, naming it
        self.user = user
        self.inherited_agents: list[AgentRecord] | None = None  # a joined run: the owner's agents
        self.env_vars = _names(env_vars, "env_vars")
        self.env_allow = _names(env_allow, "env_allow")
        self.env_deny = _names(env_deny, "env_deny")
        self.system_metrics_interval = check_interval(system_metrics_interval)
        self.collectors = check_names(collectors)
        self.energy = energy_enabled(energy) if energy is not None else None
        self.energy_country = check_country(energy_country) if energy_country is not None else None
        self.artifact_roots = tuple(Path(p) for p in artifact_roots or ())
        self.owner = owner
        self.expected_tasks = expected_tasks  # distributed: wait for this many task files before closing
        if not owner and run_id is None:
            raise ValueError("a workflow joined from another process needs the run_id of the owner")
        self._warned = False
        self.broken = False
        self.tasks: list[TaskScope] = []  # the tasks this process recorded in the run, open and closed
        self._written_ids: set[str] = set()  # task ids recorded by this process (see claim_task_id)
        self._bundles: dict[str, TaskRecord] = {}  # what this process's task files hold, for workflow.json
        self._claim_lock = threading.Lock()
        self.generations = GenerationIndex()  # file outputs recorded in this process (see prov.dataflow)

    def _fresh(self, fn, args, kwargs) -> WorkflowScope:
        return WorkflowScope(self.name, namespace=self.namespace, save_dir=self.save_dir,
                             params=self.params or _call_params(fn, args, kwargs), engine=self.engine,
                             env_vars=self.env_vars, artifact_roots=self.artifact_roots,
                             attributes=self.attributes,
                             system_metrics_interval=self.system_metrics_interval, collectors=self.collectors,
                             energy=self.energy, energy_country=self.energy_country, env_allow=self.env_allow,
                             env_deny=self.env_deny, user=self.user, engine_version=self.engine_version,
                             source_dir=self.source_dir)

    def open(self) -> WorkflowScope:
        self._enter_context()
        self.run_id = self.run_id or new_workflow_run_id()
        self.dir = WorkflowDir(self.save_dir / safe_name(self.name) / self.run_id)
        self.record = WorkflowRecord(
            workflow_id=self.run_id, name=self.name, namespace=self.namespace, started=time.time(),
            engine=self.engine, params=param_records(self.params),
            environment=runtime_environment(self.env_vars, self.env_allow, self.env_deny),
            attributes=dict(self.attributes),
            agents=list(self.inherited_agents) if self.inherited_agents is not None else
            workflow_agents(self.user, self.engine, self.engine_version),
        )
        self._slow_env = InBackground(self.source_dir) if self.owner else None
        if energy_enabled(self.energy):  # start the process's tracker now, in the background
            from yprov_wf.collectors.energy import energy_meter

            energy_meter(self.energy_country).start()
        self.journal = Journal(self.dir.workflow_journal)
        if self.owner:
            self.io(self.journal.append, "workflow_opened", encode(self.record))
        return self

    def close(self, status: str = COMPLETED, error: str | None = None) -> None:
        if self._state == "new" or not self._leave_context(None):
            return
        error = current.error_record(error) if error is not None else None
        for task in list(self.tasks):
            if not task.closed:
                task.close(status if status != COMPLETED else INTERRUPTED,
                           error or "the workflow closed before the task")
        rec = self.record
        rec.status, rec.ended, rec.error = status, time.time(), error
        if not self.owner:  # a participant writes only its task files; the owner writes workflow.json
            return
        if self._slow_env is not None:
            slow = self._slow_env.result()
            rec.environment.update(slow)
            self.io(self.journal.append, "workflow_environment", {"environment": slow})
        if self.expected_tasks:
            _wait_for_task_files(self.dir, self.expected_tasks)
        self.io(self.journal.append, "workflow_closed", {"status": status, "ended": rec.ended, "error": error,
                                                         "attributes": rec.attributes})
        self.io(write_workflow_file, self.dir, rec, self._bundles)
        self.journal.close()
        if not self.broken and self.dir.workflow_file.exists():  # else recover rebuilds it
            self.io(_remove_journal, self.journal.path, True)

    def forked(self) -> None:
        super().forked()
        self.broken = self._warned = True  # nothing more is written from the child

    def claim_task_id(self, task_id: str) -> str:
        """``task_id``, or ``task_id-2``, ``-3``… when a task of this workflow run already has it (here or
        on disk): two tasks given one id are both kept, with a warning, rather than one overwriting the other."""
        candidate, n = task_id, 1
        while True:
            # the disk is looked at without the lock (a stat lets other threads run, and they would queue
            # on it); the lock only makes taking the id from this process's set atomic
            if candidate not in self._written_ids and not self.dir.has_task(candidate):
                with self._claim_lock:
                    if candidate not in self._written_ids:
                        self._written_ids.add(candidate)
                        break
            n += 1
            candidate = f"{task_id}-{n}"
        if candidate != task_id:
            warn_degraded(f"yprov-wf: task run id {task_id!r} is already used in workflow run {self.run_id!r}; "
                          f"this task is recorded as {candidate!r}", stacklevel=4)
        return candidate

    def set_attribute(self, name: str, value: Scalar) -> None:
        """An engine-specific attribute of the workflow activity (e.g. an engine's own state name)."""
        value = check_scalar(value, f"attribute {name!r}")
        self.attributes[_check_attribute(name)] = value
        if self._state != "new":
            self.record.attributes[name] = value

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables that make tasks in a child process join this workflow run (and track
        energy there too when this workflow does)."""
        env = {RUN_DIR_ENV: str(self.dir.root.resolve())}
        if self.energy:
            env[ENERGY_ENV] = "1"
            if self.energy_country:
                env[COUNTRY_ENV] = self.energy_country
        return env

    def io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a provenance write. The storage failing (OSError: disk full, folder gone) is warned once
        and stops writing; any other failure costs only this write, with a warning (the user's work
        goes on either way)."""
        if self.broken:
            return None
        try:
            return fn(*args)
        except OSError as exc:
            self.degrade(exc)
        except Exception as exc:
            self.drop(getattr(fn, "__name__", "a write"), exc)
        return None

    def record_io(self, what: str, task: TaskScope | None, fn: Callable[..., Any], *args: Any) -> Any:
        """A write that concerns one record only (copying a file in, saving a model): any failure drops
        that record with a warning naming it, noted on ``task`` for ``validate``; recording goes on."""
        if self.broken:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            self.drop(what, exc, task)
            return None

    def drop(self, what: str, exc: BaseException, task: TaskScope | None = None) -> None:
        """Warn that one record was not recorded, and note it in the task's bundle (``droppedRecords``)."""
        reason = clean_text(f"{what} ({type(exc).__name__}: {exc})")[:500]
        warn_degraded(f"yprov-wf: {reason} was not recorded; the rest of the run is", stacklevel=4)
        if task is not None and task._state == "open":
            notes = task.record.attributes.get(DROPPED)
            task.record.attributes[DROPPED] = f"{notes}; {reason}" if notes else reason

    def degrade(self, exc: BaseException) -> None:
        self.broken = True
        if not self._warned:
            self._warned = True
            warn_degraded(f"yprov-wf: cannot write provenance under {self.save_dir} "
                          f"({type(exc).__name__}: {exc}); "
                          "recording is off for this workflow run, your code goes on", stacklevel=4)

    def write_finished_task(self, name: str, *, started: float, ended: float, status: str = COMPLETED,
                            error: str | None = None, inputs: Iterable[DataRecord | PathLike] = (),
                            outputs: Iterable[DataRecord | PathLike] = (), params: Mapping[str, Any] | None = None,
                            attributes: Mapping[str, Scalar] | None = None, attempt: int = 1,
                            run_id: str | None = None) -> TaskRecord | None:
        """Record a task that has already ended as one bundle written at once, with no journal (nothing is
        left to recover): for engines that report a task only afterwards, like Snakemake's log events.
        ``inputs`` and ``outputs`` are paths or records hashed earlier (a temporary file may be gone by now);
        output paths that do not exist are left out. Returns the record, or None when recording is off."""
        if self._state != "open":
            raise RuntimeError(f"workflow run {self.name!r} is not open")
        if not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be a positive int, got {attempt!r}")
        started, ended = check_time(started, "started"), check_time(ended, "ended")
        if not isinstance(status, str) or not status:
            raise TypeError(f"status must be a non-empty str (e.g. {', '.join(STATUSES)}), got {status!r}")
        check_text(status, "status")
        if error is not None and not isinstance(error, str):
            raise TypeError(f"error must be a str or None, got {type(error).__name__}")
        error = current.error_record(error) if error is not None else None
        if self.broken:
            return None
        task_id = self.claim_task_id(safe_name(run_id, "task run id")) if run_id is not None else new_run_id(name)
        outs = [_timed(o) if isinstance(o, DataRecord) else file_record(Path(o))
                for o in _paths_or_records(outputs) if isinstance(o, DataRecord) or Path(o).exists()]
        for i, rec in enumerate(outs):
            rec.entity = output_id(task_id, i)
        ins = [_timed(i, keep_entity=True) if isinstance(i, DataRecord) else file_record(Path(i))
               for i in _paths_or_records(inputs)]
        self.generations.link(ins, started)
        self.generations.add(task_id, outs, ended)
        record = TaskRecord(
            task_id=task_id,
            name=_check_name(name, "task name"), workflow_id=self.record.workflow_id, workflow_name=self.name,
            namespace=self.namespace, started=started, attempt=attempt, host=socket.gethostname(),
            pid=os.getpid(), status=status, ended=ended, error=error, params=param_records(params or {}),
            inputs=ins, outputs=outs, attributes=_attributes(attributes), agents=list(self.record.agents),
        )
        self.write_bundle(record)
        return record

    def write_bundle(self, task: TaskRecord) -> bool:
        """Write (or rewrite) a task's bundle; True once written. ``workflow.json`` is later built from the
        records this process wrote and the task files of the others."""
        written = bool(self.io(write_task_file, self.dir, task))
        if written:
            self._bundles[task.task_id] = task
        return written

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
    scope = WorkflowScope(rec.name, namespace=rec.namespace, save_dir=wdir.root.parent.parent,
                          run_id=rec.workflow_id, engine=rec.engine, owner=False)
    scope.inherited_agents = rec.agents
    return scope


class TaskScope(_Scope):
    """One attempt of one task: a PROV bundle inside the current workflow run (or, with none open, a
    workflow of its own)."""

    _var = current.task_var

    def __init__(self, name: str, *, inputs: Iterable[PathLike] = (), outputs: Iterable[PathLike] = (),
                 params: Mapping[str, Any] | None = None, run_id: str | None = None, attempt: int = 1,
                 attributes: Mapping[str, Scalar] | None = None, namespace: str | None = None,
                 save_dir: PathLike | None = None, parent_task: str | None = None,
                 workflow: WorkflowScope | None = None, started: float | None = None,
                 system_metrics_interval: float | None = None, collectors: Iterable[str] | None = None,
                 energy: bool | None = None, energy_country: str | None = None,
                 user: str | bool | None = None) -> None:
        self.name = _check_name(name, "task name")
        if workflow is not None and not isinstance(workflow, WorkflowScope):
            raise TypeError(f"workflow must be a WorkflowScope, got {type(workflow).__name__}")
        self._parent = workflow  # explicit workflow run (e.g. a task recorded from another thread)
        self._started = _time_or_none(started, "started")
        self._bundle_written = False  # by close(); later attributes rewrite it
        self.inputs = [Path(p) for p in _paths(inputs, "inputs")]
        self.outputs = [Path(p) for p in _paths(outputs, "outputs")]
        self.params = dict(params or {})
        self.run_id = safe_name(run_id, "task run id") if run_id is not None else None
        if not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be a positive int, got {attempt!r}")
        self.attempt = attempt
        self.attributes = _attributes(attributes)
        self.namespace, self.save_dir = namespace, save_dir
        if user is not None and not isinstance(user, bool):
            person(user)
        self.user = user  # for the workflow this task opens when there is none
        self.parent_task = parent_task
        self.system_metrics_interval = check_interval(system_metrics_interval)
        self.collectors = check_names(collectors)
        self.energy = energy_enabled(energy) if energy is not None else None
        self.energy_country = check_country(energy_country) if energy_country is not None else None
        self._energy: Any = None
        self.owns_workflow = False
        self.runs: list[Any] = []

    def _fresh(self, fn, args, kwargs) -> TaskScope:
        return TaskScope(self.name, inputs=self.inputs, outputs=self.outputs,
                         params=self.params or _call_params(fn, args, kwargs), attempt=self.attempt,
                         attributes=self.attributes, namespace=self.namespace, save_dir=self.save_dir,
                         workflow=self._parent,
                         system_metrics_interval=self.system_metrics_interval, collectors=self.collectors,
                         energy=self.energy, energy_country=self.energy_country, user=self.user)

    def open(self) -> TaskScope:
        missing = [str(p) for p in self.inputs if not p.exists()]
        if missing:
            raise FileNotFoundError(f"task {self.name!r}: input file(s) not found: {', '.join(missing)}")
        wf = self._parent or current.workflow_var.get()
        if wf is None:
            joined = os.environ.get(RUN_DIR_ENV)
            wf = (join_workflow(joined) if joined else
                  WorkflowScope(self.name, namespace=self.namespace, save_dir=self.save_dir, user=self.user)).open()
            self.owns_workflow = True
            if joined and self.parent_task is None:
                self.parent_task = os.environ.get(PARENT_TASK_ENV) or None
        self.workflow = wf
        # options not given on the task come from its workflow
        if self.system_metrics_interval is None:
            self.system_metrics_interval = wf.system_metrics_interval
        if self.collectors is None:
            self.collectors = wf.collectors
        if self.energy is None:
            self.energy = energy_enabled(wf.energy)
        if self.energy_country is None:
            self.energy_country = wf.energy_country
        if self.run_id:
            self.run_id = wf.claim_task_id(self.run_id)
        else:
            self.run_id = new_run_id(self.name)
            wf._written_ids.add(self.run_id)
        self._enter_context()
        wf.tasks.append(self)
        self.record = TaskRecord(
            task_id=self.run_id, name=self.name, workflow_id=wf.record.workflow_id,
            workflow_name=wf.name, namespace=wf.namespace, started=self._started or time.time(),
            attempt=self.attempt, host=socket.gethostname(), pid=os.getpid(), parent_task=self.parent_task,
            params=param_records(self.params),
            inputs=[file_record(p) for p in self.inputs], attributes=dict(self.attributes),
            agents=with_launchers(list(wf.record.agents)),
        )
        wf.generations.link(self.record.inputs, self.record.started)
        self.journal = Journal(wf.dir.task_journal(self.run_id))
        wf.io(self.journal.append, "task_opened", encode(self.record))
        if self.energy:
            from yprov_wf.collectors.energy import TaskEnergy

            self._energy = TaskEnergy(self.energy_country, self.record.started)
        return self

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Record one event: apply it to the in-memory records and append it to the journal."""
        apply(self.record, {"event": event, **payload})
        self.workflow.io(self.journal.append, event, payload)

    def log_param(self, key: str, value: Any) -> None:
        """A task-level parameter (used by the task activity)."""
        add_param(self.record.params, key, value, lambda p: self.emit("task_param", encode(p)))

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables for a child process (e.g. ``torchrun``): its tasks join this workflow run
        and are started by this task."""
        return {**self.workflow.environment, PARENT_TASK_ENV: self.record.task_id}

    def log_input(self, item: Any, name: str | None = None, *, value: bool = False) -> DataRecord:
        """Record a file (a path) or an in-memory value the task used (its sha256 an attribute).
        ``value=True`` records a str or path as a value rather than the file it names. A record that
        another task's :meth:`log_output` returned links this task to that very generation."""
        rec = _data_record(item, name, value, keep_entity=True)
        rec.time = time.time()
        self.workflow.generations.link([rec], rec.time)
        self.emit("task_input", encode(rec))
        return rec

    def log_output(self, item: Any, name: str | None = None, *, value: bool = False) -> DataRecord:
        """Record a file (a path) or a value (e.g. the task's result) the task generated: a new entity,
        one generation; ``value`` as in :meth:`log_input`. Pass the returned record to a consumer's
        :meth:`log_input` to link the two."""
        rec = _data_record(item, name, value)
        rec.entity, rec.time = output_id(self.record.task_id, len(self.record.outputs)), time.time()
        self.emit("task_output", encode(rec))
        self.workflow.generations.add(self.record.task_id, [rec], rec.time)
        return rec

    def set_attribute(self, name: str, value: Scalar) -> None:
        """An engine-specific attribute of the task activity (e.g. an engine's own run id); after the close,
        as :meth:`amend`."""
        self._set_attribute(name, value)
        if self._bundle_written:
            self.workflow.write_bundle(self.record)

    def amend(self, **attributes: Scalar) -> None:
        """Set attributes of the attempt, also after it closed (an engine's later verdict, e.g. a task rolled
        back with its transaction): then its bundle is rewritten, and the workflow's collection says it too."""
        for name, value in attributes.items():
            self._set_attribute(name, value)
        if self._bundle_written:
            self.workflow.write_bundle(self.record)

    def _set_attribute(self, name: str, value: Scalar) -> None:
        value = check_scalar(value, f"attribute {name!r}")
        self.attributes[_check_attribute(name)] = value
        self.record.attributes[name] = value

    def close(self, status: str = COMPLETED, error: str | None = None, *, ended: float | None = None) -> None:
        """End the attempt; ``ended`` overrides the end time (an engine's own record of it)."""
        if self._state == "new" or not self._leave_context(None):
            return
        error = current.error_record(error) if error is not None else None
        for run in list(self.runs):
            if not run.closed:
                run.end(status if status != COMPLETED else INTERRUPTED, error or "the task closed before the run")
        wf = self.workflow
        outputs = [file_record(p) for p in self.outputs if p.exists()]
        for i, rec in enumerate(outputs, start=len(self.record.outputs)):
            rec.entity = output_id(self.record.task_id, i)
        ended = time.time() if ended is None else check_time(ended, "ended")
        if self._energy is not None:
            try:
                self.attributes.update(self._energy.totals(ended))
            except Exception as exc:  # a provenance-side failure: warn, never break the task
                warn_once("energy", f"could not total the task's energy ({type(exc).__name__}: {exc})")
        self.emit("task_closed", {"status": status, "ended": ended, "error": error,
                                  "outputs": [encode(f) for f in outputs], "attributes": self.attributes})
        wf.generations.add(self.record.task_id, outputs, ended)
        written = self._bundle_written = wf.write_bundle(self.record)
        self.journal.close()
        if written and not wf.broken:  # else recover rebuilds the bundle from the journal
            wf.io(_remove_journal, self.journal.path)
        if self.owns_workflow:
            wf.close(status, error)


def _wait_for_task_files(wdir: WorkflowDir, expected: int) -> None:
    """Give the other ranks of a distributed step time to write their bundles (YPROV_WF_RANK_WAIT s)."""
    deadline = time.monotonic() + float(os.environ.get("YPROV_WF_RANK_WAIT", "30"))
    tasks = wdir.root / "tasks"
    while time.monotonic() < deadline:
        if tasks.is_dir() and sum(1 for _ in tasks.glob("*.json")) >= expected:
            return
        time.sleep(0.1)


def write_task_file(wdir: WorkflowDir, task: TaskRecord) -> bool:
    """Write the task's bundle; True once written (``WorkflowScope.io`` gives None for a failed write)."""
    from yprov_wf.prov.mapping import task_document, to_json

    # no fsync per task (it alone costs more than the rest of a task's recording): like the journals,
    # task files survive a killed process; workflow.json, written last, is fsynced
    atomic_write(wdir.task_file(task.task_id), to_json(task_document(task, wdir.root)), durable=False)
    return True


def write_workflow_file(wdir: WorkflowDir, wf: WorkflowRecord, known: Mapping[str, TaskRecord] | None = None) -> None:
    """workflow.json from the workflow record and every task file present (any process wrote them);
    ``known``: the records of task files this process wrote, by task id, taken as they are rather than
    read back."""
    from yprov_wf.prov.mapping import to_json, workflow_document

    known = known or {}
    tasks = [known.get(p.stem) or _read_task_file(p) for p in sorted((wdir.root / "tasks").glob("*.json"))]
    if any(t.attributes.get("distributedGroup") for t in tasks):  # only a distributed step's ranks can be missing
        from yprov_wf.distributed import missing_ranks

        tasks += missing_ranks(tasks)
    tasks.sort(key=lambda t: (t.started, t.task_id))
    atomic_write(wdir.workflow_file, to_json(workflow_document(wf, tasks, wdir.root)))


def _read_task_file(path: Path) -> TaskRecord:
    from yprov_wf.prov.reading import read_task_file  # only for bundles another process wrote

    return read_task_file(path)


def _remove_journal(path: Path, last: bool = False) -> None:
    """Delete a closed scope's journal; the workflow's close also removes the then empty folder."""
    path.unlink(missing_ok=True)
    if last:
        try:
            path.parent.rmdir()
        except OSError:
            pass  # journals of tasks in other processes that are still open


def _call_params(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A decorated function's arguments by name (what the call was parameterised with)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {}
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items()
            if isinstance(v, (str, int, float, bool, Path)) or v is None}


def _data_record(item: Any, name: str | None, value: bool = False, keep_entity: bool = False) -> DataRecord:
    if isinstance(item, DataRecord):  # already fingerprinted (e.g. hashed before the file was removed)
        return DataRecord(item.path, item.sha256, item.size, name or item.name, item.description,
                          entity=item.entity if keep_entity else None, kind=item.kind)
    if isinstance(item, (str, os.PathLike)) and not value:
        rec = file_record(Path(item))
        rec.name = name
        return rec
    sha, size, description = describe.value_fingerprint(item)
    return DataRecord(path=None, sha256=sha, size=size, name=name, description=description)


def _timed(rec: DataRecord, keep_entity: bool = False) -> DataRecord:
    """A copy of a record an engine reported afterwards, with the time it gave (None: the task's start/end)."""
    out = _data_record(rec, None, keep_entity=keep_entity)
    out.time = rec.time
    return out


def file_record(path: Path) -> DataRecord:
    """A file, or a folder (``directory()`` outputs, dataset folders) by the digest of its files;
    FileNotFoundError if it does not exist."""
    p = os.path.realpath(path)
    try:
        digest, size = digest_path(Path(p))
    except FileNotFoundError:
        if os.path.lexists(p):  # a file inside the folder went away while it was hashed
            raise
        raise FileNotFoundError(f"data file or folder {str(path)!r} not found") from None
    return DataRecord(path=p, sha256=digest, size=size)


def _paths_or_records(items: Iterable[DataRecord | PathLike]) -> list[DataRecord | PathLike]:
    out = [items] if isinstance(items, (str, os.PathLike, DataRecord)) else list(items)
    for i in out:
        if not isinstance(i, (str, os.PathLike, DataRecord)):
            raise TypeError(f"inputs and outputs must be file paths or DataRecords, got {type(i).__name__}")
    return out


def _paths(paths: Iterable[PathLike], what: str) -> list[PathLike]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = list(paths)
    for p in out:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"{what} must be file paths, got {type(p).__name__}")
    return out


def _names(names: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    out = tuple(names)
    for n in out:
        if not isinstance(n, str) or not n:
            raise TypeError(f"{what} must be names (non-empty str), got {n!r}")
    return out


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise (TypeError if not isinstance(name, str) else ValueError)(f"{what} must be a non-empty str, got {name!r}")
    return check_text(name, what)


DROPPED = "droppedRecords"  # what a task could not record (see WorkflowScope.drop); validate reports it
_RESERVED = {"name", "status", "attempt", "host", "pid", "error", "workflow", "workflowRun", DROPPED}


def _check_attribute(name: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"attribute name {name!r} must be an identifier")
    if name in _RESERVED:
        raise ValueError(f"attribute name {name!r} is reserved for the task's own records")
    return name


def _attributes(items: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """Checked attribute names with their values as JSON scalars (errors name the attribute)."""
    if items is None:
        return {}
    if not isinstance(items, Mapping):
        raise TypeError(f"attributes must be a mapping of names to values, got {type(items).__name__}")
    return {_check_attribute(k): check_scalar(v, f"attribute {k!r}") for k, v in items.items()}


def _time_or_none(value: Any, what: str) -> float | None:
    return None if value is None else check_time(value, what)
