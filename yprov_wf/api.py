"""The fluent, module-level API of the yProv4ML paper (MLflow-like): start_run, log_*, end_run,
plus the workflow and task scopes. Each call acts on the run current in the caller's context."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from yprov_wf import distributed
from yprov_wf.compat import yprov4ml
from yprov_wf.errors import NoActiveRunError, ProvenanceWarning
from yprov_wf.layout import safe_name
from yprov_wf.recording import current
from yprov_wf.recording.records import FAILED
from yprov_wf.recording.run import Run
from yprov_wf.recording.scopes import RUN_DIR_ENV, PathLike, TaskScope, WorkflowScope

_get_run = current.run_var.get


def workflow(name: str | Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Open a workflow run: ``with workflow("digits", namespace=…, save_dir=…):`` or ``@workflow``.

    Options: ``namespace``, ``save_dir``, ``run_id``, ``params``, ``engine``, ``env_vars`` (names or
    glob patterns of environment variables to record), ``env_allow`` / ``env_deny`` (names never / always
    redacted), ``artifact_roots``, and for every task in it ``system_metrics_interval``, ``collectors``,
    ``energy``, ``energy_country`` (see docs/collectors.md).
    """
    return _scope(WorkflowScope, name, options)


def task(name: str | Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Open a task attempt (one PROV bundle): ``with task("train", inputs=[…], outputs=[…]):`` or ``@task``.

    Options: ``inputs``, ``outputs``, ``params``, ``run_id``, ``attempt``, ``attributes``,
    ``system_metrics_interval``, ``collectors``, ``energy``, ``energy_country`` (default: the workflow's),
    and ``namespace``/``save_dir`` for a task that runs with no workflow around it.
    """
    return _scope(TaskScope, name, options)


def current_task() -> TaskScope | None:
    """The task scope open in this context, if any (never one from another thread's context)."""
    return current.task_var.get()


def current_workflow() -> WorkflowScope | None:
    """The workflow scope open in this context, if any (never one from another thread's context)."""
    return current.workflow_var.get()


def _scope(cls: type, name: Any, options: dict[str, Any]) -> Any:
    if "name" in options:  # @task(name="train"), as in Prefect
        if name is not None:
            raise TypeError("name given twice")
        name = options.pop("name")
    if callable(name):  # bare decorator: @task
        return cls(name.__name__, **options)(name)
    if name is None:  # @task(...) with no name: named after the function
        return lambda fn: cls(getattr(fn, "__name__", "task"), **options)(fn)
    return cls(name, **options)


def start_run(*args: Any, prov_user_namespace: str | None = None, experiment_name: str | None = None,
              provenance_save_dir: PathLike | None = None, collect_all_processes: bool = False,
              save_after_n_logs: int = 100, rank: int | None = None, world_size: int | None = None,
              system_metrics_interval: float | None = None, collectors: list[str] | None = None,
              energy: bool | None = None, energy_country: str | None = None, **yprov4ml_options: Any) -> Run:
    """Start an ML run in the current task (or, outside any task, a workflow of one task):
    ``start_run(prov_user_namespace, experiment_name, provenance_save_dir, collect_all_processes,
    save_after_n_logs, rank)``, positionally or by keyword.

    ``system_metrics_interval=s`` samples the collectors every ``s`` seconds on a background thread
    until end_run; ``collectors`` chooses them by name; ``energy``/``energy_country`` apply to the task
    this call opens when there is none (see docs/collectors.md).
    Also a context manager: ``with start_run(…) as run:`` ends the run, failed if an exception escapes.

    yProv4ML's forms work too (docs/parity.md): ``start_run("exp")`` and ``start_run(experiment_name,
    prov_user_namespace)`` (2.x/3.x), a bare-host namespace (``"www.example.org"`` → ``https://www.example.org/``,
    with a warning), no namespace (the workflow's, else ``YPROV_WF_NAMESPACE``, as ``workflow()``),
    ``disable_codecarbon`` (→ ``energy``), and its metric-file keywords (accepted, with one warning).
    """
    if len(args) > 6:
        raise TypeError(f"start_run() takes at most 6 positional arguments ({len(args)} given)")
    given = {"provenance_save_dir": provenance_save_dir, "collect_all_processes": collect_all_processes,
             "save_after_n_logs": save_after_n_logs, "rank": rank}
    for (name, default), value in zip(zip(given, (None, False, 100, None)), args[2:]):
        if given[name] is not default:
            raise TypeError(f"start_run() got multiple values for argument {name!r}")
        given[name] = value
    provenance_save_dir, collect_all_processes = given["provenance_save_dir"], given["collect_all_processes"]
    save_after_n_logs, rank = given["save_after_n_logs"], given["rank"]
    names = (*args[:2], None, None)[:2]
    ns, experiment_name = yprov4ml.run_names(names[0], names[1], prov_user_namespace, experiment_name)
    acted, ignored = yprov4ml.split_keywords("start_run", yprov4ml_options, ("disable_codecarbon",),
                                             yprov4ml.START_RUN_IGNORED)
    if "disable_codecarbon" in acted:
        if not isinstance(acted["disable_codecarbon"], bool):
            raise TypeError(f"disable_codecarbon must be a bool, got {acted['disable_codecarbon']!r}")
        if energy is None:
            energy = not acted["disable_codecarbon"]
    namespace = yprov4ml.namespace(ns)
    if experiment_name is not None and not isinstance(experiment_name, str):
        raise TypeError(f"experiment_name must be a str, got {experiment_name!r}")
    experiment = experiment_name or "experiment"
    active = _get_run()
    if active is not None and not active.closed:
        raise RuntimeError(f"run {active.run_id!r} is still active in this context; call end_run() first")
    if not isinstance(save_after_n_logs, int) or isinstance(save_after_n_logs, bool) or save_after_n_logs < 1:
        raise ValueError(f"save_after_n_logs must be a positive int, got {save_after_n_logs!r}")
    if not isinstance(collect_all_processes, bool):
        raise TypeError(f"collect_all_processes must be a bool, got {collect_all_processes!r}")
    from yprov_wf.collectors.run_collectors import check_interval, check_names

    interval = check_interval(system_metrics_interval)
    chosen = check_names(collectors)
    info = distributed.detect(rank, world_size)
    task_scope = current_task()
    owns_task = task_scope is None or task_scope.closed
    if owns_task:
        task_scope = _open_implicit_task(experiment, namespace, provenance_save_dir, info,
                                         energy=energy, energy_country=energy_country)
    try:
        run = Run(task_scope, experiment, save_after_n_logs=save_after_n_logs, rank=info.rank,
                  world_size=info.world_size, collect_all_processes=collect_all_processes, owns_task=owns_task,
                  device=distributed.device_name(info.local_rank) if info.distributed else None)
    except BaseException as exc:
        if owns_task:
            task_scope.close(FAILED, current.error_text(exc))
        raise
    if chosen is not None:
        run.collectors.names = chosen
    yprov4ml.warn_ignored("start_run", ignored, stacklevel=3)
    return run.open(interval)


def _open_implicit_task(experiment: str, namespace: str | None, save_dir: PathLike | None,
                        info: distributed.RankInfo, **energy: Any) -> TaskScope:
    """The task (and, outside any workflow, the workflow) that a bare start_run records into. Ranks of
    one distributed step each get their own task in one shared workflow run, named by the group id
    they all derive; rank 0 owns that workflow run."""
    if not info.distributed:
        return TaskScope(experiment, namespace=namespace, save_dir=save_dir, **energy).open()
    attributes = {"rank": info.rank, "worldSize": info.world_size, "localRank": info.local_rank,
                  "distributedGroup": info.group}
    own_workflow = None
    if current_workflow() is None and RUN_DIR_ENV not in os.environ:
        own_workflow = WorkflowScope(experiment, namespace=namespace, save_dir=save_dir, run_id=info.group,
                                     owner=info.rank == 0, expected_tasks=info.world_size).open()
    task = TaskScope(experiment, namespace=namespace, save_dir=save_dir, attributes=attributes,
                     run_id=f"{safe_name(experiment)[:40]}-{info.group}-rank{info.rank}", **energy).open()
    task.owns_workflow = own_workflow is not None
    return task


def end_run(create_graph: bool = False, create_svg: bool = False, crate_ro_crate: bool = False,
            **yprov4ml_options: Any) -> None:
    """End the current run and write its records (and its task's and workflow's, if it opened them).

    ``create_graph`` also writes the run's task bundle as DOT (``graphs/<run-id>.dot`` in the provenance
    folder), ``create_svg`` the DOT and its SVG drawing (needs Graphviz's ``dot``; without it the DOT is
    still written and a ProvenanceWarning says how to install it). ``crate_ro_crate`` also writes the
    workflow run as a Workflow Run RO-Crate, ``<run folder>.crate.zip`` beside its folder, when this run
    ended the workflow run (else a warning: use ``yprov-wf crate`` once the workflow has ended).
    """
    _, ignored = yprov4ml.split_keywords("end_run", yprov4ml_options, (), yprov4ml.END_RUN_IGNORED)
    for name, flag in (("create_graph", create_graph), ("create_svg", create_svg), ("crate_ro_crate", crate_ro_crate)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    run = active_run()
    run.end()
    if create_graph or create_svg:
        _write_graph(run, create_svg)
    if crate_ro_crate:
        _write_crate(run)
    yprov4ml.warn_ignored("end_run", ignored, stacklevel=3)


def _write_crate(run: Run) -> None:
    """The ended run's workflow run as an RO-Crate zip beside its folder; a problem warns, never fails."""
    root = run.workflow.dir.root
    if run.workflow.broken or not run.workflow.dir.workflow_file.is_file():
        warnings.warn(f"yprov-wf: no RO-Crate written: workflow run {root} has not ended (write it later with "
                      f"`yprov-wf crate {root}`)", ProvenanceWarning, stacklevel=3)
        return
    from yprov_wf.crate import write_crate

    try:
        summary = write_crate(root, root.with_name(root.name + ".crate.zip"))
    except Exception as exc:
        warnings.warn(f"yprov-wf: no RO-Crate written ({type(exc).__name__}: {exc})", ProvenanceWarning, stacklevel=3)
        return
    for line in summary.warnings:
        warnings.warn(f"yprov-wf: RO-Crate {summary.path}: {line}", ProvenanceWarning, stacklevel=3)


def _write_graph(run: Run, svg: bool) -> None:
    """Draw the ended run's task bundle; a drawing problem warns and never fails the user's code."""
    if run.workflow.broken:
        return
    from yprov_wf.viz.graph import DotNotFoundError, GraphRenderError, build_graph, write_graph

    try:
        graph = build_graph(run.workflow.record, [run.task.record], level="run")
        write_graph(graph, run.workflow.dir.graph_file(run.run_id), svg=svg)
    except ImportError as exc:  # the graphviz package (extra "viz") is not installed
        warnings.warn(f"yprov-wf: no graph written ({exc}); install it with: pip install 'yprov-wf[viz]'",
                      ProvenanceWarning, stacklevel=3)
    except (DotNotFoundError, GraphRenderError) as exc:
        warnings.warn(f"yprov-wf: wrote {run.workflow.dir.graph_file(run.run_id)} but no SVG: {exc}",
                      ProvenanceWarning, stacklevel=3)
    except Exception as exc:
        warnings.warn(f"yprov-wf: no graph written ({type(exc).__name__}: {exc})", ProvenanceWarning, stacklevel=3)


def active_run() -> Run:
    """The run current in this context; NoActiveRunError if none (a run open in another thread is never
    guessed: start the thread in a copy of the context that opened the run)."""
    run = _get_run()
    if run is None or run.closed:
        n = current.count_open(Run)
        raise NoActiveRunError(
            "no active run in this context; call yprov_wf.start_run() first" if n == 0 else
            f"no active run in this context ({n} open in other contexts: run this thread in "
            "contextvars.copy_context() of the one that opened the run)")
    return run


def log_metric(key: str, value: float, context: Any = None, step: int | None = None,
               timestamp: float | None = None, source: Any = None) -> None:
    """Append one point to the series (key, context); ``step`` defaults to the series' point count.

    ``timestamp``: unix seconds, unix milliseconds (yProv4ML's unit; told apart by magnitude, see
    docs/api.md) or a datetime. ``source`` (a str or yProv4ML's LoggingItemKind) is recorded on the series.
    As in yProv4ML 3.x, a str or LoggingItemKind in the fifth place is the source.
    """
    run = _get_run()
    if run is None or run.closed:
        run = active_run()
    if timestamp is not None and type(timestamp) is not float and isinstance(timestamp, (str, Enum)):
        source, timestamp = timestamp, source  # 3.x: log_metric(key, value, context, step, source, timestamp)
    run.metrics.log(key, value, context, step, timestamp)
    if source is not None:
        run.set_metric_source(key, context, yprov4ml.source_name(source))


def log_metrics(metrics: Mapping[str, float], context: Any = None, step: int | None = None,
                timestamp: float | None = None) -> None:
    log = active_run().metrics.log
    for key, value in _mapping(metrics, "metrics").items():
        log(key, value, context, step, timestamp)


def log_param(key: str, value: Any, context: Any = None, *legacy: Any, **yprov4ml_options: Any) -> None:
    """Record a parameter (used by the run), in ``context`` if given (yProv4ML 2.x/3.x; its ``source`` and
    ``is_input``, also positional, are accepted with a warning). Logging the same key with another value
    raises ValueError."""
    if len(legacy) > 2:
        raise TypeError(f"log_param() takes at most 5 positional arguments ({3 + len(legacy)} given)")
    for name, given in zip(("source", "is_input"), legacy):
        if name in yprov4ml_options:
            raise TypeError(f"log_param() got multiple values for argument {name!r}")
        yprov4ml_options[name] = given
    _, ignored = yprov4ml.split_keywords("log_param", yprov4ml_options, (), yprov4ml.LOG_PARAM_IGNORED)
    active_run().log_param(key, value, context)
    yprov4ml.warn_ignored("log_param", ignored, stacklevel=3)


def log_params(params: Mapping[str, Any]) -> None:
    run = active_run()
    for key, value in _mapping(params, "params").items():
        run.log_param(key, value)


def log_artifact(path: PathLike | None = None, *args: Any, **options: Any) -> Any:
    """Copy a file or folder into the run's artifacts and record it with its sha256; returns the copy.

    ``log_artifact(path, context=None, step=None, timestamp=None, *, is_input=False, name=None)``, or
    yProv4ML 2.x/3.x's ``log_artifact(artifact_name, artifact_path, context, …)``: two strings are told
    apart by which one names an existing file (both do: TypeError; see docs/parity.md).
    """
    call = yprov4ml.log_artifact_call(path, args, options)
    result = active_run().log_artifact(call.path, call.context, call.step, call.timestamp, is_input=call.is_input,
                                       name=call.name)
    yprov4ml.warn_ignored("log_artifact", call.ignored, stacklevel=3)
    return result


def log_model(model: Any = None, model_label: Any = None, *args: Any, **options: Any) -> Any:
    """Save the final model with its parameter count, memory and layer summary; returns the file.

    ``log_model(model, model_label)`` (and yProv4ML 1.0's ``log_model(model, model_name="default",
    log_model_info=True)``) or 2.x/3.x's ``log_model(model_name, model, …, log_model_layers=False)``:
    the str is the label. ``log_model_layers=True`` also records each layer's shapes and dtype.
    """
    call = yprov4ml.log_model_call(model, model_label, args, options)
    result = active_run().log_model(call.model, call.label, info=call.info, layers=call.layers)
    yprov4ml.warn_ignored("log_model", call.ignored, stacklevel=3)
    return result


def save_model_version(model: Any = None, model_name: Any = None, *args: Any, **options: Any) -> Any:
    """Save the model's weights (or copy a checkpoint file) as the next version of ``model_name``.

    ``save_model_version(model, model_name, context=None, step=None, timestamp=None)`` (also 1.0's), or
    2.x/3.x's ``save_model_version(model_name, model, context, step, …)``: the str is the name; with two
    strings (a checkpoint path and a name) the one naming an existing file is the model.
    """
    call = yprov4ml.save_model_version_call(model, model_name, args, options)
    result = active_run().save_model_version(call.model, call.name, call.context, call.step, call.timestamp)
    yprov4ml.warn_ignored("save_model_version", call.ignored, stacklevel=3)
    return result


def log_dataset(dataset: Any = None, label: Any = None, *args: Any, **options: Any) -> None:
    """Record a dataset the run used: ``log_dataset(dataset, label, context=None)`` (also 1.0's), or
    2.x/3.x's ``log_dataset(dataset_label, dataset, …)``: the str is the label (two strings: the one
    naming an existing file or folder is the dataset)."""
    obj, lab, context, ignored = yprov4ml.log_dataset_call(dataset, label, args, options)
    active_run().log_dataset(obj, lab, context)
    yprov4ml.warn_ignored("log_dataset", ignored, stacklevel=3)


def log_source_code(path: PathLike | list[PathLike] | bool | None = None) -> list[Any]:
    """Copy the running script, or the given files/folders, into the run's artifacts with digests and git
    state. A bool (yProv4ML 3.x's ``use_git``) means the running script; its git state is always recorded."""
    return active_run().log_source_code(None if isinstance(path, bool) else path)


def log_execution_command(cmd: str | None = None, path: str | None = None) -> Any:
    """Record argv (secrets redacted), the working directory and the Python executable of this process;
    yProv4ML 2.x/3.x's ``log_execution_command(cmd, path)`` also records param ``execution_command``
    (``cmd path``) as given."""
    run = active_run()
    record = run.log_execution_command()
    if cmd is not None or path is not None:
        for name, value in (("cmd", cmd), ("path", path)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"log_execution_command: {name} must be a str, got {value!r}")
        run.log_param("execution_command", " ".join(v for v in (cmd, path) if v))
    return record


def log_flops_per_batch(label: str, model: Any, batch: Any, context: Any = None, step: int | None = None,
                        *, recount: bool = False) -> int:
    """Count the forward FLOPs of ``model`` on ``batch`` (torch.utils.flop_counter; cached per batch shape
    unless ``recount``), log them as metric ``label`` and add them to the epoch total; returns the count."""
    return active_run().log_flops_per_batch(label, model, batch, context, step, recount=recount)


def log_flops_per_epoch(label: str, model: Any = None, dataset: Any = None, context: Any = None,
                        step: int | None = None, *, batch_label: str | None = None, recount: bool = False) -> int:
    """Log an epoch's FLOPs as metric ``label``: counted over ``dataset`` (an iterable of batches), or with
    ``batch_label=`` the sum of that label's log_flops_per_batch calls since the last total. Returns it."""
    return active_run().log_flops_per_epoch(label, model, dataset, context, step, batch_label=batch_label,
                                            recount=recount)


def log_current_execution_time(label: str, context: Any = None, step: int | None = None) -> float:
    return active_run().log_current_execution_time(label, context, step)


def log_system_metrics(context: Any = None, step: int | None = None) -> None:
    """Sample every collector but energy once (CPU, memory, disk, process RSS and CPU; per-GPU
    utilisation, memory, power, temperature; plugins), as metrics of the current run."""
    run = _get_run()
    if run is None or run.closed:
        run = active_run()
    run.collectors.sample_now(context, step)


def log_carbon_metrics(context: Any = None, step: int | None = None) -> None:
    """Energy (kWh) and emissions (kg CO2eq) since the run's first call, and CPU/GPU/RAM power (W), from
    codecarbon's offline tracker (started once per process; the first call may wait for its start)."""
    active_run().collectors.carbon_now(context, step)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of names to values, got {type(value).__name__}")
    return value
