"""Copies of the user's files and folders into the provenance folder (artifacts, model versions).

Each copy is made under a temporary name and renamed into place, so a kill leaves no half copy. Folder
copies never follow a symlink (a relative link that stays inside the folder is copied as a link; one that
leads out, an absolute one, a dangling one or a loop is left out), skip FIFOs, sockets and devices, and never descend into the provenance folder itself.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path


def copy_in(src: Path, dest: Path, exclude: Path) -> list[str]:
    """Copy the file or folder ``src`` to ``dest`` atomically; returns what was left out (relative paths)."""
    left_out: list[str] = []
    if not src.is_dir():
        write_atomically(dest, lambda tmp: shutil.copyfile(src, tmp))
        return left_out
    root = src.resolve()
    excluded = exclude.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set()
        for name in names:
            p = Path(folder) / name
            try:
                st = p.lstat()
            except OSError:  # gone since listed: nothing to copy
                skip.add(name)
                continue
            if stat.S_ISLNK(st.st_mode):  # kept only if relative and inside the folder (so in the copy too)
                try:
                    target = None if os.path.isabs(os.readlink(p)) else p.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling, or a loop
                    target = None
                if target is None or not target.is_relative_to(root) or target.is_relative_to(excluded):
                    skip.add(name)
            elif p.resolve().is_relative_to(excluded):  # the provenance folder: left out without a word
                skip.add(name)
                continue
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):  # FIFOs, sockets, devices
                skip.add(name)
            if name in skip:
                left_out.append((p.relative_to(src)).as_posix())
        return skip

    def copy_tree(tmp: Path) -> None:
        shutil.copytree(src, tmp, symlinks=True, ignore=ignore, copy_function=shutil.copy2)

    write_atomically(dest, copy_tree)
    return left_out


def write_atomically(dest: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to make a file or folder at a temporary path beside ``dest``, then rename it
    to ``dest``; on any failure the temporary is removed and the error raised."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        write(tmp)
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
