"""Where the PROV-JSON comes from: a provenance folder (workflow.json + tasks/*.json per run) or one file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yprov_wf.layout import find_workflow_dirs


@dataclass(frozen=True)
class Source:
    """One PROV-JSON document and the file it was read from."""

    path: Path
    doc: dict[str, Any]


def source_files(path: Path) -> list[Path]:
    """The PROV-JSON files to export: ``path`` itself, or every workflow.json and task file under it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_file():
        return [path]
    files: list[Path] = []
    for root in find_workflow_dirs(path):
        if (root / "workflow.json").is_file():
            files.append(root / "workflow.json")
        files.extend(sorted((root / "tasks").glob("*.json")))
    if not files:
        raise FileNotFoundError(f"no workflow run with PROV-JSON files found under {path}")
    return files


def read_sources(path: Path) -> Iterator[Source]:
    """Each PROV-JSON document under ``path``, parsed; a file that is not a JSON object raises ValueError."""
    for f in source_files(path):
        try:
            with open(f, "rb") as stream:
                doc = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{f}: not valid PROV-JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{f}: not valid PROV-JSON (a JSON object is expected, got {type(doc).__name__})")
        yield Source(f, doc)
