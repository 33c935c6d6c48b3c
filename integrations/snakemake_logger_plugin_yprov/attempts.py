"""Attempts that a job's own Snakemake process makes and retries by itself, unseen by the main process.

Snakemake runs a ``run:`` job (and a group job, and any job on a cluster) in a process of its own,
``snakemake --mode subprocess|remote``, which is passed ``--retries 0`` but still applies a rule's own
``retries:``: the failed attempts happen and are logged there, and the main process only sees the job
finish (or fail once). Snakemake imports every installed logger plugin in that process too, to build its
command line; when the main process runs ``--logger yprov`` (it exports ``YPROV_SNAKEMAKE_LOGGER=1``), this
plugin's import adds a filter to the job process's logger that appends each failed attempt, as one JSON
line, to a file of that process's own, ``.snakemake/yprov/attempts/<host>-<pid>.jsonl``. The main process
reads them when the job ends and writes one bundle per attempt. This module imports only the standard
library at import time: it runs in every job process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ATTEMPTS = Path(".snakemake") / "yprov" / "attempts"  # relative to the working directory (shared, like JOBIDS)
# lines of a failed attempt's log files to keep, exported by the main process (its --logger-yprov-log-tail-lines)
LOG_TAIL_ENV = "YPROV_SNAKEMAKE_LOG_TAIL_LINES"
_LOGGER_ENV = "YPROV_SNAKEMAKE_LOGGER"  # = snakemake_yprov.rendezvous.LOGGER_ENV (not imported: too heavy here)
_JOB_MODES = ("subprocess", "remote")  # Snakemake's ExecMode values of a job's own process


@dataclass(frozen=True)
class InnerAttempt:
    """One failed attempt a job's own process reported: its job key, when it failed, why, its log tail."""

    key: str
    rule: str
    ended: float
    error: str
    log_tail: str | None


def error_text(ev: Mapping[str, Any], exception: str | None = None) -> str:
    """The error of a JOB_ERROR event: ``Error in rule <rule>`` (with Snakemake's details and, when the job's
    process logged it just before, the exception), at most 2,000 characters."""
    aux = ev.get("aux") or {}
    detail = "; ".join(f"{k}: {v}" for k, v in dict(aux).items() if v not in (None, ""))
    text = f"Error in rule {ev.get('rule_name')}" + (f" ({detail})" if detail else "")
    return (text + (f": {exception}" if exception else ""))[:2000]


def _job_mode(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--mode" and i + 1 < len(argv):
            return argv[i + 1].strip("'\"")
        if arg.startswith("--mode="):
            return arg.split("=", 1)[1].strip("'\"")
    return None


def report_from_job_process(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """In a job's own Snakemake process under ``--logger yprov``: report its failed attempts. True if
    installed. Never raises (it runs at import time in every Snakemake process)."""
    try:
        if environ.get(_LOGGER_ENV) != "1" or _job_mode(argv) not in _JOB_MODES:
            return False
        from snakemake.logging import logger

        lines = int(environ.get(LOG_TAIL_ENV, "20"))
        if not any(isinstance(f, _Reporter) for f in logger.filters):
            logger.addFilter(_Reporter(max(lines, 0)))
        return True
    except Exception:  # a provenance-side problem never stops the job
        return False


class _Reporter(logging.Filter):
    """On the job process's logger: each JOB_ERROR becomes one line in this process's attempts file, with the
    exception Snakemake logged just before it on the same thread and the log tail as the attempt left it."""

    def __init__(self, log_tail_lines: int) -> None:
        super().__init__()
        self.log_tail_lines = log_tail_lines
        self._exceptions: dict[int, str] = {}  # thread → the exception it logged last (an ERROR event)
        self._lock = threading.Lock()  # a group job's members fail on threads of their own
        self._warned = False

    def filter(self, record: logging.LogRecord) -> bool:
        event = str(getattr(record, "event", "") or "")
        if event in ("error", "job_error"):  # LogEvent.ERROR / LogEvent.JOB_ERROR values
            try:
                self._on_event(event, record)
            except Exception as exc:  # a provenance-side problem never fails the job
                if not self._warned:
                    from yprov_wf.errors import ProvenanceWarning

                    self._warned = True
                    warnings.warn(f"yprov-wf: a failed attempt of this job is not recorded ({type(exc).__name__}: "
                                  f"{exc})", ProvenanceWarning, stacklevel=2)
        return True

    def _on_event(self, event: str, record: logging.LogRecord) -> None:
        thread = threading.get_ident()
        if event == "error":
            self._exceptions[thread] = _summary(record.getMessage() if record.msg is not None
                                                else str(getattr(record, "exception", "")))
            return
        from snakemake_yprov import rendezvous
        from snakemake_yprov.identity import job_key
        from snakemake_yprov.logtail import log_tail

        from snakemake_logger_plugin_yprov.recorder import _strip

        ev = record.__dict__
        exception = self._exceptions.pop(thread, None)
        run_dir = rendezvous.find_run_dir()
        if run_dir is None:
            return
        rule = str(ev.get("rule_name") or "job")
        files = {k: [_strip(f) for f in ev.get(k) or ()] for k in ("input", "output", "log")}
        line = {"run_dir": str(run_dir), "key": job_key(rule, files["output"], files["input"]), "rule": rule,
                "ended": record.created, "error": error_text(ev, exception),
                "log_tail": log_tail(files["log"], self.log_tail_lines)}
        path = ATTEMPTS / f"{socket.gethostname()}-{os.getpid()}.jsonl"
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:  # this process's own file: nobody else writes it
                f.write(json.dumps(line) + "\n")
                f.flush()
                os.fsync(f.fileno())


def _summary(message: str) -> str:
    """An exception as Snakemake prints it, on one line, without its traceback lines."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip() and not ln.startswith((" ", "\t"))]
    return " ".join(lines)[:1500]


class InnerAttempts:
    """The main process's reader of the attempts files: hands each reported attempt out once, to its job."""

    def __init__(self, run_dir: Path, cwd: Path | None = None) -> None:
        self.run_dir = str(run_dir)
        self.folder = (cwd or Path.cwd()) / ATTEMPTS
        self._offsets: dict[str, int] = {}
        self._pending: list[InnerAttempt] = []

    def take(self, key: str) -> list[InnerAttempt]:
        """The failed attempts of the job with this key reported since the last call, oldest first."""
        self._read()
        mine = [a for a in self._pending if a.key == key]
        if mine:
            self._pending = [a for a in self._pending if a.key != key]
        return sorted(mine, key=lambda a: a.ended)

    def _read(self) -> None:
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return
        for name in names:
            if not name.endswith(".jsonl"):
                continue
            try:
                with open(self.folder / name, "rb") as f:
                    f.seek(self._offsets.get(name, 0))
                    data = f.read()
            except OSError:
                continue
            complete = data[:data.rfind(b"\n") + 1]  # a line still being written is read next time
            self._offsets[name] = self._offsets.get(name, 0) + len(complete)
            for raw in complete.splitlines():
                attempt = self._parse(raw)
                if attempt is not None:
                    self._pending.append(attempt)

    def _parse(self, raw: bytes) -> InnerAttempt | None:
        try:
            d = json.loads(raw)
            if d.get("run_dir") != self.run_dir:  # left by another invocation
                return None
            tail = d.get("log_tail")
            return InnerAttempt(str(d["key"]), str(d["rule"]), float(d["ended"]), str(d["error"])[:2000],
                                str(tail) if tail is not None else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def remove(self) -> None:
        """At the end of the invocation: the files are no longer needed."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            if name.endswith(".jsonl"):
                (self.folder / name).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass
