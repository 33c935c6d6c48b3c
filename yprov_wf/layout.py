"""The on-disk layout of one workflow run, identifiers, safe file names and atomic writes.

    <save_dir>/<workflow-name>/<workflow-run-id>/
        workflow.json            tasks/<task-run-id>.json     journal/<task-run-id>.jsonl
        metrics/<run-id>.parquet artifacts/<run-id>/…  graphs/<run-id>.dot|.svg
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 80


def safe_name(name: str, what: str = "name") -> str:
    """A file-system-safe rendering of ``name``; distinct names stay distinct (a short hash is added
    whenever characters had to be replaced)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    if not name or not name.strip():
        raise ValueError(f"{what} must not be empty")
    cleaned = _UNSAFE.sub("_", name).strip("._") or "_"
    if cleaned != name or len(cleaned) > _MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned[:_MAX_NAME]}-{digest}"
    return cleaned


def new_run_id(label: str) -> str:
    """A unique id for a task or ML run: the label made safe plus 8 random hex digits."""
    return f"{safe_name(label)[:40]}-{secrets.token_hex(4)}"


def new_workflow_run_id() -> str:
    """A unique, time-sortable workflow run id (UTC start time plus random hex)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


@dataclass(frozen=True)
class WorkflowDir:
    """Paths inside one workflow run folder. Creating it makes nothing on disk."""

    root: Path

    @property
    def workflow_file(self) -> Path:
        return self.root / "workflow.json"

    @property
    def workflow_journal(self) -> Path:
        return self.root / "journal" / "workflow.jsonl"

    def task_file(self, task_id: str) -> Path:
        return self.root / "tasks" / f"{task_id}.json"

    def task_journal(self, task_id: str) -> Path:
        return self.root / "journal" / f"{task_id}.jsonl"

    def has_task(self, task_id: str) -> bool:
        """Whether a task of this id has a bundle or a journal here (string paths: it is on every task's path)."""
        root = os.fspath(self.root)
        return os.path.exists(f"{root}/tasks/{task_id}.json") or os.path.exists(f"{root}/journal/{task_id}.jsonl")

    def metrics_log(self, run_id: str) -> Path:
        return self.root / "metrics" / f"{run_id}.ylog"

    def sampler_log(self, run_id: str) -> Path:
        """The background sampler's own append-only log (merged into the run's Parquet at the end)."""
        return self.root / "metrics" / f"{run_id}.sampled.ylog"

    def metrics_file(self, run_id: str) -> Path:
        return self.root / "metrics" / f"{run_id}.parquet"

    def artifacts(self, run_id: str) -> Path:
        return self.root / "artifacts" / run_id

    def graph_file(self, run_id: str) -> Path:
        """The DOT drawing of a run's task bundle (``end_run(create_graph=True)``); the SVG sits beside it."""
        return self.root / "graphs" / f"{run_id}.dot"

    def relative(self, path: Path) -> str:
        """``path`` relative to the run folder, with forward slashes (as recorded in PROV)."""
        return path.relative_to(self.root).as_posix()

    def resolve(self, relative: str) -> Path:
        """The file a recorded relative location points to; refuses locations that leave the folder."""
        root = self.root.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"location {relative!r} escapes the provenance folder {self.root}")
        return target


def open_creating_folder(path: Path, mode: str, buffering: int = -1) -> BinaryIO:
    """``open(path, mode)``, creating the folder first only when it is missing: the folder is there but for a
    run's first file, so the common case costs no mkdir."""
    try:
        return open(path, mode, buffering=buffering)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, mode, buffering=buffering)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a half.
    ``durable=False`` skips the fsync (a killed process still never leaves a half file; an fsync costs
    several ms, more than a whole task's recording, so per-task files skip it)."""
    tmp = f"{path.parent}/.{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:  # the folder is there but for a run's first file: no mkdir in the common case
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    return _sha256_and_size(path)[0]


def _sha256_and_size(path: Path | str) -> tuple[str, int]:
    """Hex sha256 and length of the bytes read (so the two always agree, even for a file being written)."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb", buffering=0) as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def digest_path(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, or of a folder (the sha256 of its files' relative paths and digests).
    Inside a folder a symlink counts by where it points (``link:<target>``): it is never followed.
    FileNotFoundError if ``path`` does not exist."""
    if stat.S_ISREG(os.stat(path).st_mode):
        return _sha256_and_size(path)
    h, total = hashlib.sha256(), 0
    for f in sorted(p for p in path.rglob("*") if p.is_symlink() or p.is_file()):
        rel = f.relative_to(path).as_posix()
        if f.is_symlink():
            h.update(f"{rel}\0link:{os.readlink(f)}\n".encode("utf-8", "surrogateescape"))
            continue
        digest, size = _sha256_and_size(f)
        h.update(f"{rel}\0{digest}\n".encode("utf-8", "surrogateescape"))
        total += size
    return h.hexdigest(), total


def find_workflow_dirs(path: Path) -> list[Path]:
    """Workflow run folders at ``path`` or below it (a save dir, a workflow's folder, or one run)."""
    def is_run(p: Path) -> bool:
        return (p / "workflow.json").is_file() or (p / "journal").is_dir() or (p / "tasks").is_dir()

    if is_run(path):
        return [path]
    found = [p for p in sorted(path.glob("*")) if p.is_dir() and is_run(p)]
    found += [p for p in sorted(path.glob("*/*")) if p.is_dir() and is_run(p)]
    return found
