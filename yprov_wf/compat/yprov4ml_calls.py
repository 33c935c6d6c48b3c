"""yProv4ML's calls that yprov-wf has no name of its own for: custom contexts, start/end-time params, the
memory footprint, the run context manager of 1.0, ``log_provenance_documents`` and the tracked function."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yprov_wf import api, describe
from yprov_wf.compat.yprov4ml import source_name
from yprov_wf.context import Context, as_context
from yprov_wf.recording import current
from yprov_wf.recording.run import Run


def create_context(context: str, is_subcontext_of: Any = None) -> Context:
    """A custom context, reachable as ``Context.<NAME>`` as in yProv4ML 2.x; its parent (if any) is recorded
    on the current task as ``ywf:contextHierarchy`` (a JSON object child → parent)."""
    ctx = Context(context)
    parent = as_context(is_subcontext_of)
    attr = context if context.isidentifier() else None
    if attr is not None:
        existing = Context.__dict__.get(attr)
        if existing is None:
            setattr(Context, attr, ctx)
        elif existing != ctx:
            raise ValueError(f"context name {context!r} is taken by {existing!r}")
    run = current.run_var.get()
    if run is not None and not run.closed and parent is not None:
        hierarchy = json.loads(str(run.task.attributes.get("contextHierarchy", "{}")))
        hierarchy[str(ctx)] = str(parent)
        run.task.set_attribute("contextHierarchy", json.dumps(hierarchy, sort_keys=True))
    return ctx


def log_context(context: str, is_subcontext_of: Any = None, source_of_data: Any = None) -> Context:
    """yProv4ML 3.x's name for :func:`create_context` (``source_of_data`` is not recorded: see docs/parity.md)."""
    return create_context(context, is_subcontext_of)


def log_execution_start_time() -> None:
    """Record param ``execution_start_time``: the run's start (unix seconds), as yProv4ML did at start_run."""
    run = api.active_run()
    run.log_param("execution_start_time", run.record.started)


def log_execution_end_time() -> None:
    """Record param ``execution_end_time``: now (unix seconds). The run's own end time is recorded anyway."""
    api.active_run().log_param("execution_end_time", time.time())


def log_model_memory_footprint(model: Any, model_name: str = "default") -> None:
    """Params ``<model_name>_total_params``, ``…_memory_of_model`` and ``…_total_memory_load_of_model``
    (MB: the weights, plus yProv4ML's estimate of 4 B of gradient and 4 B of optimiser state per parameter)."""
    summary = describe.model_summary(model)
    if "parameterCount" not in summary:
        raise TypeError(f"log_model_memory_footprint needs a torch.nn.Module, got {type(model).__name__}")
    run = api.active_run()
    total, weights = summary["parameterCount"], summary["memoryBytes"] / 1e6
    run.log_param(f"{model_name}_total_params", total)
    run.log_param(f"{model_name}_memory_of_model", weights)
    run.log_param(f"{model_name}_total_memory_load_of_model", weights + 8 * total / 1e6)


@contextmanager
def start_run_ctx(*args: Any, create_graph: bool = False, create_svg: bool = False, **kwargs: Any) -> Iterator[Run]:
    """yProv4ML 1.0's ``with start_run_ctx(…):`` — start_run's arguments, ended on exit (failed if it raises)."""
    run = api.start_run(*args, **kwargs)
    try:
        yield run
    except BaseException as exc:
        run.end(*current.exit_status(exc))
        raise
    if not run.closed:
        api.end_run(create_graph=create_graph, create_svg=create_svg)


def log_provenance_documents(create_graph: bool = False, create_svg: bool = False,
                             crate_ro_crate: bool = False) -> Path:
    """yProv4ML 3.x (its itwinai layer): end the run and write its provenance; returns the run's folder."""
    run = api.active_run()
    api.end_run(create_graph=create_graph, create_svg=create_svg, crate_ro_crate=crate_ro_crate)
    return run.info.provenance_dir


def get_run_dir() -> Path:
    """The current run's provenance folder (its workflow run folder)."""
    return api.active_run().info.provenance_dir


def get_artifacts_dir() -> Path:
    """Where the current run's artifacts are copied."""
    run = api.active_run()
    return run.workflow.dir.artifacts(run.run_id)


class ProvenanceTrackedFunction:
    """Wrap a callable (a loss function): each call's result is logged as metric ``<class name>`` at
    steps 0, 1, 2, … in ``context``, with the class name as the series' source (yProv4ML 3.x)."""

    def __init__(self, func: Callable[..., Any], context: Any = None) -> None:
        if not callable(func):
            raise TypeError(f"ProvenanceTrackedFunction needs a callable, got {type(func).__name__}")
        self.fn = func
        self.context = as_context(context)
        self.source = source_name(type(func).__name__)
        self.inc = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.fn(*args, **kwargs)
        api.log_metric(self.source, result, context=self.context, step=self.inc, source=self.source)
        self.inc += 1
        return result
