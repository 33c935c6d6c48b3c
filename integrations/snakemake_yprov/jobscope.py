"""``with job(snakemake):`` — the task bundle of one Snakemake job, opened from inside the job's process
(a ``run:`` block, a ``script:`` file or the yprov wrapper), so that start_run/log_* nest in it."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import yprov_wf as yp
from snakemake_yprov import rendezvous
from snakemake_yprov.identity import new_task_id, task_prefix
from snakemake_yprov.jobinfo import JobInfo, from_caller, snakemake_version
from snakemake_yprov.logtail import log_tail
from yprov_wf.errors import ProvenanceWarning
from yprov_wf.recording.records import COMPLETED, FAILED, INTERRUPTED
from yprov_wf.recording.scopes import file_record

STANDALONE_WORKFLOW = "snakemake"  # workflow name of a job recorded without the logger plugin


def job(snakemake: Any = None, *, workflow_name: str | None = None, namespace: str | None = None,
        save_dir: str | os.PathLike | None = None, log_tail_lines: int = 20) -> JobScope:
    """The task bundle of the current Snakemake job, as a context manager yielding its ``TaskScope``.

    In a ``script:`` file pass the ``snakemake`` object; in a ``run:`` block ``job(snakemake)`` (the module)
    or ``job()`` read the block's ``input``, ``output``, ``params``… With ``--logger yprov`` the bundle joins
    the invocation's workflow run; without it, it is a workflow run of its own named ``workflow_name``
    (default ``snakemake``) under ``save_dir`` (default ``$YPROV_WF_SAVE_DIR`` or ``prov``).
    """
    return JobScope(from_caller(snakemake, sys._getframe(1)), workflow_name=workflow_name, namespace=namespace,
                    save_dir=save_dir, log_tail_lines=log_tail_lines)


class JobScope:
    """Opens the job's workflow (joined or its own) and task; a provenance-side failure only warns."""

    def __init__(self, info: JobInfo, *, workflow_name: str | None = None, namespace: str | None = None,
                 save_dir: str | os.PathLike | None = None, log_tail_lines: int = 20) -> None:
        if not isinstance(log_tail_lines, int) or log_tail_lines < 0:
            raise ValueError(f"log_tail_lines must be a non-negative int, got {log_tail_lines!r}")
        self.info = info
        self.workflow_name = workflow_name or os.environ.get("YPROV_SNAKEMAKE_WORKFLOW", STANDALONE_WORKFLOW)
        self.namespace, self.save_dir, self.log_tail_lines = namespace, save_dir, log_tail_lines
        self.task: yp.TaskScope | None = None
        self.workflow: yp.WorkflowScope | None = None
        self.joined = False
        self.shadow_of: Path | None = None

    def __enter__(self) -> yp.TaskScope | None:
        try:
            self._open()
        except Exception as exc:  # never fail the job for provenance
            warnings.warn(f"yprov-wf: no provenance for rule {self.info.rule!r} ({type(exc).__name__}: {exc})",
                          ProvenanceWarning, stacklevel=2)
            self._abandon()
        return self.task

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.task is None:
            return
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):  # sys.exit(0) in a script
            status, error = COMPLETED, None
        else:
            status = INTERRUPTED if isinstance(exc, (KeyboardInterrupt, SystemExit)) else FAILED
            error = f"{exc_type.__name__}: {exc}"[:2000]
        try:
            if status == COMPLETED:
                self._finish_outputs()
            if status != COMPLETED:
                tail = log_tail(self.info.logs, self.log_tail_lines)
                if tail:
                    self.task.set_attribute("logTail", tail)
            self.task.close(status, error)
            if self.workflow is not None and not self.joined:
                self.workflow.close(status, error)
            elif self.workflow is not None:
                self.workflow.close()  # a participant writes nothing
        except Exception as exc2:
            warnings.warn(f"yprov-wf: could not finish the provenance of rule {self.info.rule!r} "
                          f"({type(exc2).__name__}: {exc2})", ProvenanceWarning, stacklevel=2)

    def _open(self) -> None:
        _warm_up()
        info = self.info
        self.shadow_of = _shadowed_workdir(Path.cwd())
        workdir = self.shadow_of or Path.cwd()
        ref = rendezvous.find_run(workdir)
        run_dir = ref.run_dir if ref is not None else None
        if ref is None and os.environ.get(rendezvous.LOGGER_ENV):
            raise RuntimeError("the yprov logger plugin could not open its workflow run (see its warning); "
                               "this job is not recorded")
        if ref is not None and ref.name is not None:  # told by the pointer file: no journal to read
            self.workflow = yp.WorkflowScope(ref.name, namespace=ref.namespace, save_dir=ref.run_dir.parent.parent,
                                             run_id=ref.run_id, engine="snakemake", owner=False,
                                             engine_version=snakemake_version()).open()
            self.joined = True
        elif run_dir is not None:
            self.workflow = yp.join_workflow(run_dir).open()
            self.joined = True
        else:
            self.workflow = yp.WorkflowScope(self.workflow_name, namespace=self.namespace, save_dir=self.save_dir,
                                             engine="snakemake", attributes={"recordedBy": "job"},
                                             engine_version=snakemake_version()).open()
        attempt = _earlier_attempts(run_dir, task_prefix(info.rule, info.key)) + 1 if run_dir is not None else 1
        if self.joined:
            info.jobid = rendezvous.find_jobid(info.key, workdir)
        self.task = yp.TaskScope(
            info.rule, run_id=new_task_id(info.rule, info.key), workflow=self.workflow, attempt=attempt,
            inputs=[f for f in info.inputs if Path(f).exists()],  # a shadow dir links inputs: resolved
            outputs=[] if self.shadow_of is not None else info.outputs, params=info.params,
            attributes={**info.attributes(), "recordedBy": "job"},
        ).open()

    def _finish_outputs(self) -> None:
        """What Snakemake does with the outputs right after the job, done first so the record matches:
        a ``directory()`` output gets its (empty) ``.snakemake_timestamp``; a ``shadow:`` job's outputs
        are recorded at the place Snakemake moves them to, not in the temporary shadow folder."""
        assert self.task is not None
        for out in self.info.outputs:
            path = Path(out)
            if path.is_dir() and not path.is_symlink() and not (path / ".snakemake_timestamp").exists():
                (path / ".snakemake_timestamp").touch()
            if self.shadow_of is not None and path.exists():
                rec = file_record(path)
                rec.path = os.path.abspath(path if path.is_absolute() else self.shadow_of / path)
                self.task.log_output(rec)

    def _abandon(self) -> None:
        for scope in (self.task, self.workflow):
            if scope is not None and not scope.closed:
                try:
                    scope.close(FAILED, "provenance setup failed")
                except Exception:
                    pass
        self.task = None


def _shadowed_workdir(cwd: Path) -> Path | None:
    """The working directory of a ``shadow:`` job running in ``<workdir>/.snakemake/shadow/<tmp>``."""
    if cwd.parent.name == "shadow" and cwd.parent.parent.name == ".snakemake":
        return cwd.parent.parent.parent
    return None


def _earlier_attempts(run_dir: Path, prefix: str) -> int:
    """Bundles (or journals of bundles still being written) of this job in the run: earlier attempts."""
    names = {p.stem for p in (run_dir / "tasks").glob(prefix + "*.json")}
    names |= {p.stem for p in (run_dir / "journal").glob(prefix + "*.jsonl")}
    return len(names)


_warmed = threading.Event()


def _warm_up() -> None:
    """Import what closing the bundle needs (the mapping to PROV-JSON) on a daemon thread while the job's
    body runs, once per process."""
    if _warmed.is_set():
        return
    _warmed.set()

    def work() -> None:
        try:
            importlib.import_module("yprov_wf.prov.mapping")
        except Exception:  # closing the bundle imports (and reports) it itself
            return

    threading.Thread(target=work, name="yprov-snakemake-warm-up", daemon=True).start()
