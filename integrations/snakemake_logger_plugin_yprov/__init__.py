"""Snakemake logger plugin ``yprov``: ``snakemake --logger yprov`` records the invocation as a yprov-wf
workflow run (W3C PROV): the workflow activity, each job attempt as a task bundle with its rule,
wildcards, files and their sha256 digests, threads, resources, shell command, status and timing, the data
flow between jobs, and the collection of all bundles. Jobs wrapped with ``snakemake_yprov.job`` join it.

Settings (``--logger-yprov-<name>``): save-dir, namespace, workflow-name, log-tail-lines.
"""

import atexit
import logging
import logging.handlers
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from snakemake_logger_plugin_yprov.attempts import report_from_job_process

_DEFAULT_NAMESPACE = "https://yprov-wf.invalid/"
_RECORDED = "yprov_recorded"  # on a log record once recorded (see LogHandler._record)
# how far up from _logging_job Snakemake's frames may start: the step, _guard, _record, the filter
_PLUGIN_FRAMES = 4

# Snakemake imports this module in a job's own process too (``--mode subprocess``/``remote``), where a rule's
# ``retries:`` restart the job unseen by the main process: under ``--logger yprov``, report them (see attempts)
report_from_job_process(sys.argv, os.environ)


def _parse_namespace(value: str, source: str = "--logger-yprov-namespace") -> str:
    from yprov_wf.prov.vocabulary import check_namespace

    try:
        return check_namespace(value)
    except (TypeError, ValueError) as exc:
        raise WorkflowError(f"{source}: {exc}") from None


def _parse_lines(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise WorkflowError(f"--logger-yprov-log-tail-lines must be a non-negative integer, got {value!r}")
    return n


# Snakemake turns these field types into argparse types at run time: keep typing.Optional (argparse cannot
# call `str | None`) and no `from __future__ import annotations`.
@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    save_dir: Optional[str] = field(default=None, metadata={  # noqa: UP045
        "help": "Folder for the provenance (default: $YPROV_WF_SAVE_DIR or 'prov', relative to the working "
                "directory)."})
    namespace: Optional[str] = field(default=None, metadata={  # noqa: UP045
        "help": "Absolute IRI for your instances, e.g. https://example.org/ (default: $YPROV_WF_NAMESPACE).",
        "parse_func": _parse_namespace, "unparse_func": str})
    workflow_name: Optional[str] = field(default=None, metadata={  # noqa: UP045
        "help": "Name of the workflow run's folder and activity (default: the Snakefile's folder name)."})
    log_tail_lines: int = field(default=20, metadata={
        "help": "Lines of a failed job's log files kept in its bundle (default: 20).",
        "parse_func": _parse_lines, "unparse_func": str})


class LogHandler(LogHandlerBase):
    """Feeds Snakemake's log events to a :class:`WorkflowRecorder`; never raises into Snakemake."""

    def __post_init__(self) -> None:
        # Snakemake imports every installed logger plugin to build its CLI: the recorder (and yprov_wf)
        # is imported only when this one is used.
        from snakemake_logger_plugin_yprov.recorder import RecorderSettings, WorkflowRecorder

        settings = self.settings if isinstance(self.settings, LogHandlerSettings) else LogHandlerSettings()
        if settings.namespace:
            namespace = _parse_namespace(settings.namespace)
        else:
            namespace = _parse_namespace(os.environ.get("YPROV_WF_NAMESPACE", _DEFAULT_NAMESPACE),
                                         "$YPROV_WF_NAMESPACE")
        if settings.workflow_name is not None and not settings.workflow_name.strip():
            raise WorkflowError("--logger-yprov-workflow-name must not be empty")
        lines = settings.log_tail_lines
        if not isinstance(lines, int) or lines < 0:
            lines = _parse_lines(str(lines))
        save_dir = Path(settings.save_dir or os.environ.get("YPROV_WF_SAVE_DIR", "prov")).expanduser()
        self.recorder: WorkflowRecorder | None = None
        if not getattr(self.common_settings, "dryrun", False):
            self.recorder = WorkflowRecorder(RecorderSettings(save_dir, namespace, settings.workflow_name, lines))
        self._warned = False
        self._snakemake_logger: logging.Logger | None = None
        self._bypass_queue = False
        self._queue_handler: logging.Handler | None = None
        self._pending_start: tuple[dict, float] | None = None
        self._snapshots = None
        if self.recorder is not None:
            from snakemake_logger_plugin_yprov.snapshots import Snapshots

            self._snapshots = Snapshots(lines)
        self._hook_workflow_start()

    # Every event is recorded on the thread that logs it, synchronously, from a filter on Snakemake's logger:
    # the workflow run exists before the first job process starts, and a job's files are seen before
    # Snakemake goes on (and removes temp() files, reruns a failed job…). Plugin handlers proper run on
    # Snakemake's queue listener thread, late, and doing the work there costs about twice the CPU (the two
    # threads trade the GIL on every event). Snakemake's own metadata files are written the same way.
    def _hook_workflow_start(self) -> None:
        if self.recorder is None:
            return
        try:
            from snakemake.logging import logger as snakemake_logger
        except ImportError:
            return
        snakemake_logger.addFilter(self._on_emitting_thread)
        self._snakemake_logger = snakemake_logger
        self._bypass_queue = list(getattr(self.common_settings, "log_handler_settings", None) or ()) == ["yprov"]

    def _on_emitting_thread(self, record: logging.LogRecord) -> bool:
        self._record(record)
        if self._bypass_queue:  # at the first record: Snakemake adds its queue after creating the handlers
            self._bypass_queue = False
            self._skip_recorded_in_queue()
        return True

    def _skip_recorded_in_queue(self) -> None:
        """When this is Snakemake's only plugin handler, the queue Snakemake feeds its plugin handlers from
        serves this one alone: what the filter recorded is not formatted, copied and queued to another
        thread only for this handler to skip it there (~10 ms of CPU in a 41-job workflow)."""
        queues = [h for h in self._snakemake_logger.handlers  # type: ignore[union-attr]
                  if isinstance(h, logging.handlers.QueueHandler)]
        if len(queues) == 1:
            queues[0].addFilter(_not_recorded)
            self._queue_handler = queues[0]

    def emit(self, record: logging.LogRecord) -> None:
        self._record(record)  # only what did not pass the filter (API use): the rest is marked done

    def _record(self, record: logging.LogRecord) -> None:
        if self.recorder is None or record.__dict__.get(_RECORDED):
            return
        record.__dict__[_RECORDED] = True  # the queue's copy of the record keeps it
        event = record.__dict__.get("event")
        rec = self.recorder
        if event == LogEvent.WORKFLOW_STARTED:
            if rec.workflow is None and self._pending_start is None:
                self._pending_start = (dict(record.__dict__), record.created)
        elif event == LogEvent.JOB_INFO:
            self._guard(self._start_pending, record)  # the first job: the run exists before it starts
            self._guard(self._snapshot_job, record)
            self._guard(lambda r: rec.job_info(r.__dict__, r.created), record)
        elif event == LogEvent.GROUP_INFO:
            self._guard(_attach_group_members, record)
            self._guard(self._group_info, record)
        elif event == LogEvent.JOB_FINISHED:
            self._guard(self._snapshots.job_finished, record)  # type: ignore[union-attr]
            self._guard(self._job_finished, record)
        elif event == LogEvent.JOB_ERROR:
            self._guard(self._snapshots.job_error, record)  # type: ignore[union-attr]
            self._guard(lambda r: rec.job_error(r.__dict__, r.created), record)
        elif event == LogEvent.PROGRESS:
            self._guard(lambda r: rec.progress(r.__dict__.get("done", 0), r.__dict__.get("total", 0)), record)
        elif event == LogEvent.ERROR:
            self._guard(lambda r: rec.error(r.getMessage() if r.msg is not None
                                            else str(getattr(r, "exception", ""))), record)

    def _snapshot_job(self, record: logging.LogRecord) -> None:
        from snakemake_logger_plugin_yprov.recorder import _strip, can_record_itself

        jobid = getattr(record, "jobid", None)
        job = _logging_job(lambda j: hasattr(j, "params") and j.dag.jobid(j) == jobid, depth=_PLUGIN_FRAMES)
        _attach_params(record, job)
        self._snapshots.job_info(record, job, _strip)  # type: ignore[union-attr]
        if self.recorder is not None and self.recorder.run_dir is not None and can_record_itself(record.__dict__):
            from snakemake_yprov import rendezvous  # a wrapped job looks its id up
            from snakemake_yprov.identity import job_key

            files = {k: [_strip(f) for f in record.__dict__.get(k) or ()] for k in ("input", "output")}
            key = job_key(str(record.__dict__.get("rule_name") or "job"), files["output"], files["input"])
            rendezvous.record_jobid(key, int(record.__dict__["jobid"]))

    def _group_info(self, record: logging.LogRecord) -> None:
        from snakemake_logger_plugin_yprov.recorder import GROUP_MEMBERS

        group = record.__dict__.get(GROUP_MEMBERS) or {}
        self.recorder.group_info(str(record.__dict__.get("group_id")), group.get("id"),  # type: ignore[union-attr]
                                 group.get("jobs", ()))

    def _job_finished(self, record: logging.LogRecord) -> None:
        from snakemake_logger_plugin_yprov.snapshots import JOB_OUTPUTS, LATE_INPUTS

        self.recorder.job_finished(int(record.__dict__["job_id"]), record.created,  # type: ignore[union-attr]
                                   record.__dict__.get(JOB_OUTPUTS), record.__dict__.get(LATE_INPUTS))

    def _start_pending(self, _record: logging.LogRecord | None = None) -> None:
        """Open the run at the first job, not at WORKFLOW_STARTED: an invocation with nothing to do (Snakemake
        says "Nothing to be done") records nothing, like Snakemake itself."""
        if self._pending_start is not None:
            info, created = self._pending_start
            self._pending_start = None
            self._start_run(info, created)

    def _start_run(self, info: dict, created: float) -> None:
        assert self.recorder is not None
        if self.recorder.workflow is None:
            self.recorder.start(info, created)
            # for Snakemake versions or API users that never close the handler; registered after the core's
            # own exit hook so that it runs first and closes the run with the status the events gave
            atexit.register(self.close)

    def _guard(self, fn, record: logging.LogRecord) -> None:
        try:
            fn(record)
        except Exception as exc:  # a provenance-side problem never fails Snakemake
            if not self._warned:
                from yprov_wf.errors import ProvenanceWarning

                self._warned = True
                warnings.warn(f"yprov-wf: Snakemake provenance degraded ({type(exc).__name__}: {exc})",
                              ProvenanceWarning, stacklevel=2)

    def close(self) -> None:
        atexit.unregister(self.close)
        if self._snakemake_logger is not None:
            self._snakemake_logger.removeFilter(self._on_emitting_thread)
            self._snakemake_logger = None
        if self._queue_handler is not None:
            self._queue_handler.removeFilter(_not_recorded)
            self._queue_handler = None
        if self.recorder is not None:
            self._guard(lambda _: self.recorder.close(), None)  # type: ignore[union-attr,arg-type]
        super().close()

    @property
    def run_dir(self) -> Path | None:
        """The workflow run folder (None before the workflow started, and in dry runs)."""
        return self.recorder.run_dir if self.recorder is not None else None

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every event is needed, whatever --quiet says

    @property
    def has_formatter(self) -> bool:
        return True  # never formats: nothing is printed

    @property
    def needs_rulegraph(self) -> bool:
        return False


def _not_recorded(record: logging.LogRecord) -> bool:
    return not record.__dict__.get(_RECORDED)


# JOB_INFO and GROUP_INFO are logged synchronously by the Job object itself: what the events lack is taken
# from it and added to the record as plain values, for the recorder.

def _attach_params(record: logging.LogRecord, job: Any) -> None:
    """JOB_INFO carries no ``params:``; the Job object that logs it has them."""
    from snakemake_yprov.jobinfo import named_values

    from snakemake_logger_plugin_yprov.recorder import JOB_PARAMS

    if job is not None:
        setattr(record, JOB_PARAMS, named_values(job.params))


def _attach_group_members(record: logging.LogRecord) -> None:
    """GROUP_INFO names its member Job objects, and the GroupJob logging it has the group job's own id."""
    from snakemake_logger_plugin_yprov.recorder import GROUP_MEMBERS

    members = [int(job.jobid) for job in getattr(record, "jobs", ())]
    group = _logging_job(lambda j: getattr(j, "jobs", None) is getattr(record, "jobs", ()), depth=_PLUGIN_FRAMES)
    setattr(record, GROUP_MEMBERS, {"jobs": members, "id": str(group.jobid) if group is not None else None})


def _logging_job(match: Callable[[Any], bool], depth: int) -> Any:
    """The Job (or GroupJob) whose ``log_info`` is logging the current record: a few frames up this
    synchronous logging call (``depth``: the frames of this plugin in between). None if Snakemake's
    internals change."""
    frame = sys._getframe(depth)
    for _ in range(16):
        if frame is None:
            return None
        job = frame.f_locals.get("self")
        if getattr(job, "dag", None) is not None:
            return job if match(job) else None
        frame = frame.f_back
    return None


__all__ = ["LogHandler", "LogHandlerSettings"]
