"""``prefect_yprov.task``: Prefect's ``@task`` with one provenance bundle per task-run attempt."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import prefect
from prefect.tasks import Task, _generate_task_key

from prefect_yprov import attempts, quiet
from prefect_yprov.options import ProvOptions, take_options


class ProvTask(Task):
    """A Prefect Task whose attempts are recorded; ``with_options`` returns a ProvTask too."""

    _yprov_fn: Callable[..., Any]
    _yprov_options: ProvOptions

    def with_options(self, *args: Any, **kwargs: Any) -> ProvTask:
        prov = _pop_changed_options(kwargs, self._yprov_options)
        plain = copy.copy(self)  # Prefect builds the copy from the user's own function, as it would plainly
        plain.fn = self._yprov_fn
        return _install(Task.with_options(plain, *args, **kwargs), self._yprov_fn, prov)


def task(__fn: Any = None, /, **kwargs: Any) -> Any:
    """Drop-in for ``prefect.task``: the same arguments, plus ``save_dir``, ``namespace`` and
    ``record_values`` (see :class:`~prefect_yprov.options.ProvOptions`). Also wraps an existing
    Prefect ``Task`` object: ``task(existing, retries=2)``."""
    given = take_options(kwargs)
    prov = ProvOptions.pop_from(dict(given))
    if __fn is None:
        return lambda fn: _as_prov_task(fn, prov, given, kwargs)
    return _as_prov_task(__fn, prov, given, kwargs)


def _as_prov_task(obj: Any, prov: ProvOptions, given: dict[str, Any], kwargs: dict[str, Any]) -> ProvTask:
    if isinstance(obj, ProvTask):
        return obj.with_options(**kwargs, **given)
    if isinstance(obj, Task):
        return _install(obj.with_options(**kwargs), obj.fn, prov)
    if not (callable(obj) or isinstance(obj, (classmethod, staticmethod))) or isinstance(obj, type):
        raise TypeError(f"prefect_yprov.task decorates a function or a Prefect Task, got {type(obj).__name__}: "
                        f"{obj!r}")
    t = prefect.task(obj, **kwargs)  # Prefect's own decorator: its defaults, methods unwrapped
    return _install(t, t.fn, prov)


def _install(t: Task, fn: Callable[..., Any], prov: ProvOptions) -> ProvTask:
    """Turn a Prefect Task into a ProvTask recording calls of ``fn`` (the user's own function)."""
    t.__class__ = ProvTask
    t._yprov_fn, t._yprov_options = fn, prov
    if t.source_code is None and not inspect.isroutine(fn):  # a callable object: what Prefect's cache
        try:                                                 # policy would read from fn's class
            t.source_code = inspect.getsource(type(fn))
        except (TypeError, OSError):
            pass
    t.fn = attempts.wrap(fn, prov)
    t.task_key = _generate_task_key(fn)  # as plain Prefect computes it (not from the wrapper's code)
    quiet.install()
    t.on_completion_hooks = [attempts.on_completion, *_foreign(t.on_completion_hooks)]
    t.on_failure_hooks = [attempts.on_failure, *_foreign(t.on_failure_hooks)]
    t.on_rollback_hooks = [attempts.on_rollback, *_foreign(t.on_rollback_hooks)]
    t.on_commit_hooks = [attempts.on_commit, *_foreign(t.on_commit_hooks)]
    return t  # type: ignore[return-value]


def _foreign(hooks: list[Any]) -> list[Any]:
    ours = (attempts.on_completion, attempts.on_failure, attempts.on_rollback, attempts.on_commit)
    return [h for h in hooks if h not in ours]


def _pop_changed_options(kwargs: dict[str, Any], current: ProvOptions) -> ProvOptions:
    """``current`` updated with the provenance options found (and removed) in ``kwargs``."""
    given = take_options(kwargs)
    return ProvOptions.pop_from({**current.as_kwargs(), **given}) if given else current
