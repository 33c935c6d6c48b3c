"""yprov-wf: W3C PROV provenance for ML runs inside workflows (workflow → task → ML run).

    import yprov_wf as yp
    with yp.workflow("digits", namespace="https://example.org/"):
        with yp.task("train"):
            yp.start_run(prov_user_namespace="https://example.org/", experiment_name="mlp")
            yp.log_metric("loss", 0.1, context=yp.Context.TRAINING, step=0)
            yp.end_run()

The public names are imported on first use (PEP 562): an engine integration that needs only the recording
core (a Snakemake logger plugin, a Prefect task hook) does not pay for the ML API, yProv4ML's names, the
read-back model or lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# where each public name lives
_EXPORTS: dict[str, tuple[str, ...]] = {
    "yprov_wf.api": (
        "active_run", "current_task", "current_workflow", "end_run", "log_artifact", "log_carbon_metrics",
        "log_current_execution_time", "log_dataset", "log_execution_command", "log_flops_per_batch",
        "log_flops_per_epoch", "log_metric", "log_metrics", "log_model", "log_param", "log_params",
        "log_source_code", "log_system_metrics", "save_model_version", "start_run", "task", "workflow",
    ),
    # yProv4ML's names (docs/parity.md)
    "yprov_wf.compat.yprov4ml": ("CompressorType", "Contexts", "LoggingItemKind", "MetricsType"),
    "yprov_wf.compat.yprov4ml_calls": (
        "ProvenanceTrackedFunction", "create_context", "get_artifacts_dir", "get_run_dir", "log_context",
        "log_execution_end_time", "log_execution_start_time", "log_model_memory_footprint",
        "log_provenance_documents", "start_run_ctx",
    ),
    "yprov_wf.compat.lightning": ("ProvMLLogger",),  # needs lightning
    "yprov_wf.context": ("Context",),
    "yprov_wf.errors": ("CompatibilityWarning", "NoActiveRunError", "ProvenanceWarning"),
    "yprov_wf.readback": ("MLRun", "TaskRun", "WorkflowRun", "load"),
    "yprov_wf.recording.records": ("DataRecord",),
    "yprov_wf.recording.run": ("Run", "RunInfo"),
    "yprov_wf.recording.scopes": ("TaskScope", "WorkflowScope", "join_workflow"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(["__version__", *_MODULE_OF])


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'yprov_wf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see; tests/test_public_api.py checks it matches _EXPORTS
    from yprov_wf.api import (
        active_run,
        current_task,
        current_workflow,
        end_run,
        log_artifact,
        log_carbon_metrics,
        log_current_execution_time,
        log_dataset,
        log_execution_command,
        log_flops_per_batch,
        log_flops_per_epoch,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        log_source_code,
        log_system_metrics,
        save_model_version,
        start_run,
        task,
        workflow,
    )
    from yprov_wf.compat.lightning import ProvMLLogger
    from yprov_wf.compat.yprov4ml import CompressorType, Contexts, LoggingItemKind, MetricsType
    from yprov_wf.compat.yprov4ml_calls import (
        ProvenanceTrackedFunction,
        create_context,
        get_artifacts_dir,
        get_run_dir,
        log_context,
        log_execution_end_time,
        log_execution_start_time,
        log_model_memory_footprint,
        log_provenance_documents,
        start_run_ctx,
    )
    from yprov_wf.context import Context
    from yprov_wf.errors import CompatibilityWarning, NoActiveRunError, ProvenanceWarning
    from yprov_wf.readback import MLRun, TaskRun, WorkflowRun, load
    from yprov_wf.recording.records import DataRecord
    from yprov_wf.recording.run import Run, RunInfo
    from yprov_wf.recording.scopes import TaskScope, WorkflowScope, join_workflow
