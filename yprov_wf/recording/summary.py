"""The state of workflow runs on disk, finished or not: what ``yprov-wf show`` prints."""

from __future__ import annotations

from pathlib import Path

from yprov_wf.layout import WorkflowDir, find_workflow_dirs
from yprov_wf.prov.reading import read_task_file, read_workflow_file
from yprov_wf.recording.journal import replay_task, replay_workflow
from yprov_wf.recording.records import RUNNING, TaskRecord, WorkflowRecord


def load_workflow_runs(path: Path) -> list[tuple[WorkflowRecord, list[TaskRecord], Path]]:
    """Each workflow run under ``path`` with its tasks (finished ones from their files, open ones from
    their journals), oldest first."""
    out = []
    for root in find_workflow_dirs(path):
        wdir = WorkflowDir(root)
        if wdir.workflow_file.is_file():
            wf = read_workflow_file(wdir.workflow_file)
        elif wdir.workflow_journal.is_file() and (wf := replay_workflow(wdir.workflow_journal)) is not None:
            pass
        else:
            wf = WorkflowRecord(workflow_id=root.name, name=root.parent.name, namespace="", started=0.0,
                                status=RUNNING)
        tasks = {f.stem: read_task_file(f) for f in sorted((root / "tasks").glob("*.json"))}
        if (root / "journal").is_dir():
            for j in sorted((root / "journal").glob("*.jsonl")):
                if j.name != wdir.workflow_journal.name and j.stem not in tasks:
                    task = replay_task(j)
                    if task is not None:
                        tasks[task.task_id] = task
        out.append((wf, sorted(tasks.values(), key=lambda t: (t.started, t.task_id)), root))
    out.sort(key=lambda item: item[0].started)
    return out
