"""yprov-wf: W3C PROV provenance for ML runs inside workflows (workflow → task → ML run).

    import yprov_wf as yp
    with yp.workflow("digits", namespace="https://example.org/"):
        with yp.task("train"):
            yp.start_run(prov_user_namespace="https://example.org/", experiment_name="mlp")
            yp.log_metric("loss", 0.1, context=yp.Context.TRAINING, step=0)
            yp.end_run()
"""

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

__version__ = "0.1.0"

__all__ = [
    # yProv4ML's names (docs/parity.md); ProvMLLogger is imported on first use (it needs lightning)
    "CompatibilityWarning", "CompressorType", "Contexts", "LoggingItemKind", "MetricsType", "ProvMLLogger",
    "ProvenanceTrackedFunction", "create_context", "get_artifacts_dir", "get_run_dir", "log_context",
    "log_execution_end_time", "log_execution_start_time", "log_model_memory_footprint", "log_provenance_documents",
    "start_run_ctx",
    "Context", "DataRecord", "MLRun", "NoActiveRunError", "ProvenanceWarning", "Run", "RunInfo", "TaskRun", "TaskScope", "WorkflowRun", "WorkflowScope",
    "__version__", "active_run", "current_task", "current_workflow", "end_run", "join_workflow", "load", "log_artifact", "log_carbon_metrics", "log_current_execution_time",
    "log_dataset", "log_execution_command", "log_flops_per_batch", "log_flops_per_epoch", "log_metric", "log_metrics", "log_model", "log_param", "log_params", "log_source_code", "log_system_metrics",
    "save_model_version", "start_run", "task", "workflow",
]


def __getattr__(name: str):  # lazy: lightning is imported only when yProv4ML's logger is asked for
    if name == "ProvMLLogger":
        from yprov_wf.compat.lightning import ProvMLLogger

        return ProvMLLogger
    raise AttributeError(f"module 'yprov_wf' has no attribute {name!r}")
