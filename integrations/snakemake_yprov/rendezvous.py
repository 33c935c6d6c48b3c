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
from pathlib import Path

from yprov_wf.layout import atomic_write

RUN_DIR_ENV = "YPROV_WF_RUN_DIR"  # the variable yprov_wf.WorkflowScope.environment exports
POINTER = Path(".snakemake") / "yprov" / "active-run.json"


def find_run_dir(cwd: Path | None = None) -> Path | None:
    """The open workflow run this job belongs to, or None (no logger plugin in this invocation)."""
    env = os.environ.get(RUN_DIR_ENV)
    if env:
        return Path(env) if _is_open(Path(env)) else None
    pointer = (cwd or Path.cwd()) / POINTER
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
        run_dir, host, pid = Path(data["run_dir"]), data["host"], int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    return run_dir if _is_open(run_dir) else None


def write_pointer(run_dir: Path, snakemake_workflow_id: str, cwd: Path | None = None) -> Path:
    path = (cwd or Path.cwd()) / POINTER
    data = {"run_dir": str(run_dir), "host": socket.gethostname(), "pid": os.getpid(),
            "snakemake_workflow_id": snakemake_workflow_id}
    atomic_write(path, json.dumps(data, indent=1).encode("utf-8"))
    return path


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
