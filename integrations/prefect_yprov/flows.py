"""``prefect_yprov.flow``: Prefect's ``@flow`` where each flow run is a yprov-wf workflow run.

The workflow run's id is the Prefect flow run id and its engine is ``prefect``. A subflow (a flow
called inside a recorded flow or task) is recorded twice, on purpose: as a task-like member of the
parent's collection (a bundle with the subflow's parameters, result digest and state, attribute
``kind = subflow``), and as a workflow run of its own (its own folder and collection, holding the
subflow's tasks, with ``parentFlowRunId`` / ``parentTaskRunId`` pointing back).
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import prefect
from prefect.flows import Flow

import yprov_wf as yp
from prefect_yprov import attempts, quiet
from prefect_yprov.attempts import CRASHED, guarded
from prefect_yprov.options import ProvOptions, take_options
from prefect_yprov.rundirs import forget_run_dir, register_run_dir
from yprov_wf.layout import safe_name
from yprov_wf.recording.current import error_text

INTERRUPTED = "interrupted"  # cancelled (or paused) by Prefect


class ProvFlow(Flow):
    """A Prefect Flow whose runs are recorded; ``with_options`` returns a ProvFlow too."""

    _yprov_fn: Callable[..., Any]
    _yprov_options: ProvOptions

    def with_options(self, *args: Any, **kwargs: Any) -> ProvFlow:
        given = take_options(kwargs)
        prov = ProvOptions.pop_from({**self._yprov_options.as_kwargs(), **given}) if given else self._yprov_options
        plain = copy.copy(self)  # Prefect builds the copy from the user's own function, as it would plainly
        plain.fn = self._yprov_fn
        return _install(Flow.with_options(plain, *args, **kwargs), self._yprov_fn, prov)


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
    if not (callable(obj) or isinstance(obj, (classmethod, staticmethod))) or isinstance(obj, type):
        raise TypeError(f"prefect_yprov.flow decorates a function or a Prefect Flow, got {type(obj).__name__}: "
                        f"{obj!r}")
    f = prefect.flow(obj, **kwargs)  # Prefect's own decorator: its defaults, methods unwrapped
    return _install(f, f.fn, prov)


def _install(f: Flow, fn: Callable[..., Any], prov: ProvOptions) -> ProvFlow:
    f.__class__ = ProvFlow
    f._yprov_fn, f._yprov_options = fn, prov
    f.fn = attempts.in_module_of(fn, _wrap(fn, prov))
    for attr in ("on_completion_hooks", "on_failure_hooks", "on_cancellation_hooks", "on_crashed_hooks"):
        setattr(f, attr, [on_final_state, *(h for h in getattr(f, attr) if h is not on_final_state)])
    quiet.install()
    return f  # type: ignore[return-value]


@dataclass
class _FlowRun:
    """What a running flow attempt opened (its workflow scope, its member bundle in a parent run) and,
    once its function has returned, how it ended there; Prefect's final state closes it."""

    flow: Any
    workflow: yp.WorkflowScope
    member: yp.TaskScope | None
    error: str | None = None  # the exception the function raised
    crashed: bool = False  # ... and it was a BaseException (interrupt, cancellation, exit)
    result: Any = None


_open: dict[str, _FlowRun] = {}  # by Prefect flow run id: attempts whose final state is not known yet
_lock = threading.Lock()


def _wrap(fn: Callable[..., Any], options: ProvOptions) -> Callable[..., Any]:
    # Everything the wrappers call is a closure variable: they run with the user's module globals.
    open_, returned_, guarded_, wait_ = _open_attempt, _returned, guarded, _wait_for_futures
    if inspect.iscoroutinefunction(fn):
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            opened = guarded_(open_, fn, options, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
                wait_(result)
            except BaseException as exc:
                guarded_(returned_, opened, exc, None, options)
                raise
            guarded_(returned_, opened, None, result, options)
            return result
        return functools.wraps(fn)(run_async)

    def run(*args: Any, **kwargs: Any) -> Any:
        opened = guarded_(open_, fn, options, args, kwargs)
        try:
            result = fn(*args, **kwargs)
            wait_(result)
        except BaseException as exc:
            guarded_(returned_, opened, exc, None, options)
            raise
        guarded_(returned_, opened, None, result, options)
        return result
    return functools.wraps(fn)(run)


def _run_id(flow_run: Any) -> str:
    """The workflow run id of one attempt: the flow run id, then ``<id>-<n>`` for retry n (each attempt
    is its own workflow run, linked by ``flowRunId``)."""
    count = max(flow_run.run_count or 1, 1)
    return str(flow_run.id) if count == 1 else f"{flow_run.id}-{count}"


def _open_attempt(fn: Callable[..., Any], options: ProvOptions, args: tuple, kwargs: dict) -> _FlowRun | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None  # the plain function called directly (flow.fn(...))
    flow, flow_run = ctx.flow, ctx.flow_run
    with _lock:
        previous = _open.pop(str(flow_run.id), None)
    if previous is not None:  # the last attempt of this flow run failed and Prefect is retrying it
        _finish(previous, "failed", flow_run.state_name or "Retrying", previous.error)
    name = flow.name if flow is not None else fn.__name__
    parent = yp.current_workflow()
    if parent is not None and parent.closed:
        parent = None
    if parent is not None:  # a subflow inherits where and how its parent records
        options = options.merged(ProvOptions(parent.save_dir, parent.namespace))
    params, values = attempts.split_values(attempts.bound_arguments(fn, args, kwargs), {}, options.digests_values)
    member = None
    if parent is not None:
        member = yp.TaskScope(name, params=params, run_id=f"{safe_name(name)[:40]}-{_run_id(flow_run)}",
                              attempt=max(flow_run.run_count, 1), workflow=parent,
                              attributes={"kind": "subflow", "flowRunId": parent.run_id,
                                          "subflowRunId": str(flow_run.id), "subflowRunName": flow_run.name})
        member.open()
        for key, value in values.items():
            member.log_input(value, name=key, value=True)
    workflow = _workflow_scope(flow, flow_run, name, params, options, parent, member, _source_file(fn)).open()
    if member is not None:
        member.set_attribute("subflowLocation", os.path.relpath(workflow.dir.root, parent.dir.root))
    register_run_dir(flow, str(flow_run.id), workflow.dir.root)
    opened = _FlowRun(flow, workflow, member)
    with _lock:
        _open[str(flow_run.id)] = opened
    return opened


def _workflow_scope(flow: Any, flow_run: Any, name: str, params: dict[str, Any], options: ProvOptions,
                    parent: yp.WorkflowScope | None, member: yp.TaskScope | None,
                    flow_file: str | None = None) -> yp.WorkflowScope:
    return yp.WorkflowScope(
        name, namespace=options.namespace, save_dir=options.save_dir, run_id=_run_id(flow_run), params=params,
        engine="prefect", engine_version=prefect.__version__,
        system_metrics_interval=options.system_metrics_interval, energy=options.energy,
        attributes={"flowRunId": str(flow_run.id), "flowRunName": flow_run.name,
                    "runCount": max(flow_run.run_count, 1), "parentFlowRunId": parent.run_id if parent else None,
                    "parentTaskRunId": member.run_id if member else None, "flowFile": flow_file},
    )


def _source_file(fn: Callable[..., Any]) -> str | None:
    """The absolute path of the file defining the flow function (the crate's main workflow), if it has one."""
    try:
        path = inspect.getsourcefile(inspect.unwrap(fn))
    except (TypeError, ValueError):  # a builtin or a callable object without source
        return None
    return os.path.abspath(path) if path and os.path.isfile(path) else None


def _returned(opened: _FlowRun | None, exc: BaseException | None, result: Any, options: ProvOptions) -> None:
    """The flow function has returned or raised: note how; Prefect's final state (a hook) closes the run."""
    if opened is None:
        return
    if exc is not None:
        opened.error, opened.crashed = error_text(exc), not isinstance(exc, Exception)
        return
    opened.result = result
    if opened.member is not None and options.digests_values:
        attempts.record_result(attempts.Attempt(opened.member, None), result, options)
    if _is_unhooked_final(result):  # Prefect runs no state hook for a returned Cancelled/Paused state
        with _lock:
            _open.pop(opened.workflow.attributes["flowRunId"], None)
        _finish(opened, _status_of(result), result.name, result.message)


def on_final_state(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook: close the attempt with the status of Prefect's final state (Completed, Failed, TimedOut,
    Crashed, Cancelling); a run that failed before its function ran (parameter validation) is recorded
    as a failed run of its own."""
    guarded(_final_state, flow, flow_run, state)


on_final_state.__name__ = "yprov_record_flow_state"  # the name Prefect logs it by (quiet drops those lines)


def _final_state(flow: Any, flow_run: Any, state: Any) -> None:
    with _lock:
        opened = _open.pop(str(flow_run.id), None)
    status = _status_of(state)
    if opened is None:
        if status == "completed":
            return
        opened = _never_ran(flow, flow_run)
        if opened is None:
            return
    if status == "completed":
        error = None
    elif state.name == "TimedOut" or opened.error is None:
        error = state.message or opened.error
    else:
        error = opened.error
    _finish(opened, status, state.name, error)


def _never_ran(flow: Any, flow_run: Any) -> _FlowRun | None:
    """A workflow run for a flow run whose function never ran (its parameters failed validation)."""
    options = getattr(flow, "_yprov_options", None) or ProvOptions()
    raw = dict(getattr(flow_run, "parameters", None) or {})
    params, _ = attempts.split_values(raw, {}, False)
    name = getattr(flow, "name", None) or "flow"
    return _FlowRun(flow, _workflow_scope(flow, flow_run, name, params, options, None, None).open(), None)


def _status_of(state: Any) -> str:
    if state.is_completed():
        return "completed"
    if state.is_crashed():
        return CRASHED
    if state.is_cancelled() or state.is_cancelling() or state.is_paused():
        return INTERRUPTED
    return "failed"


def _is_unhooked_final(result: Any) -> bool:
    from prefect.client.schemas.objects import State

    return isinstance(result, State) and (result.is_cancelled() or result.is_paused())


def _finish(opened: _FlowRun, status: str, state_name: str | None, error: str | None) -> None:
    error = None if status == "completed" else error
    wf = opened.workflow
    if state_name:
        wf.set_attribute("prefectState", state_name)
    wf.close(status, error)
    forget_run_dir(opened.flow, wf.attributes["flowRunId"])
    if opened.member is not None:
        if state_name:
            opened.member.set_attribute("prefectState", state_name)
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
