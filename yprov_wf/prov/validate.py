"""``yprov-wf validate``: every document parses with ``prov``, every referenced file exists inside its
workflow run folder and its sha256 matches, no run is left unfinished, and the run's documents together
meet PROV-CONSTRAINTS (see ``constraints``). A file recorded as temporary or as a pipe (``ywf:fileKind``)
may be gone: the engine removes it by design; if still there, its digest holds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from yprov_wf.layout import WorkflowDir, digest_path, find_workflow_dirs
from yprov_wf.prov import constraints
from yprov_wf.prov.reading import literal, load_json, path_of
from yprov_wf.recording.records import FILE_KINDS


def validate(path: Path) -> list[str]:
    """Findings (empty when everything holds) for a workflow run folder, a save dir, or one file."""
    if path.is_file():
        root = path.parent.parent if path.parent.name == "tasks" else path.parent
        findings = _check_document(path, WorkflowDir(root), {})
        return findings + (constraints.check([(str(path), load_json(path))]) if not findings else [])
    roots = find_workflow_dirs(path)
    if not roots:
        return [f"{path}: no workflow run found"]
    findings: list[str] = []
    for root in roots:
        wdir = WorkflowDir(root)
        digests: dict[Path, tuple[str, int]] = {}
        parsed: list[constraints.Document] = []
        if not wdir.workflow_file.is_file():
            findings.append(f"{root}: no workflow.json (still running, or crashed: run `yprov-wf recover`)")
        else:
            findings += _checked(wdir.workflow_file, _check_document(wdir.workflow_file, wdir, digests), parsed)
        for f in sorted((root / "tasks").glob("*.json")):
            findings += _checked(f, _check_document(f, wdir, digests, task_file=True), parsed)
        findings += constraints.check(parsed)
        journal = root / "journal"
        if journal.is_dir() and any(journal.iterdir()):
            findings.append(f"{root}: unfinished journals in journal/ (running, or crashed: `yprov-wf recover`)")
        else:  # a closed run: every metric file must be on record (a live one's logs are still growing)
            findings += _check_metric_files(root, digests)
    return findings


def _check_metric_files(root: Path, referenced: dict[Path, tuple[str, int]]) -> list[str]:
    """Metric logs never converted (points no bundle holds) and Parquet files no bundle refers to."""
    metrics = root / "metrics"
    if not metrics.is_dir():
        return []
    findings = []
    recorded = {p.name for p in referenced}
    for f in sorted(metrics.iterdir()):
        if f.name.endswith(".ylog"):
            findings.append(f"{f}: a metric log no bundle holds (a crashed run: `yprov-wf recover`)")
        elif f.suffix == ".parquet" and f.name not in recorded:
            findings.append(f"{f}: a metric file no bundle refers to (its run's record was lost)")
    return findings


def _checked(path: Path, findings: list[str], parsed: list[constraints.Document]) -> list[str]:
    """``findings``; a document that parses joins the ones checked against PROV-CONSTRAINTS together."""
    if not any(f.startswith(f"{path}: does not parse") for f in findings):
        parsed.append((str(path), load_json(path)))
    return findings


def _check_document(path: Path, wdir: WorkflowDir, digests: dict[Path, tuple[str, int]],
                    task_file: bool = False) -> list[str]:
    from prov.model import ProvDocument

    try:
        doc = load_json(path)
        ProvDocument.deserialize(source=str(path), format="json")
    except Exception as exc:  # any parse failure is a finding, not a crash
        return [f"{path}: does not parse as PROV-JSON ({type(exc).__name__}: {exc})"]
    if not isinstance(doc, dict) or not isinstance(doc.get("bundle", {}), dict):
        return [f"{path}: not a PROV-JSON document (a JSON object of record kinds)"]
    findings = []
    if task_file and len(doc.get("bundle", {})) != 1:
        findings.append(f"{path}: a task file must hold exactly one bundle")
    for scope in [doc, *doc.get("bundle", {}).values()]:
        if not isinstance(scope, dict):
            findings.append(f"{path}: a bundle that is not a JSON object")
            continue
        for kind, records in scope.items():
            if kind in ("prefix", "bundle") or not isinstance(records, dict):
                continue
            for ident, attrs in records.items():
                for part in attrs if isinstance(attrs, list) else [attrs]:
                    if not isinstance(part, dict):
                        findings.append(f"{path}: {ident}: not a JSON object of attributes")
                        continue
                    findings += _check_times(path, ident, part)
                    if kind == "entity":
                        findings += _check_reference(path, ident, part, wdir, digests)
                    elif kind == "activity" and literal(part.get("ywf:droppedRecords")):
                        findings.append(f"{path}: {ident}: records were lost while recording: "
                                        f"{literal(part.get('ywf:droppedRecords'))}")
    return findings


_TIME_ATTRS = ("prov:startTime", "prov:endTime", "prov:time")


def _check_times(source: Path, ident: str, attrs: dict[str, Any]) -> list[str]:
    """Every PROV time must be an xsd:dateTime (prov itself reads a malformed one as a plain string)."""
    findings = []
    for name in _TIME_ATTRS:
        if name not in attrs:
            continue
        value = attrs[name]
        text = value.get("$") if isinstance(value, dict) else value
        try:
            ok = isinstance(text, str) and datetime.fromisoformat(text.replace("Z", "+00:00")) is not None
        except ValueError:
            ok = False
        if not ok:
            findings.append(f"{source}: {ident}: {name} {value!r} is not an xsd:dateTime")
    return findings


def _check_reference(source: Path, ident: str, attrs: dict[str, Any], wdir: WorkflowDir,
                     digests: dict[Path, tuple[str, int]]) -> list[str]:
    location = path_of({k: literal(x) for k, x in attrs.items() if k in ("ywf:path", "prov:location")})
    if not isinstance(location, str):
        return []
    expected = literal(attrs.get("ywf:sha256"))
    if Path(location).is_absolute():
        target = Path(location)
    else:
        try:
            target = wdir.resolve(location)
        except ValueError as exc:
            return [f"{source}: {ident}: {exc}"]
    if not target.exists():
        if literal(attrs.get("ywf:fileKind")) in FILE_KINDS:
            return []  # removed by the engine once no longer needed: what was recorded
        return [f"{source}: {ident}: referenced file {location} is missing"]
    if not expected or not (target.is_file() or target.is_dir()):
        return []  # a pipe (no digest), or a FIFO/socket that is still there
    if target not in digests:
        digests[target] = digest_path(target)
    if digests[target][0] != expected:
        return [f"{source}: {ident}: sha256 of {location} does not match the record"]
    return []
