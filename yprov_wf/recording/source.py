"""Source-code capture: which script or files a run executed, copied safely, and the git state they
came from. Git runs with argument lists (no shell) and a timeout; remote URLs lose their credentials."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from yprov_wf.environment import redact_url

_SKIP_DIRS = {".git", "__pycache__", ".hg", ".svn", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
              "node_modules", "site-packages", "dist-packages"}
_GIT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class GitState:
    """The repository a path belongs to: HEAD commit, branch, origin URL and uncommitted changes."""

    commit: str
    branch: str | None
    remote: str | None
    dirty: bool
    diff: bytes


def running_script() -> Path:
    """The script this process runs (``__main__.__file__``, else ``sys.argv[0]``); FileNotFoundError if
    there is none (an interactive session, ``python -c``)."""
    main = sys.modules.get("__main__")
    for candidate in (getattr(main, "__file__", None), sys.argv[0] if sys.argv else None):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise FileNotFoundError("no running script to record (interactive session or python -c); "
                            "pass the files to log_source_code(path=...)")


def check_not_installed(path: Path) -> None:
    """Refuse the interpreter's own files: the standard library and installed packages."""
    for root in _interpreter_roots():
        if path.is_relative_to(root):
            raise ValueError(f"source path {str(path)!r} is inside the interpreter's own files ({root}); "
                             "record your own code only")


def copy_source(src: Path, dest: Path, exclude: Path) -> int:
    """Copy a file, or a folder's regular files (no symlinks, no VCS/cache/virtual-env folders, nothing
    under ``exclude``), to ``dest``; returns how many files were copied."""
    if src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return 1
    count = 0
    for folder, dirs, files in os.walk(src):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if _keep_dir(here / d, exclude))
        for name in sorted(files):
            f = here / name
            if f.is_symlink() or not f.is_file():
                continue
            target = dest / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            count += 1
    if count == 0:
        dest.mkdir(parents=True, exist_ok=True)
    return count


def git_state(path: Path) -> GitState | None:
    """The git state of the repository holding ``path``, or None (not in a repository, no git)."""
    where = path if path.is_dir() else path.parent
    commit = _git(where, "rev-parse", "--verify", "HEAD")
    if commit is None:
        return None
    branch = _git(where, "rev-parse", "--abbrev-ref", "HEAD")
    remote = _git(where, "config", "--get", "remote.origin.url")
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    diff = _git_bytes(where, "diff", "HEAD", "--no-color", "--no-ext-diff") or b""
    return GitState(commit=commit, branch=None if branch in (None, "HEAD") else branch,
                    remote=redact_url(remote) if remote else None, dirty=bool(status), diff=diff)


def _keep_dir(path: Path, exclude: Path) -> bool:
    if path.name in _SKIP_DIRS or path.is_symlink() or (path / "pyvenv.cfg").is_file():
        return False
    resolved = path.resolve()
    return not (resolved == exclude or resolved.is_relative_to(exclude) or resolved in _interpreter_roots())


def _interpreter_roots() -> list[Path]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(Path(p).resolve())
    return sorted(roots)


def _git(where: Path, *args: str) -> str | None:
    out = _git_bytes(where, *args)
    return None if out is None else out.decode("utf-8", "replace").strip()


def _git_bytes(where: Path, *args: str) -> bytes | None:
    git = shutil.which("git")
    if git is None:
        return None
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run([git, "-C", str(where), *args], capture_output=True, timeout=_GIT_TIMEOUT,
                              env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
