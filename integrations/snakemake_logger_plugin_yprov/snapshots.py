"""A job's files as they are when Snakemake reports it, taken on the thread that logs the event, before
Snakemake goes on: the inputs at JOB_INFO (submission), the outputs at JOB_FINISHED (after shadow
outputs were moved back and ``directory()`` got its timestamp, before ``temp()`` files are removed), a
failed attempt's log tail at JOB_ERROR (before a retry rewrites the log). They are added to the log record
as plain values, for the recorder; this module knows no recorder."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakemake_yprov.logtail import log_tail

from yprov_wf.recording.records import PIPE, TEMPORARY, DataRecord
from yprov_wf.recording.scopes import file_record

# attributes added to the log records (read by the recorder)
JOB_INPUTS = "yprov_inputs"  # JOB_INFO: DataRecords of the inputs there at submission
JOB_OUTPUTS = "yprov_outputs"  # JOB_FINISHED: DataRecords of the outputs
LATE_INPUTS = "yprov_late_inputs"  # JOB_FINISHED: inputs made after submission (by an earlier group member)
LOG_TAIL = "yprov_log_tail"  # JOB_ERROR: the failed attempt's log tail (None: no log)


@dataclass
class _Files:
    inputs: list[str]
    outputs: list[str]
    logs: list[str]
    kinds: dict[str, str] = field(default_factory=dict)  # path → TEMPORARY / PIPE
    hashed: set[str] = field(default_factory=set)  # inputs recorded at submission


class Snapshots:
    """The files of each job between its JOB_INFO and its end event, on the logging thread only."""

    def __init__(self, log_tail_lines: int) -> None:
        self.log_tail_lines = log_tail_lines
        self._jobs: dict[int, _Files] = {}
        # each output as hashed at its JOB_FINISHED, with its stat from before: a consumer that finds the file
        # unchanged since (same inode, size, mtime and ctime, which any write updates) takes the digest
        # rather than reading the bytes again
        self._outputs: dict[str, tuple[tuple[int, ...], DataRecord]] = {}

    def job_info(self, record: logging.LogRecord, job: Any, strip) -> None:
        """Hash the inputs there now; remember which files are temp() or pipe()."""
        jobid = int(record.__dict__["jobid"])
        if job is not None:
            inputs, outputs, logs = _paths(job.input), _paths(job.output), _paths(job.log)
            kinds = {str(f): k for f in (*job.input, *job.output) if (k := _kind(f)) is not None}
            # an input is temp() or pipe() by the flag on the producing job's output
            for dep in (getattr(job.dag, "dependencies", None) or {}).get(job, {}):
                kinds.update({str(f): k for f in dep.output if str(f) in inputs and (k := _kind(f)) is not None})
        else:  # Snakemake's internals changed: what the event says (pipe() is annotated there)
            inputs, outputs, logs = ([strip(f) for f in record.__dict__.get(k) or ()] for k in ("input", "output", "log"))
            kinds = {strip(f): PIPE for k in ("input", "output") for f in record.__dict__.get(k) or ()
                     if str(f).endswith(" (pipe)")}
        files = self._jobs[jobid] = _Files(inputs, outputs, logs, kinds)
        files.hashed = {f for f in inputs if files.kinds.get(f) == PIPE or Path(f).exists()}  # the rest: at the end
        records = [r for f in inputs if f in files.hashed and (r := self._record(f, files)) is not None]
        setattr(record, JOB_INPUTS, records)

    def job_finished(self, record: logging.LogRecord) -> None:
        files = self._jobs.pop(int(record.__dict__["job_id"]), None)
        if files is None:
            return
        outputs = []
        for f in files.outputs:
            signature = _signature(f)  # before the bytes are read: a write while they are changes it
            if (rec := self._record(f, files)) is not None:
                outputs.append(rec)
                if rec.sha256 and signature is not None:
                    self._outputs[f] = (signature, DataRecord(rec.path, rec.sha256, rec.size))
        setattr(record, JOB_OUTPUTS, outputs)
        setattr(record, LATE_INPUTS, [r for f in files.inputs if f not in files.hashed
                                      and (r := self._record(f, files)) is not None])

    def job_error(self, record: logging.LogRecord) -> None:
        files = self._jobs.pop(int(record.__dict__["jobid"]), None)
        logs = files.logs if files is not None else [str(f) for f in record.__dict__.get("log") or ()]
        setattr(record, LOG_TAIL, log_tail(logs, self.log_tail_lines))

    def _record(self, path: str, files: _Files) -> DataRecord | None:
        kind = files.kinds.get(path)
        if kind == PIPE:  # a FIFO: reading it would steal the consumer's bytes; nothing is stored
            return DataRecord(path=str(Path(path).resolve()), sha256="", size=0, kind=PIPE)
        known = self._outputs.get(path)
        if known is not None and _signature(path) == known[0]:
            return DataRecord(known[1].path, known[1].sha256, known[1].size, kind=kind)
        try:
            rec = file_record(Path(path))
        except OSError:
            if kind == TEMPORARY:  # removed inside a group job's own process before this one saw it
                return DataRecord(path=str(Path(path).resolve()), sha256="", size=0, kind=TEMPORARY)
            return None
        rec.kind = kind
        return rec


def _signature(path: str) -> tuple[int, ...] | None:
    """What changes whenever a regular file is written, replaced or touched; None for anything else."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):  # a folder's files can change under an unchanged folder stat
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _paths(io: Any) -> list[str]:
    return [str(f) for f in io]


def _kind(f: Any) -> str | None:
    flags = getattr(f, "flags", None) or {}
    if flags.get("pipe"):
        return PIPE
    if flags.get("temp"):
        return TEMPORARY
    return None
