"""Rebuild the files of workflow runs whose process died (SIGKILL, power loss, OOM killer) from
their journals and metric logs: everything flushed before the kill ends up in the bundles."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from yprov_wf.layout import WorkflowDir, find_workflow_dirs
from yprov_wf.prov.reading import read_workflow_file
from yprov_wf.recording.journal import replay_task, replay_workflow
from yprov_wf.recording.records import CRASHED, RUNNING, TaskRecord
from yprov_wf.recording.run import finalize_run_metrics, metric_logs, remove_metric_logs
from yprov_wf.recording.scopes import write_task_file, write_workflow_file


@dataclass
class RecoveryReport:
    recovered_tasks: list[str] = field(default_factory=list)
    recovered_workflows: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # journals left as they are, with the reason


def recover(path: Path) -> RecoveryReport:
    """Close every unfinished task and workflow under ``path`` as ``crashed``; leaves live ones alone."""
    report = RecoveryReport()
    for root in find_workflow_dirs(path):
        if not _own_folders(root):
            report.unreadable.append(f"{root}: journal/, tasks/ or metrics/ is a link out of the run folder")
            continue
        wdir = WorkflowDir(root)
        journals = sorted((root / "journal").glob("*.jsonl")) if (root / "journal").is_dir() else []
        busy = False
        recovered_here = 0
        ends: list[float] = []  # when each task of this run last did something
        for journal in journals:
            if journal.name == wdir.workflow_journal.name or journal.is_symlink():
                continue
            try:
                outcome = _recover_task(wdir, journal)
            except Exception as exc:  # journal contents are untrusted input: this one is left as it is
                report.unreadable.append(f"{journal}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if outcome is None:
                continue
            task, ended, recovered = outcome
            if ended is None:
                report.still_running.append(task.task_id)
                busy = True
            elif recovered:
                ends.append(ended)
                report.recovered_tasks.append(task.task_id)
                recovered_here += 1
        wf_journal = wdir.workflow_journal
        try:
            if not wf_journal.exists() and wdir.workflow_file.exists() and recovered_here and not busy:
                # the owner closed before this task was recovered (a dead rank): relink the collection
                write_workflow_file(wdir, read_workflow_file(wdir.workflow_file))
            if wf_journal.exists() and not wf_journal.is_symlink() and not busy:
                wf = replay_workflow(wf_journal)
                if wf is not None:
                    if wf.status == RUNNING:
                        wf.status, wf.ended = CRASHED, max([_last_write(wf_journal), *ends])
                        wf.error = "the process died before the workflow closed (recovered from the journal)"
                    write_workflow_file(wdir, wf)
                    report.recovered_workflows.append(wf.workflow_id)
                wf_journal.unlink()
        except Exception as exc:
            report.unreadable.append(f"{wf_journal}: {type(exc).__name__}: {str(exc)[:200]}")
        if (root / "journal").is_dir() and not any((root / "journal").iterdir()):
            (root / "journal").rmdir()
    return report


def _recover_task(wdir: WorkflowDir, journal: Path) -> tuple[TaskRecord, float | None, bool] | None:
    """Rebuild one task's file from its journal: (task, when it last did something or None while its
    process lives, whether a file was written); None for an empty journal (removed)."""
    task = replay_task(journal)
    if task is None:
        journal.unlink()
        return None
    _check_ids(task)
    if _alive(task.host, task.pid):
        return task, None, False
    written = False
    ended = _last_write(journal, wdir.root / "metrics")
    if not wdir.task_file(task.task_id).exists():
        for run in task.runs:
            if run.status == RUNNING or (run.metrics_file is None and metric_logs(wdir, run.run_id)):
                run.series, run.metrics_file = finalize_run_metrics(wdir, run.run_id)
            if run.status == RUNNING:
                # no earlier than its last recorded point (file times can lag the clock's)
                ended = max([ended, *(s.last_time for s in run.series if s.last_time is not None)])
                run.status, run.ended = CRASHED, ended
                run.error = "the process died before end_run (recovered from the journal)"
        if task.status == RUNNING:
            task.status, task.ended = CRASHED, ended
            task.error = "the process died before the task closed (recovered from the journal)"
        write_task_file(wdir, task)
        written = True
    for run in task.runs:  # converted and on record now (or before the kill): the logs can go
        if run.metrics_file is not None:
            remove_metric_logs(wdir, run.run_id)
    journal.unlink()
    return task, (task.ended if isinstance(task.ended, (int, float)) else ended), written


_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")  # what layout.safe_name and new_run_id make


def _check_ids(task: TaskRecord) -> None:
    """The ids a journal names become file names: each must be a plain file name (no path, no '..')."""
    for what, ident in [("task id", task.task_id), *(("run id", r.run_id) for r in task.runs)]:
        if not isinstance(ident, str) or not _FILE_NAME.fullmatch(ident):
            raise ValueError(f"{what} {ident!r} is not a plain file name")


def _own_folders(root: Path) -> bool:
    """Whether the run folder's journal/, tasks/ and metrics/ (where recover reads, writes and deletes)
    are inside it rather than links out of it."""
    base = root.resolve()
    return all(not (root / name).is_symlink() and (root / name).resolve().is_relative_to(base)
               for name in ("journal", "tasks", "metrics"))


def _alive(host: str, pid: int) -> bool:
    """Whether the process that owns a journal is still running (only knowable on its own host)."""
    if host != socket.gethostname() or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_write(*paths: Path) -> float:
    times = [p.stat().st_mtime for p in paths if p.exists()]
    for p in paths:
        if p.is_dir():
            times += [f.stat().st_mtime for f in p.iterdir()]
    return max(times)
