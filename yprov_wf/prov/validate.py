"""``yprov-wf validate``: every document parses with ``prov``, every referenced file exists inside its
workflow run folder and its sha256 matches, no run is left unfinished, and the run's documents together
meet PROV-CONSTRAINTS (see ``constraints``). A file recorded as temporary or as a pipe (``ywf:fileKind``)
may be gone: the engine removes it by design; if still there, its digest holds."""

from __future__ import annotations

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
    findings = []
    if task_file and len(doc.get("bundle", {})) != 1:
        findings.append(f"{path}: a task file must hold exactly one bundle")
    for scope in [doc, *doc.get("bundle", {}).values()]:
        for ident, attrs in scope.get("entity", {}).items():
            for part in attrs if isinstance(attrs, list) else [attrs]:
                findings += _check_reference(path, ident, part, wdir, digests)
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
