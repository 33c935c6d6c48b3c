"""The workflow run of one Snakemake invocation, driven by Snakemake's log events: the workflow activity,
one task bundle per job attempt (unless the job recorded its own with ``snakemake_yprov.job``), the
data flow through file digests and the collection. Knows no logging machinery (see ``__init__``)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakemake_yprov import rendezvous
from snakemake_yprov.identity import job_key, new_task_id, task_prefix
from snakemake_yprov.jobinfo import snakemake_version
from snakemake_yprov.logtail import log_tail

import yprov_wf as yp
from snakemake_logger_plugin_yprov.attempts import LOG_TAIL_ENV, InnerAttempt, InnerAttempts, error_text
from snakemake_logger_plugin_yprov.snapshots import JOB_INPUTS, LOG_TAIL
from yprov_wf.errors import ProvenanceWarning
from yprov_wf.recording.records import COMPLETED, FAILED, INTERRUPTED, PIPE, DataRecord, Scalar
from yprov_wf.recording.scopes import file_record

# the job's params, which JOB_INFO lacks, added to its log record by the plugin (see __init__)
JOB_PARAMS = "yprov_params"
# the job ids of a group job's members, added to GROUP_INFO's record by the plugin
GROUP_MEMBERS = "yprov_group_jobs"

# fmt_iofile appends these to flagged files in JOB_INFO; the job process sees the bare path
_ANNOTATION = re.compile(r" \((?:pipe|service|nodelocal|update|before update|access: [^()]*|cached"
                         r"|[^()]*storage[^()]*)\)$")


@dataclass(frozen=True)
class RecorderSettings:
    save_dir: Path
    namespace: str
    workflow_name: str | None = None
    log_tail_lines: int = 20


@dataclass
class _Job:
    """One attempt of one job, from JOB_INFO until JOB_FINISHED / JOB_ERROR."""

    jobid: int
    rule: str
    attempt: int
    started: float
    key: str
    inputs: list[DataRecord]
    outputs: list[str]
    logs: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Scalar] = field(default_factory=dict)
    output_records: list[DataRecord] | None = None  # hashed at JOB_FINISHED; None: hash at the end
    log_tail: str | None = None  # read at JOB_ERROR ("" when there was none); None: read at the end
    records_itself: bool = True  # may have written its own bundles (see can_record_itself)


class WorkflowRecorder:
    """Owns the workflow run; thread-safe (events arrive on whichever of Snakemake's threads logs them)."""

    def __init__(self, settings: RecorderSettings) -> None:
        self.settings = settings
        self.workflow: yp.WorkflowScope | None = None
        self.run_dir: Path | None = None
        self._lock = threading.RLock()
        self._jobs: dict[int, _Job] = {}
        self._attempts: dict[int, int] = {}
        self._groups: dict[int, dict[str, str]] = {}  # job id → the group job it runs in
        self._claimed: set[str] = set()  # task ids already accounted for (written by a job, or by us)
        self._failed_jobs: set[int] = set()
        self._finished_ok: set[int] = set()
        self._errors: list[str] = []
        self._progress: tuple[int, int] | None = None  # Snakemake's last (done, total)
        # temp()/pipe() inputs as their consumers recorded them: the producer's record when it is reported
        # only at the end (--quiet progress), the file being gone by then
        self._transient: dict[str, DataRecord] = {}
        self._pointer: Path | None = None
        self._env_before: str | None = None
        self._logger_env_before: str | None = None
        self._tail_env_before: str | None = None
        self._inner: InnerAttempts | None = None  # failed attempts that jobs' own processes reported
        self._broken = False
        self.closed = False

    # -- workflow ------------------------------------------------------------------------------------
    def start(self, info: dict[str, Any], when: float | None = None) -> None:
        """WORKFLOW_STARTED: open the run, then point job processes at it (env var and pointer file)."""
        with self._lock:
            if self.workflow is not None or self.closed:
                return
            self._logger_env_before = os.environ.get(rendezvous.LOGGER_ENV)
            self._tail_env_before = os.environ.get(LOG_TAIL_ENV)
            os.environ[rendezvous.LOGGER_ENV] = "1"
            os.environ[LOG_TAIL_ENV] = str(self.settings.log_tail_lines)
            snakefile = str(info.get("snakefile_main") or info.get("snakefile") or "Snakefile")
            name = self.settings.workflow_name or _default_name(snakefile)
            sm_id = str(info.get("workflow_id") or "")
            attrs = {"snakemakeWorkflowId": sm_id, "snakefile": snakefile,
                     "snakemakeVersion": info.get("snakemake_version"), "configMd5": info.get("config_md5"),
                     "workdir": str(Path.cwd())}
            self.workflow = yp.WorkflowScope(
                name, namespace=self.settings.namespace, save_dir=self.settings.save_dir.resolve(),
                engine="snakemake", attributes={k: str(v) for k, v in attrs.items() if v},
                engine_version=str(info.get("snakemake_version") or snakemake_version() or "") or None,
                source_dir=Path(snakefile).parent,  # the workflow's repository, not Snakemake's install
            ).open()
            self.run_dir = self.workflow.dir.root.resolve()
            self._inner = InnerAttempts(self.run_dir)
            self._env_before = os.environ.get(rendezvous.RUN_DIR_ENV)
            os.environ.update(self.workflow.environment)
            self._pointer = rendezvous.write_pointer(self.run_dir, sm_id, name=name, namespace=self.workflow.namespace,
                                                     run_id=self.workflow.run_id)

    def error(self, message: str) -> None:
        """ERROR: Snakemake reported an exception (the workflow fails)."""
        with self._lock:
            self._errors.append(message.strip()[:2000])

    def progress(self, done: int, total: int) -> None:
        """PROGRESS: jobs done of the DAG's total (a retried job that finally succeeded counts as done)."""
        with self._lock:
            self._progress = (int(done), int(total))

    def close(self) -> None:
        """Close open attempts as interrupted, write workflow.json, restore the environment."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if os.environ.get(rendezvous.LOGGER_ENV) == "1" and self._logger_env_before is None:
                os.environ.pop(rendezvous.LOGGER_ENV, None)
            if self._tail_env_before is None:
                os.environ.pop(LOG_TAIL_ENV, None)
            else:
                os.environ[LOG_TAIL_ENV] = self._tail_env_before
            if self.workflow is None:
                return
            uses = self._uses() if self._jobs else {}
            for jobid in list(self._jobs):
                self._finish_unreported(jobid, uses)
            unrecovered = self._failed_jobs - self._finished_ok
            # an ERROR is also logged for each failed attempt: when every job of the DAG was done at the end
            # (retries: the last attempt succeeded), those errors did not fail the workflow
            all_done = self._progress is not None and self._progress[0] >= self._progress[1]
            errors = [] if all_done and not unrecovered else self._errors
            failed = errors or unrecovered
            error = errors[-1] if errors else (f"{len(unrecovered)} job(s) failed" if failed else None)
            try:
                self.workflow.close(FAILED if failed else COMPLETED, error)
            finally:
                if self._env_before is None:
                    os.environ.pop(rendezvous.RUN_DIR_ENV, None)
                else:
                    os.environ[rendezvous.RUN_DIR_ENV] = self._env_before
                if self._pointer is not None and self.run_dir is not None:
                    rendezvous.remove_pointer(self._pointer, self.run_dir)
                    (self._pointer.parent / rendezvous.JOBIDS.name).unlink(missing_ok=True)
                if self._inner is not None:
                    self._inner.remove()

    # -- jobs ----------------------------------------------------------------------------------------
    def group_info(self, group: str, group_job_id: str | None, jobids: Any) -> None:
        """GROUP_INFO: these jobs run together as one group job (one submission); their JOB_INFO follows."""
        attrs = {"group": group, **({"groupJobId": group_job_id} if group_job_id else {})}
        with self._lock:
            for jobid in jobids:
                self._groups[int(jobid)] = attrs

    def job_info(self, ev: dict[str, Any], when: float) -> None:
        """JOB_INFO: an attempt starts; its inputs were hashed on the logging thread (``JOB_INPUTS``), else
        now."""
        with self._lock:
            if self.workflow is None:
                return
            jobid = int(ev["jobid"])
            if jobid in self._jobs:  # e.g. printed twice; keep the first
                return
            attempt = self._attempts[jobid] = self._attempts.get(jobid, 0) + 1
            rule = str(ev.get("rule_name") or "job")
            inputs = [_strip(f) for f in ev.get("input") or ()]
            outputs = [_strip(f) for f in ev.get("output") or ()]
            logs = [_strip(f) for f in ev.get("log") or ()]
            attrs: dict[str, Scalar] = {
                "engine": "snakemake", "rule": rule, "snakemakeJobId": jobid,
                "jobKey": job_key(rule, outputs, inputs),
                "wildcards": json.dumps({str(k): str(v) for k, v in dict(ev.get("wildcards") or {}).items()},
                                        sort_keys=True),
                "threads": ev.get("threads"), "resources": json.dumps(_resources(ev.get("resources")), sort_keys=True),
                "shellCommand": _text(ev.get("shellcmd")), "reason": _text(ev.get("reason")),
                "message": _text(ev.get("rule_msg")), "local": ev.get("local"),
                "logFiles": json.dumps(logs), "recordedBy": "logger",
                **self._groups.get(jobid, {}),
            }
            records = self._jobs_inputs(ev, inputs)
            for rec in records:
                if rec.kind is not None and rec.path is not None:
                    self._transient[rec.path] = rec
            self._jobs[jobid] = _Job(
                jobid=jobid, rule=rule, attempt=attempt, started=when, key=attrs["jobKey"],
                inputs=records, outputs=outputs, logs=logs, params=dict(ev.get(JOB_PARAMS) or {}),
                attributes={k: v for k, v in attrs.items() if v is not None and v != ""},
                records_itself=can_record_itself(ev),
            )

    @staticmethod
    def _jobs_inputs(ev: dict[str, Any], inputs: list[str]) -> list[DataRecord]:
        if JOB_INPUTS not in ev:
            ev[JOB_INPUTS] = [r for r in map(_hash, inputs) if r is not None]
        return list(ev[JOB_INPUTS])

    def job_finished(self, jobid: int, when: float, outputs: list[DataRecord] | None = None,
                     late_inputs: list[DataRecord] | None = None) -> None:
        """JOB_FINISHED, with the outputs (and the inputs an earlier member of its group job made) hashed on
        the logging thread; None: hash the outputs now."""
        with self._lock:
            self._finished_ok.add(jobid)
            job = self._jobs.get(jobid)
            if job is not None:
                for rec in late_inputs or []:  # made by an earlier member of its group job: used after that
                    rec.time = when
                job.inputs += late_inputs or []
                job.output_records = outputs
            self._finish(jobid, COMPLETED, None, when)

    def job_error(self, ev: dict[str, Any], when: float) -> None:
        with self._lock:
            jobid = int(ev["jobid"])
            self._failed_jobs.add(jobid)
            job = self._jobs.get(jobid)
            if job is not None and LOG_TAIL in ev:
                job.log_tail = ev[LOG_TAIL] or ""
            self._finish(jobid, FAILED, error_text(ev), when)

    def _uses(self) -> dict[str, float]:
        """When each file was first used, by the bundles in the run folder and the jobs still open here."""
        from yprov_wf.prov.reading import read_task_file

        first: dict[str, float] = {}
        records = [(f, job.started) for job in self._jobs.values() for f in job.inputs]
        for path in sorted((self.run_dir / "tasks").glob("*.json")) if self.run_dir is not None else ():
            try:
                task = read_task_file(path)
            except (OSError, ValueError, KeyError):
                continue
            records += [(f, task.started) for f in task.inputs]
        for f, started in records:
            if f.path is not None:
                when = f.time if f.time is not None else started
                first[f.path] = min(first.get(f.path, when), when)
        return first

    def _finish_unreported(self, jobid: int, uses: dict[str, float]) -> None:
        """A job with no end event: Snakemake stopped, or ``--quiet progress`` hid JOB_FINISHED. Completed
        if every output exists and was written after the job started; ended = the newest output, or the
        first use of one of them by another job if earlier (Snakemake touches the outputs of cluster
        jobs once it has seen them, after their consumers in the same group job may have read them)."""
        job = self._jobs[jobid]
        mtimes, missing = [], False
        for f in job.outputs:
            try:
                mtimes.append(Path(f).stat().st_mtime)
            except OSError:
                # a temp() output that a consumer used before Snakemake removed it was written
                missing = missing or str(Path(f).resolve()) not in self._transient
        ok = jobid not in self._failed_jobs and not self._errors
        if ok and job.outputs and not missing and (not mtimes or min(mtimes) >= job.started - 1.0):
            used = [uses[p] for f in job.outputs if (p := str(Path(f).resolve())) in uses and uses[p] >= job.started]
            self._finish(jobid, COMPLETED, None, max(min([max(mtimes, default=time.time()), *used]), job.started))
        elif ok and not job.outputs:
            self._finish(jobid, COMPLETED, None, time.time())
        else:
            self._finish(jobid, INTERRUPTED, "Snakemake stopped before the job finished", time.time())

    def _finish(self, jobid: int, status: str, error: str | None, when: float) -> None:
        job = self._jobs.pop(jobid, None)
        if job is None or self.workflow is None or self._broken:
            return
        try:
            if self._claim(job):
                return
            inner = self._inner.take(job.key) if self._inner is not None else []
            if status == FAILED and inner:  # its process reported this failure too, with the exception
                error = inner.pop().error
            for failed in inner:  # retried inside the job's own process: an attempt each, before this one
                self._write_inner(job, failed)
                job.started, job.attempt = failed.ended, job.attempt + 1
            self._attempts[jobid] = max(self._attempts.get(jobid, 0), job.attempt)
            attrs = dict(job.attributes)
            if status != COMPLETED:
                tail = job.log_tail if job.log_tail is not None else log_tail(job.logs, self.settings.log_tail_lines)
                if tail:
                    attrs["logTail"] = tail
            for rec in job.inputs:  # a pipe is read while its producer writes it: used until the end
                if rec.kind == PIPE:
                    rec.time = when
            for rec in job.output_records or ():  # and generated from the producer's start
                if rec.kind == PIPE:
                    rec.time = job.started
            task_id = new_task_id(job.rule, job.key)
            self._claimed.add(task_id)  # ours: not a bundle that a later attempt wrote itself
            self.workflow.write_finished_task(
                job.rule, run_id=task_id, attempt=job.attempt, started=job.started, ended=when, status=status,
                error=error, inputs=job.inputs, params=job.params, attributes=attrs,
                outputs=job.output_records if job.output_records is not None else self._outputs_now(job))
        except Exception as exc:  # never fail the workflow for provenance
            self._broken = True
            warnings.warn(f"yprov-wf: stopped recording Snakemake jobs ({type(exc).__name__}: {exc})",
                          ProvenanceWarning, stacklevel=2)

    def _write_inner(self, job: _Job, failed: InnerAttempt) -> None:
        """A failed attempt the job's own process made and retried (a ``run:`` job's ``retries:``): the job's
        inputs, no outputs (Snakemake removes them), the error and log tail its process saw."""
        assert self.workflow is not None
        attrs = dict(job.attributes)
        if failed.log_tail:
            attrs["logTail"] = failed.log_tail
        task_id = new_task_id(job.rule, job.key)
        self._claimed.add(task_id)
        self.workflow.write_finished_task(
            job.rule, run_id=task_id, attempt=job.attempt, started=job.started, ended=max(failed.ended, job.started),
            status=FAILED, error=failed.error, inputs=job.inputs, params=job.params, attributes=attrs, outputs=())

    def _outputs_now(self, job: _Job) -> list[DataRecord | str]:
        """Outputs of a job reported only now: the files, or the record of a temp()/pipe() one that is gone."""
        out: list[DataRecord | str] = []
        for f in job.outputs:
            path = Path(f)
            if path.exists():
                out.append(f)
            elif (rec := self._transient.get(str(path.resolve()))) is not None:
                out.append(rec)
        return out

    def _claim(self, job: _Job) -> bool:
        """True if the job wrote its own bundle for this attempt (``snakemake_yprov.job``)."""
        if not job.records_itself:
            return False  # no listing of the run's folders for a job that cannot have written to them
        root = self.run_dir
        assert root is not None
        prefix = task_prefix(job.rule, job.key)
        found = _stems(root / "tasks", prefix, ".json") | _stems(root / "journal", prefix, ".jsonl")
        fresh = found - self._claimed
        if fresh:
            self._claimed.update(fresh)
            return True
        return False


def can_record_itself(ev: dict[str, Any]) -> bool:
    """Whether a job (its JOB_INFO) may write its own bundles: ``snakemake_yprov.job()`` needs the ``snakemake``
    object, which only jobs running Python get (``run:``, ``script:``, ``notebook:``, ``wrapper:``), not a
    ``shell:`` job, the one kind Snakemake gives a shell command."""
    return not ev.get("shellcmd")


def _stems(folder: Path, prefix: str, suffix: str) -> set[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    return {n[:-len(suffix)] for n in names if n.startswith(prefix) and n.endswith(suffix)}


def _default_name(snakefile: str) -> str:
    parent = Path(snakefile).resolve().parent
    return parent.name or "snakemake"


def _strip(f: Any) -> str:
    return _ANNOTATION.sub("", str(f))


def _hash(path: str) -> DataRecord | None:
    """A file or ``directory()`` input, fingerprinted when the job starts (None if it is not there)."""
    try:
        return file_record(Path(path))
    except OSError:
        return None


def _resources(res: Any) -> dict[str, Scalar]:
    if res is None:
        return {}
    items = res.items() if hasattr(res, "items") else []
    out: dict[str, Scalar] = {}
    for k, v in items:
        if str(k).startswith("_") or callable(v):
            continue
        out[str(k)] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:4000] or None
