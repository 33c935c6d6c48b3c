"""The fluent, module-level API of the yProv4ML paper (MLflow-like): start_run, log_*, end_run,
plus the workflow and task scopes. Each call acts on the run current in the caller's context."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from yprov_wf import distributed
from yprov_wf.errors import NoActiveRunError, ProvenanceWarning
from yprov_wf.layout import safe_name
from yprov_wf.prov.vocabulary import check_namespace
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


def start_run(prov_user_namespace: str, experiment_name: str | None = None,
              provenance_save_dir: PathLike | None = None, collect_all_processes: bool = False,
              save_after_n_logs: int = 100, rank: int | None = None, *, world_size: int | None = None,
              system_metrics_interval: float | None = None, collectors: list[str] | None = None,
              energy: bool | None = None, energy_country: str | None = None) -> Run:
    """Start an ML run in the current task (or, outside any task, a workflow of one task).

    ``system_metrics_interval=s`` samples the collectors every ``s`` seconds on a background thread
    until end_run; ``collectors`` chooses them by name; ``energy``/``energy_country`` apply to the task
    this call opens when there is none (see docs/collectors.md).
    Also a context manager: ``with start_run(…) as run:`` ends the run, failed if an exception escapes.
    """
    namespace = check_namespace(prov_user_namespace)
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
    return run.open(interval)


def _open_implicit_task(experiment: str, namespace: str, save_dir: PathLike | None,
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


def end_run(create_graph: bool = False, create_svg: bool = False) -> None:
    """End the current run and write its records (and its task's and workflow's, if it opened them).

    ``create_graph`` also writes the run's task bundle as DOT (``graphs/<run-id>.dot`` in the provenance
    folder), ``create_svg`` the DOT and its SVG drawing (needs Graphviz's ``dot``; without it the DOT is
    still written and a ProvenanceWarning says how to install it).
    """
    if not isinstance(create_graph, bool) or not isinstance(create_svg, bool):
        raise TypeError(f"create_graph and create_svg must be bools, got {create_graph!r} and {create_svg!r}")
    run = active_run()
    run.end()
    if create_graph or create_svg:
        _write_graph(run, create_svg)


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
               timestamp: float | None = None) -> None:
    """Append one point to the series (key, context); ``step`` defaults to the series' point count."""
    run = _get_run()
    if run is None or run.closed:
        run = active_run()
    run.metrics.log(key, value, context, step, timestamp)


def log_metrics(metrics: Mapping[str, float], context: Any = None, step: int | None = None,
                timestamp: float | None = None) -> None:
    log = active_run().metrics.log
    for key, value in _mapping(metrics, "metrics").items():
        log(key, value, context, step, timestamp)


def log_param(key: str, value: Any) -> None:
    """Record a parameter (used by the run). Logging the same key with another value raises ValueError."""
    active_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    run = active_run()
    for key, value in _mapping(params, "params").items():
        run.log_param(key, value)


def log_artifact(path: PathLike, context: Any = None, step: int | None = None, timestamp: float | None = None,
                 *, is_input: bool = False, name: str | None = None) -> Any:
    return active_run().log_artifact(path, context, step, timestamp, is_input=is_input, name=name)


def log_model(model: Any, model_label: str) -> Any:
    return active_run().log_model(model, model_label)


def save_model_version(model: Any, model_name: str, context: Any = None, step: int | None = None,
                       timestamp: float | None = None) -> Any:
    return active_run().save_model_version(model, model_name, context, step, timestamp)


def log_dataset(dataset: Any, label: str, context: Any = None) -> None:
    active_run().log_dataset(dataset, label, context)


def log_source_code(path: PathLike | list[PathLike] | None = None) -> list[Any]:
    """Copy the running script, or the given files/folders, into the run's artifacts with digests and git state."""
    return active_run().log_source_code(path)


def log_execution_command() -> Any:
    """Record argv (secrets redacted), the working directory and the Python executable of this process."""
    return active_run().log_execution_command()


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
