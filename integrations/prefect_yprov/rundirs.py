"""Finding a flow run's provenance folder from another process (a Dask worker) that has only the
Prefect flow run context: the flow object travels with that context and carries the folders of its
open runs; failing that, the folder is looked up by flow run id under the save dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from yprov_wf.layout import safe_name

RUN_DIRS_ATTR = "_yprov_run_dirs"


def register_run_dir(flow: Any, flow_run_id: str, run_dir: Path) -> None:
    """Remember an open run's folder on the flow object (it is pickled into remote task contexts)."""
    dirs = getattr(flow, RUN_DIRS_ATTR, None)
    if dirs is None:
        dirs = {}
        setattr(flow, RUN_DIRS_ATTR, dirs)
    dirs[flow_run_id] = str(run_dir.resolve())


def forget_run_dir(flow: Any, flow_run_id: str) -> None:
    getattr(flow, RUN_DIRS_ATTR, {}).pop(flow_run_id, None)


def find_run_dir(flow_run_id: str, flow: Any, save_dir: Path | None) -> Path | None:
    """The open run folder of flow run ``flow_run_id``, or None if this process cannot find it."""
    known = getattr(flow, RUN_DIRS_ATTR, {}).get(flow_run_id)
    if known and Path(known, "journal").is_dir():
        return Path(known)
    base = save_dir or Path(os.environ.get("YPROV_WF_SAVE_DIR", "prov"))
    # an attempt's folder is <flow run id>, then <flow run id>-<n> for retry n; only the open one has a journal
    pattern = f"{safe_name(flow.name)}/{flow_run_id}*" if flow is not None and getattr(flow, "name", None) else None
    for glob in filter(None, (pattern, f"*/{flow_run_id}*")):
        found = [p for p in base.glob(glob) if (p / "journal").is_dir()]
        if len(found) == 1:
            return found[0]
    return None
