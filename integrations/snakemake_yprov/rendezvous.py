"""How a job process finds the workflow run that the logger plugin opened in the main Snakemake process.

1. ``YPROV_WF_RUN_DIR`` (the core's variable, set by the plugin before any job starts): local jobs,
   ``run:``/``script:`` processes and cluster submissions that pass the environment inherit it.
2. A pointer file ``.snakemake/yprov/active-run.json`` in the working directory, for cluster jobs whose
   scheduler does not pass the environment on (the working directory is on the shared file system).
   It names the owning Snakemake process; a pointer left by a killed process on this host is ignored.

A run folder is only joined while it is open (its ``journal/workflow.jsonl`` exists).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from yprov_wf.layout import atomic_write

RUN_DIR_ENV = "YPROV_WF_RUN_DIR"  # the variable yprov_wf.WorkflowScope.environment exports
# set by the logger plugin for its job processes, whether or not its run could be opened: a job that finds
# no run to join then records nothing, rather than a workflow run of its own in ./prov
LOGGER_ENV = "YPROV_SNAKEMAKE_LOGGER"
POINTER = Path(".snakemake") / "yprov" / "active-run.json"
# job key → Snakemake's job id, one JSON line per attempt, appended by the plugin at JOB_INFO: a job's own
# process cannot know its id (a run: block's `jobid` is that of the job's sub-process DAG, always 0)
JOBIDS = Path(".snakemake") / "yprov" / "jobids.jsonl"


@dataclass(frozen=True)
class RunRef:
    """An open workflow run to join; name, namespace and run id when the pointer file told them (saves
    reading the run's journal)."""

    run_dir: Path
    name: str | None = None
    namespace: str | None = None
    run_id: str | None = None


def find_run(cwd: Path | None = None) -> RunRef | None:
    """The open workflow run this job belongs to, or None (no logger plugin in this invocation)."""
    env = os.environ.get(RUN_DIR_ENV)
    data = _read_pointer((cwd or Path.cwd()) / POINTER)
    if env:
        if not _is_open(Path(env)):
            return None
        if data is not None and data.get("run_dir") == env:
            return _ref(data)
        return RunRef(Path(env))
    if data is None:
        return None
    try:
        host, pid = data["host"], int(data["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    ref = _ref(data)
    return ref if ref is not None and _is_open(ref.run_dir) else None


def find_run_dir(cwd: Path | None = None) -> Path | None:
    ref = find_run(cwd)
    return ref.run_dir if ref is not None else None


def write_pointer(run_dir: Path, snakemake_workflow_id: str, cwd: Path | None = None, *, name: str | None = None,
                  namespace: str | None = None, run_id: str | None = None) -> Path:
    path = (cwd or Path.cwd()) / POINTER
    data = {"run_dir": str(run_dir), "host": socket.gethostname(), "pid": os.getpid(),
            "snakemake_workflow_id": snakemake_workflow_id, "name": name, "namespace": namespace, "run_id": run_id}
    atomic_write(path, json.dumps(data, indent=1).encode("utf-8"))
    return path


def record_jobid(key: str, jobid: int, cwd: Path | None = None) -> None:
    path = (cwd or Path.cwd()) / JOBIDS
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"key": key, "jobid": int(jobid)}) + "\n")


def find_jobid(key: str, cwd: Path | None = None) -> int | None:
    """Snakemake's id of the job with this key (the latest attempt's), or None."""
    found = None
    try:
        with open((cwd or Path.cwd()) / JOBIDS, encoding="utf-8") as f:
            for line in f:
                if f'"{key}"' in line:
                    try:
                        found = int(json.loads(line)["jobid"])
                    except (ValueError, KeyError, TypeError):
                        continue
    except OSError:
        return None
    return found


def _read_pointer(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _ref(data: dict) -> RunRef | None:
    try:
        run_dir = Path(data["run_dir"])
    except (KeyError, TypeError):
        return None
    fields = [data.get(k) for k in ("name", "namespace", "run_id")]
    if not all(isinstance(f, str) and f for f in fields):
        return RunRef(run_dir)
    return RunRef(run_dir, *fields)


def remove_pointer(path: Path, run_dir: Path) -> None:
    """Remove the pointer if it still names ``run_dir`` (another invocation may have replaced it)."""
    try:
        if Path(json.loads(path.read_text(encoding="utf-8"))["run_dir"]) == run_dir:
            path.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass


def _is_open(run_dir: Path) -> bool:
    return (run_dir / "journal" / "workflow.jsonl").is_file()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
