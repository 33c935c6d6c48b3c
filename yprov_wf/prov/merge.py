"""``yprov-wf merge``: one PROV-JSON document with the workflow records and every task bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yprov_wf.layout import find_workflow_dirs
from yprov_wf.prov.reading import load_json


def merge(path: Path) -> dict[str, Any]:
    """The merged PROV-JSON (as a dict) of every workflow run under ``path``.

    Top-level records of each workflow.json are kept; each task file contributes its bundle. Bundles and
    records are copied as written, so the result parses with ``prov`` to the union of the inputs.
    """
    roots = find_workflow_dirs(path)
    if not roots:
        raise FileNotFoundError(f"no workflow run found under {path}")
    merged: dict[str, Any] = {"prefix": {}, "bundle": {}}
    n = 0
    for root in roots:
        docs = [root / "workflow.json"] if (root / "workflow.json").is_file() else []
        for f in docs + sorted((root / "tasks").glob("*.json")):
            n += 1
            doc = load_json(f)
            _merge_prefixes(merged["prefix"], doc.get("prefix", {}), f)
            for kind, records in doc.items():
                if kind == "prefix":
                    continue
                if kind == "bundle":
                    for ident, body in records.items():
                        if ident in merged["bundle"] and merged["bundle"][ident] != body:
                            raise ValueError(f"{f}: bundle {ident} differs from one already merged")
                        merged["bundle"][ident] = body
                else:
                    _merge_records(merged.setdefault(kind, {}), records, f"d{n}")
    if not merged["bundle"]:
        del merged["bundle"]
    return merged


def _merge_prefixes(into: dict[str, str], prefixes: dict[str, str], source: Path) -> None:
    for prefix, uri in prefixes.items():
        if into.setdefault(prefix, uri) != uri:
            raise ValueError(f"{source}: prefix {prefix!r} is {uri} here but {into[prefix]} elsewhere; "
                             "merge workflow runs that share one namespace")


def _merge_records(into: dict[str, Any], records: dict[str, Any], tag: str) -> None:
    for ident, attrs in records.items():
        if ident.startswith("_:"):  # blank relation ids are per document: keep them apart
            ident = f"_:{tag}.{ident[2:]}"
        if ident in into and into[ident] != attrs:
            existing = into[ident] if isinstance(into[ident], list) else [into[ident]]
            into[ident] = existing + (attrs if isinstance(attrs, list) else [attrs])
        else:
            into[ident] = attrs


def write_merged(path: Path, output: Path) -> int:
    """Write the merged document to ``output``; returns the number of bundles."""
    from yprov_wf.layout import atomic_write

    doc = merge(path)
    atomic_write(output, json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8"))
    return len(doc.get("bundle", {}))
