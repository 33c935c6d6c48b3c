"""The last lines of a failed job's log files, for its bundle."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable

_MAX_CHARS = 4000


def log_tail(paths: Iterable[str | os.PathLike], lines: int = 20) -> str | None:
    """The last ``lines`` lines of each existing log file (``==> path <==`` headers), or None."""
    if lines <= 0:
        return None
    parts = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                tail = deque(f, maxlen=lines)
        except OSError:
            continue
        parts.append(f"==> {os.fspath(path)} <==\n" + "".join(tail).rstrip("\n"))
    text = "\n".join(parts)
    return text[-_MAX_CHARS:] if text else None
