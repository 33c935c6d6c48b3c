"""``prefect_yprov.flow``: Prefect's ``@flow`` where each flow run is a yprov-wf workflow run.

The workflow run's id is the Prefect flow run id and its engine is ``prefect``. A subflow (a flow
called inside a recorded flow or task) is recorded twice, on purpose: as a task-like member of the
parent's collection (a bundle with the subflow's parameters, result digest and state, attribute
``kind = subflow``), and as a workflow run of its own (its own folder and collection, holding the
subflow's tasks, with ``parentFlowRunId`` / ``parentTaskRunId`` pointing back).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import prefect
from prefect.flows import Flow

import yprov_wf as yp
from prefect_yprov import attempts
from prefect_yprov.attempts import CRASHED, guarded
from prefect_yprov.options import ProvOptions, take_options
from prefect_yprov.rundirs import forget_run_dir, register_run_dir
from yprov_wf.layout import safe_name
from yprov_wf.recording.current import error_text


class ProvFlow(Flow):
    """A Prefect Flow whose runs are recorded; ``with_options`` returns a ProvFlow too."""

    _yprov_fn: Callable[..., Any]
    _yprov_options: ProvOptions

    def with_options(self, *args: Any, **kwargs: Any) -> ProvFlow:
        given = take_options(kwargs)
        prov = ProvOptions.pop_from({**self._yprov_options.as_kwargs(), **given}) if given else self._yprov_options
        return _install(super().with_options(*args, **kwargs), self._yprov_fn, prov)


def flow(__fn: Any = None, /, **kwargs: Any) -> Any:
    """Drop-in for ``prefect.flow``: the same arguments, plus ``save_dir``, ``namespace`` and
    ``record_values`` (see :class:`~prefect_yprov.options.ProvOptions`; the flow's tasks inherit them).
    Also wraps an existing Prefect ``Flow`` object: ``flow(existing, retries=1)``."""
    given = take_options(kwargs)
    prov = ProvOptions.pop_from(dict(given))
    if __fn is None:
        return lambda fn: _as_prov_flow(fn, prov, given, kwargs)
    return _as_prov_flow(__fn, prov, given, kwargs)


def _as_prov_flow(obj: Any, prov: ProvOptions, given: dict[str, Any], kwargs: dict[str, Any]) -> ProvFlow:
    if isinstance(obj, ProvFlow):
        return obj.with_options(**kwargs, **given)
    if isinstance(obj, Flow):
        return _install(obj.with_options(**kwargs), obj.fn, prov)
    if not callable(obj) or isinstance(obj, type):
        raise TypeError(f"prefect_yprov.flow decorates a function or a Prefect Flow, got {type(obj).__name__}: "
                        f"{obj!r}")
    return _install(Flow(fn=obj, **kwargs), obj, prov)


def _install(f: Flow, fn: Callable[..., Any], prov: ProvOptions) -> ProvFlow:
    f.__class__ = ProvFlow
    f._yprov_fn, f._yprov_options = fn, prov
    f.fn = _wrap(fn, prov)
    return f  # type: ignore[return-value]


@dataclass
class _FlowRun:
    """What a running flow opened: its workflow scope, and its member bundle in a parent run."""

    flow: Any
    workflow: yp.WorkflowScope
    member: yp.TaskScope | None


def _wrap(fn: Callable[..., Any], options: ProvOptions) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            opened = guarded(_open, fn, options, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
                _wait_for_futures(result)
            except BaseException as exc:
                guarded(_close, opened, exc, None, options)
                raise
            guarded(_close, opened, None, result, options)
            return result
        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        opened = guarded(_open, fn, options, args, kwargs)
        try:
            result = fn(*args, **kwargs)
            _wait_for_futures(result)
        except BaseException as exc:
            guarded(_close, opened, exc, None, options)
            raise
        guarded(_close, opened, None, result, options)
        return result
    return run


def _open(fn: Callable[..., Any], options: ProvOptions, args: tuple, kwargs: dict) -> _FlowRun | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None  # the plain function called directly (flow.fn(...))
    flow, flow_run = ctx.flow, ctx.flow_run
    name = flow.name if flow is not None else fn.__name__
    parent = yp.current_workflow()
    if parent is not None and parent.closed:
        parent = None
    if parent is not None:  # a subflow inherits where and how its parent records
        options = options.merged(ProvOptions(parent.save_dir, parent.namespace))
    params, values = attempts.split_values(attempts.bound_arguments(fn, args, kwargs), {}, options.digests_values)
    member = None
    if parent is not None:
        member = yp.TaskScope(name, params=params, run_id=f"{safe_name(name)[:40]}-{flow_run.id}",
                              attempt=max(flow_run.run_count, 1),
                              attributes={"kind": "subflow", "flowRunId": parent.run_id,
                                          "subflowRunId": str(flow_run.id), "subflowRunName": flow_run.name})
        member.open()
        for key, value in values.items():
            member.log_input(value, name=key, value=True)
    workflow = yp.WorkflowScope(
        name, namespace=options.namespace, save_dir=options.save_dir, run_id=str(flow_run.id), params=params,
        engine="prefect", engine_version=prefect.__version__,
        system_metrics_interval=options.system_metrics_interval, energy=options.energy,
        attributes={"flowRunId": str(flow_run.id), "flowRunName": flow_run.name,
                    "runCount": max(flow_run.run_count, 1), "parentFlowRunId": parent.run_id if parent else None,
                    "parentTaskRunId": member.run_id if member else None},
    ).open()
    if member is not None:
        member.set_attribute("subflowLocation", os.path.relpath(workflow.dir.root, parent.dir.root))
    register_run_dir(flow, str(flow_run.id), workflow.dir.root)
    return _FlowRun(flow, workflow, member)


def _close(opened: _FlowRun | None, exc: BaseException | None, result: Any, options: ProvOptions) -> None:
    if opened is None:
        return
    if exc is None:
        status, error, state = "completed", None, "Completed"
    elif isinstance(exc, Exception):
        status, error, state = "failed", error_text(exc), "Failed"
    else:
        status, error, state = CRASHED, error_text(exc), "Crashed"
    wf = opened.workflow
    wf.set_attribute("prefectState", state)
    wf.close(status, error)
    forget_run_dir(opened.flow, wf.run_id)
    if opened.member is not None:
        if exc is None and options.digests_values:
            attempts.record_result(attempts.Attempt(opened.member, None), result, options)
        opened.member.set_attribute("prefectState", state)
        opened.member.close(status, error)


def _wait_for_futures(result: Any) -> None:
    """Wait for task futures the flow returns, so their bundles are in before workflow.json is written."""
    from prefect.futures import PrefectFuture
    from prefect.utilities.collections import visit_collection

    def visit(expr: Any) -> Any:
        if isinstance(expr, PrefectFuture):
            expr.wait()
        return expr

    visit_collection(result, visit_fn=visit, return_data=False)
