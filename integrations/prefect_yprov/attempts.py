"""One Prefect task-run attempt as one yprov-wf task bundle.

The bundle is opened inside the task function itself (so it lives in the task's own context: the
thread pool's copied context, the asyncio task, or a Dask worker), which is what makes ``start_run`` and
``log_*`` in the task body nest into it. It is closed once Prefect has decided what the attempt became:
by the task's ``on_completion`` / ``on_failure`` hooks (Completed, Cached, Failed, TimedOut), by the next
attempt of the same task run (the previous one was retried), or at once for a crash (BaseException).
A cache hit never calls the function: the ``on_completion`` hook records it as its own attempt.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import yprov_wf as yp
from prefect_yprov.options import ProvOptions
from prefect_yprov.rundirs import find_run_dir
from yprov_wf.errors import ProvenanceWarning
from yprov_wf.layout import safe_name

CRASHED = "crashed"  # a BaseException (KeyboardInterrupt, SystemExit, cancellation) ended the attempt
CACHED = "cached"  # Prefect reused a cached result; the function did not run
_SIMPLE = (str, int, float, bool, Path)
MAX_ELEMENTS = 64  # items of a list/tuple argument or result digested one by one (beyond: the whole only)


@dataclass
class Attempt:
    """An open attempt: its task scope, the workflow it joined (in another process), its error."""

    scope: yp.TaskScope
    joined: yp.WorkflowScope | None
    error: str | None = None
    task_run_id: UUID | None = None


_open: dict[UUID, Attempt] = {}
_transactions: dict[int, tuple[Any, Attempt]] = {}  # id(task run transaction) -> (it, its attempt)
_lock = threading.Lock()
# what each task run returned (its output records, one generation each), so that a downstream task run that
# Prefect says received its result is linked to that very generation; the oldest are forgotten
_results: OrderedDict[UUID, list[yp.DataRecord]] = OrderedDict()
MAX_RESULTS = 10_000
_warned: list[str] = []


def wrap(fn: Callable[..., Any], options: ProvOptions) -> Callable[..., Any]:
    """The task function, recording each call made by Prefect's task engine as an attempt. It is of the
    same kind as ``fn`` (coroutine, generator, async generator, plain) and lives in ``fn``'s module
    globals, so Prefect resolves string annotations (``from __future__ import annotations``) there."""
    run = _wrapper(fn, options, begin, _raised, record_result, guarded)
    functools.update_wrapper(run, fn)
    return in_module_of(fn, run)


def in_module_of(fn: Any, wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """``wrapper`` rebuilt with ``fn``'s globals (the wrapper reads only its closure and builtins)."""
    globals_ = getattr(fn, "__globals__", None)
    if globals_ is None or globals_ is wrapper.__globals__:
        return wrapper
    rebuilt = types.FunctionType(wrapper.__code__, globals_, wrapper.__name__, wrapper.__defaults__,
                                 wrapper.__closure__)
    rebuilt.__kwdefaults__ = wrapper.__kwdefaults__
    rebuilt.__dict__.update(wrapper.__dict__)
    for name in ("__module__", "__qualname__", "__doc__", "__annotations__"):
        setattr(rebuilt, name, getattr(wrapper, name))
    return rebuilt


def _wrapper(fn: Callable[..., Any], options: ProvOptions, begin_: Callable[..., Any], raised_: Callable[..., Any],
             result_: Callable[..., Any], guarded_: Callable[..., Any]) -> Callable[..., Any]:
    # Everything the wrappers call is a closure variable: they run with the user's module globals.
    if inspect.isasyncgenfunction(fn):
        async def run_async_gen(*args: Any, **kwargs: Any) -> Any:
            attempt = guarded_(begin_, fn, options, args, kwargs)
            gen, items = fn(*args, **kwargs), []
            try:
                item = await gen.__anext__()
                while True:
                    items.append(item)
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await gen.aclose()
                        raise
                    except BaseException as exc:  # noqa: BLE001 (thrown into the generator: passed on)
                        item = await gen.athrow(exc)
                    else:
                        item = await gen.asend(sent)
            except StopAsyncIteration:
                pass
            except BaseException as exc:
                guarded_(raised_, attempt, exc)
                raise
            guarded_(result_, attempt, None, options, items)
        return run_async_gen

    if inspect.iscoroutinefunction(fn):
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            attempt = guarded_(begin_, fn, options, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                guarded_(raised_, attempt, exc)
                raise
            guarded_(result_, attempt, result, options)
            return result
        return run_async

    if inspect.isgeneratorfunction(fn):
        def run_gen(*args: Any, **kwargs: Any) -> Any:
            attempt = guarded_(begin_, fn, options, args, kwargs)
            gen, items = fn(*args, **kwargs), []
            try:
                item = next(gen)
                while True:
                    items.append(item)
                    try:
                        sent = yield item
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as exc:  # noqa: BLE001 (thrown into the generator: passed on)
                        item = gen.throw(exc)
                    else:
                        item = gen.send(sent)
            except StopIteration as stop:
                returned = stop.value
            except BaseException as exc:
                guarded_(raised_, attempt, exc)
                raise
            guarded_(result_, attempt, returned, options, items)
            return returned
        return run_gen

    def run(*args: Any, **kwargs: Any) -> Any:
        attempt = guarded_(begin_, fn, options, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            guarded_(raised_, attempt, exc)
            raise
        guarded_(result_, attempt, result, options)
        return result
    return run


def begin(fn: Callable[..., Any] | None, options: ProvOptions, args: tuple, kwargs: dict,
          parameters: Mapping[str, Any] | None = None, register: bool = True) -> Attempt | None:
    """Open the bundle of the attempt now running in this context (None outside a Prefect task run)."""
    from prefect.context import FlowRunContext, TaskRunContext

    ctx = TaskRunContext.get()
    if ctx is None or ctx.task_run is None:
        return None  # the plain function called directly (task.fn(...)): nothing to record
    task_run = ctx.task_run
    with _lock:
        previous = _open.pop(task_run.id, None)
    if previous is not None:  # the last attempt of this task run failed and Prefect is retrying it
        _close(previous, "failed", task_run.state_name or "Retrying", previous.error)
    flow_ctx = FlowRunContext.get()
    flow = flow_ctx.flow if flow_ctx is not None else None
    options = options.merged(getattr(flow, "_yprov_options", None))
    if parameters is None:
        parameters = bound_arguments(fn, args, kwargs)
    params, values = split_values(parameters, task_run.task_inputs or {}, options.digests_values)
    workflow, joined = _workflow_for(task_run.flow_run_id, flow, options)
    name = ctx.task.name
    scope = yp.TaskScope(
        name, params=params, run_id=f"{safe_name(name)[:40]}-{task_run.id}-{max(task_run.run_count, 1)}",
        attempt=max(task_run.run_count, 1), namespace=options.namespace, save_dir=options.save_dir,
        workflow=workflow, system_metrics_interval=options.system_metrics_interval, energy=options.energy,
        attributes={"flowRunId": str(task_run.flow_run_id) if task_run.flow_run_id else None,
                    "taskRunId": str(task_run.id), "taskRunName": task_run.name, "taskKey": task_run.task_key,
                    "runCount": max(task_run.run_count, 1), "cacheHit": False},
    )
    try:
        scope.open()
    except BaseException:
        if joined is not None:
            joined.close()
        raise
    upstream = guarded(_upstream_runs, task_run.task_inputs or {}) or {}
    taken: set[str] = set()
    for key, value in values.items():  # a value that cannot be recorded is dropped alone, with the warning
        guarded(_input, scope, key, value, upstream.get(key.partition("[")[0], ()), taken)
    attempt = Attempt(scope, joined, task_run_id=task_run.id)
    if register:
        with _lock:
            _open[task_run.id] = attempt
    _watch_transaction(attempt)
    return attempt


def _watch_transaction(attempt: Attempt) -> None:
    """Remember the attempt under the task run's own transaction, for a later rollback of it."""
    from prefect.transactions import get_transaction

    txn = get_transaction()
    if txn is not None:
        with _lock:
            _transactions[id(txn)] = (txn, attempt)


def on_rollback(txn: Any) -> None:
    """Hook: the task's transaction rolled back after the attempt completed; Prefect marks the task run
    RolledBack, and so does its bundle (``prefectState = RolledBack``, ``rolledBack = true``)."""
    with _lock:
        entry = _transactions.pop(id(txn), None)
    if entry is not None and entry[0] is txn:
        guarded(_rolled_back, entry[1])


def _rolled_back(attempt: Attempt) -> None:
    attempt.scope.amend(prefectState="RolledBack", rolledBack=True)


def on_commit(txn: Any) -> None:
    """Hook: the transaction committed; nothing can roll the attempt back any more."""
    with _lock:
        _transactions.pop(id(txn), None)


for _hook in (on_rollback, on_commit):
    _hook.log_on_run = False  # Prefect's switch for hooks that are not the user's: no INFO lines


def _workflow_for(flow_run_id: UUID | None, flow: Any,
                  options: ProvOptions) -> tuple[yp.WorkflowScope | None, yp.WorkflowScope | None]:
    """(the workflow the attempt records into, the participant scope opened for it here): the flow's
    workflow when this context carries it (Prefect's thread pool copies the context); otherwise the flow
    run's folder, found from Prefect's own flow run context (a Dask worker, any thread), joined here.
    Never a scope found through another thread's state: (None, None) when neither exists."""
    if flow_run_id is None:
        return None, None
    current = yp.current_workflow()
    if current is not None and not current.closed and current.attributes.get("flowRunId") == str(flow_run_id):
        return current, None
    run_dir = find_run_dir(str(flow_run_id), flow, options.save_dir)
    if run_dir is None:
        return None, None
    joined = yp.join_workflow(run_dir).open()
    return joined, joined


def record_result(attempt: Attempt | None, result: Any, options: ProvOptions,
                  yielded: list[Any] | None = None) -> None:
    """Record what the attempt generated: its result (and the items of a short list or tuple result);
    for a generator task, each item it yielded (``yield[i]``, the first MAX_ELEMENTS) and its return value."""
    if attempt is None or not options.digests_values:
        return
    if yielded is not None:
        attempt.scope.set_attribute("yieldedCount", len(yielded))
        for i, item in enumerate(yielded[:MAX_ELEMENTS]):
            if item is not None:
                guarded(_data, attempt.scope.log_output, item, f"yield[{i}]")
    if result is not None and not _is_prefect_state(result):
        records = [guarded(_data, attempt.scope.log_output, result, "return")]
        for name, item in _elements("return", result):  # unpacked (a, b = task()) or collected downstream
            records.append(guarded(_data, attempt.scope.log_output, item, name))
        if attempt.task_run_id is not None:
            with _lock:
                _results[attempt.task_run_id] = [r for r in records if r is not None]
                while len(_results) > MAX_RESULTS:
                    _results.popitem(last=False)


def _data(log: Callable[..., Any], item: Any, name: str) -> yp.DataRecord:
    """Record one input or output (a path naming a file as that file, anything else as a value)."""
    return log(item, name=name, value=not _is_file(item))


def _input(scope: yp.TaskScope, key: str, value: Any, runs: Iterable[UUID], taken: set[str]) -> None:
    """Record one argument: a file by its path, a value as the very output of the upstream run Prefect
    says it came from (when that run's outputs hold it), else as a value of its own."""
    item = value if _is_file(value) else (_received(value, runs, taken) or value)
    scope.log_input(item, name=key, value=not _is_file(value))


def _upstream_runs(task_inputs: Mapping[str, Any]) -> dict[str, list[UUID]]:
    """The task runs each argument came from, as Prefect's engine tracked them."""
    return {key: [i.id for i in items if getattr(i, "input_type", None) == "task_run"]
            for key, items in task_inputs.items()}


def _received(value: Any, runs: Iterable[UUID], taken: set[str]) -> yp.DataRecord | None:
    """The output record of the upstream run (one of ``runs``) this argument is: among those runs' outputs,
    the one with the same bytes (the whole result, or one item of it); one not yet taken by another
    argument of this task first. None if Prefect's upstream runs returned nothing of the kind here."""
    with _lock:
        outputs = [r for run in runs for r in _results.get(run, ())]
    if not outputs:
        return None
    from yprov_wf.describe import value_fingerprint

    sha = value_fingerprint(value)[0]
    matching = [r for r in outputs if r.sha256 == sha]
    chosen = next((r for r in matching if r.entity not in taken), matching[0] if matching else None)
    if chosen is not None and chosen.entity:
        taken.add(chosen.entity)
    return chosen


def _raised(attempt: Attempt | None, exc: BaseException) -> None:
    if attempt is None:
        return
    from yprov_wf.recording.current import error_text

    attempt.error = error_text(exc)
    # KeyboardInterrupt, SystemExit, cancellation: no state hook follows, so close it here
    if not isinstance(exc, Exception) and _take(attempt):
        _close(attempt, CRASHED, "Crashed", attempt.error)


def on_completion(task: Any, task_run: Any, state: Any) -> None:
    """Hook: close the attempt as completed, or record a cache hit (the function did not run)."""
    guarded(_completed, task, task_run, state)


def on_failure(task: Any, task_run: Any, state: Any) -> None:
    """Hook: close the attempt as failed with its error (retries exhausted, or none asked for)."""
    guarded(_failed, task, task_run, state)


# the name Prefect's engine logs them by (prefect_yprov.quiet drops those INFO lines)
on_completion.__name__ = on_failure.__name__ = "yprov_record_task_state"


def _completed(task: Any, task_run: Any, state: Any) -> None:
    cached = state.name == "Cached"
    with _lock:
        attempt = _open.pop(task_run.id, None)
    if attempt is None:
        if not cached:
            return
        attempt = _cache_hit(task, state)
        if attempt is None:
            return
    if cached:
        attempt.scope.set_attribute("cacheHit", True)
    _close(attempt, CACHED if cached else "completed", state.name)


def _failed(task: Any, task_run: Any, state: Any) -> None:
    with _lock:
        attempt = _open.pop(task_run.id, None)
    if attempt is None:  # failed before its function ran (e.g. a bad parameter): still an attempt
        attempt = begin(None, _options_of(task), (), {}, parameters=_context_parameters(), register=False)
        if attempt is None:
            return
    _close(attempt, "failed", state.name, attempt.error or state.message)


def _cache_hit(task: Any, state: Any) -> Attempt | None:
    attempt = begin(None, _options_of(task), (), {}, parameters=_context_parameters(), register=False)
    if attempt is None:
        return None
    record_result(attempt, _state_value(state), _options_of(task))
    return attempt


def _close(attempt: Attempt, status: str, state_name: str | None, error: str | None = None) -> None:
    scope = attempt.scope
    if state_name:
        scope.set_attribute("prefectState", state_name)
    scope.close(status, error if status != "completed" and status != CACHED else None)
    if attempt.joined is not None:
        attempt.joined.close()


def _take(attempt: Attempt) -> bool:
    """Remove ``attempt`` from the open ones; False if a hook already closed it."""
    with _lock:
        for key, value in list(_open.items()):
            if value is attempt:
                del _open[key]
                return True
    return False


def _options_of(task: Any) -> ProvOptions:
    return getattr(task, "_yprov_options", None) or ProvOptions()


def _context_parameters() -> dict[str, Any]:
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    return dict(ctx.parameters or {}) if ctx is not None else {}


def _state_value(state: Any) -> Any:
    from prefect._internal.result_records import ResultRecord

    data = state.data
    return data.result if isinstance(data, ResultRecord) else data


def _is_prefect_state(value: Any) -> bool:
    from prefect.client.schemas.objects import State

    return isinstance(value, State)


def bound_arguments(fn: Callable[..., Any] | None, args: tuple, kwargs: dict) -> dict[str, Any]:
    if fn is None:
        return {}
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def split_values(parameters: Mapping[str, Any], task_inputs: Mapping[str, Any],
           record_values: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, values): simple values become params; large objects, and any value that came from
    another task's result, are recorded as inputs by digest (which links the two tasks)."""
    from prefect.futures import PrefectFuture

    params, values = {}, {}
    for key, value in parameters.items():
        if isinstance(value, PrefectFuture):
            continue  # not resolved (a hook before the call): its producer is linked by the engine
        simple = value is None or isinstance(value, _SIMPLE)
        if simple:
            params[key] = value
        upstream = any(getattr(i, "input_type", None) == "task_run" for i in task_inputs.get(key, ()))
        if record_values and value is not None and (upstream or not simple):
            values[key] = value
            if upstream:  # a list of upstream results (e.g. a .map's futures) used each of them
                values.update(_elements(key, value))
    return params, values


def _elements(name: str, value: Any) -> list[tuple[str, Any]]:
    """The items of a short list or tuple, named ``name[i]`` (so each is linked by its own digest)."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ELEMENTS:
        return []
    return [(f"{name}[{i}]", item) for i, item in enumerate(value) if item is not None]


def guarded(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a recording step; a provenance-side failure warns once (per process: one broken folder fails
    every step of every task alike) and the task goes on."""
    try:
        return fn(*args)
    except Exception as exc:
        if not _warned:
            _warned.append(f"{fn.__name__}:{type(exc).__name__}")
            warnings.warn(f"prefect-yprov: recording failed ({type(exc).__name__}: {exc}); "
                          "the task runs on without it", ProvenanceWarning, stacklevel=3)
        return None


def _is_file(value: Any) -> bool:
    """A ``pathlib.Path`` (or other path object) naming an existing file is recorded as that file;
    strings and everything else are values."""
    return isinstance(value, os.PathLike) and Path(value).is_file()
