"""Prefect integration of yprov-wf: change one import and every flow run becomes a workflow run and
every task-run attempt a PROV bundle, with start_run/log_* in a task nesting into that task's bundle.

    from prefect_yprov import flow, task      # instead of: from prefect import flow, task
"""

from prefect_yprov.flows import ProvFlow, flow
from prefect_yprov.options import ProvOptions
from prefect_yprov.tasks import ProvTask, task

__all__ = ["ProvFlow", "ProvOptions", "ProvTask", "flow", "task"]
