"""Which workflow, task and run are current: contextvars only, so concurrent threads and asyncio
tasks each record into their own scope (a thread started without a copied context has none); and the
process-wide list of open scopes, used only to close them at exit."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yprov_wf.recording.run import Run
    from yprov_wf.recording.scopes import TaskScope, WorkflowScope

workflow_var: ContextVar[WorkflowScope | None] = ContextVar("yprov_wf_workflow", default=None)
task_var: ContextVar[TaskScope | None] = ContextVar("yprov_wf_task", default=None)
run_var: ContextVar[Run | None] = ContextVar("yprov_wf_run", default=None)

_lock = threading.Lock()
_open: list[Any] = []  # open scopes, innermost last
_uncaught: list[str] = []  # set by the excepthook: why the process is going down
_installed = False


def register(scope: Any) -> None:
    global _installed
    with _lock:
        _open.append(scope)
        if not _installed:
            _installed = True
            atexit.register(_close_all_at_exit)
            previous = sys.excepthook

            def hook(exc_type, exc, tb):  # record the crash, then behave as before
                _uncaught.append(error_text(exc))
                previous(exc_type, exc, tb)

            sys.excepthook = hook
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_forget_in_fork_child)


def unregister(scope: Any) -> None:
    with _lock:
        if scope in _open:
            _open.remove(scope)


def _forget_in_fork_child() -> None:
    """In a child made by os.fork(): the scopes it inherited belong to the parent process, which goes on
    writing them, so the child writes, closes and deletes none of them (DataLoader workers, multiprocessing)."""
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    scopes, _open[:] = list(_open), []
    for scope in scopes:
        scope.forked()


def count_open(kind: type) -> int:
    with _lock:
        return sum(isinstance(s, kind) for s in _open)


def _close_all_at_exit() -> None:
    from yprov_wf.recording.records import FAILED, INTERRUPTED

    status, error = (FAILED, _uncaught[-1]) if _uncaught else (INTERRUPTED, "process exited before the scope closed")
    with _lock:
        scopes = list(reversed(_open))
    for scope in scopes:
        scope.close_at_exit(status, error)


def exit_status(exc: BaseException | None) -> tuple[str, str | None]:
    """(status, error) for a scope left normally (None) or by an exception; Ctrl-C is ``interrupted``."""
    from yprov_wf.recording.records import COMPLETED, FAILED, INTERRUPTED

    if exc is None:
        return COMPLETED, None
    return (INTERRUPTED if isinstance(exc, (KeyboardInterrupt, SystemExit)) else FAILED), error_text(exc)


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, one line, bounded, with URL credentials redacted."""
    try:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    except Exception:  # a broken __str__
        text = type(exc).__name__
    return error_record(text)


def error_record(text: str) -> str:
    """An error text as recorded: URL credentials redacted, lone surrogates escaped, bounded."""
    from yprov_wf.environment import redact_text
    from yprov_wf.values import clean_text

    return clean_text(redact_text(str(text)))[:2000]
