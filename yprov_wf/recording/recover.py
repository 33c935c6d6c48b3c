"""Rebuild the files of workflow runs whose process died (SIGKILL, power loss, OOM killer) from
their journals and metric logs: everything flushed before the kill ends up in the bundles."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from yprov_wf.layout import WorkflowDir, find_workflow_dirs
from yprov_wf.prov.reading import read_workflow_file
from yprov_wf.recording.journal import replay_task, replay_workflow
from yprov_wf.recording.records import CRASHED, RUNNING
from yprov_wf.recording.run import finalize_run_metrics
from yprov_wf.recording.scopes import write_task_file, write_workflow_file


@dataclass
class RecoveryReport:
    recovered_tasks: list[str] = field(default_factory=list)
    recovered_workflows: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)


def recover(path: Path) -> RecoveryReport:
    """Close every unfinished task and workflow under ``path`` as ``crashed``; leaves live ones alone."""
    report = RecoveryReport()
    for root in find_workflow_dirs(path):
        wdir = WorkflowDir(root)
        journals = sorted((root / "journal").glob("*.jsonl")) if (root / "journal").is_dir() else []
        busy = False
        recovered_here = 0
        ends: list[float] = []  # when each task of this run last did something
        for journal in journals:
            if journal.name == wdir.workflow_journal.name:
                continue
            task = replay_task(journal)
            if task is None:
                journal.unlink()
                continue
            if _alive(task.host, task.pid):
                report.still_running.append(task.task_id)
                busy = True
                continue
            if not wdir.task_file(task.task_id).exists():
                ended = _last_write(journal, root / "metrics")
                for run in task.runs:
                    if run.status == RUNNING:
                        run.series, run.metrics_file = finalize_run_metrics(wdir, run.run_id)
                        # no earlier than its last recorded point (file times can lag the clock's)
                        ended = max([ended, *(s.last_time for s in run.series if s.last_time is not None)])
                        run.status, run.ended = CRASHED, ended
                        run.error = "the process died before end_run (recovered from the journal)"
                if task.status == RUNNING:
                    task.status, task.ended = CRASHED, ended
                    task.error = "the process died before the task closed (recovered from the journal)"
                write_task_file(wdir, task)
                ends.append(task.ended or ended)
                report.recovered_tasks.append(task.task_id)
                recovered_here += 1
            journal.unlink()
        wf_journal = wdir.workflow_journal
        if not wf_journal.exists() and wdir.workflow_file.exists() and recovered_here and not busy:
            # the owner closed before this task was recovered (a dead rank): relink the collection
            write_workflow_file(wdir, read_workflow_file(wdir.workflow_file))
        if wf_journal.exists() and not busy:
            wf = replay_workflow(wf_journal)
            if wf is not None:
                if wf.status == RUNNING:
                    wf.status, wf.ended = CRASHED, max([_last_write(wf_journal), *ends])
                    wf.error = "the process died before the workflow closed (recovered from the journal)"
                write_workflow_file(wdir, wf)
                report.recovered_workflows.append(wf.workflow_id)
            wf_journal.unlink()
        if (root / "journal").is_dir() and not any((root / "journal").iterdir()):
            (root / "journal").rmdir()
    return report


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
