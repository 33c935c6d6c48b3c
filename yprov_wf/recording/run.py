"""An ML run (start_run … end_run) inside a task: params, metrics, artifacts, models and datasets."""

from __future__ import annotations

import numbers
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yprov_wf import describe
from yprov_wf.collectors.system import cpu_baseline
from yprov_wf.context import as_context
from yprov_wf.errors import warn_degraded
from yprov_wf.layout import WorkflowDir, digest_path, new_run_id, safe_name, sha256_file
from yprov_wf.metrics import MetricStore, NullMetricStore, finalize_series
from yprov_wf.recording import current
from yprov_wf.recording.copying import copy_in, write_atomically
from yprov_wf.recording.journal import encode
from yprov_wf.recording.params import add_param
from yprov_wf.recording.records import COMPLETED, DataRecord
from yprov_wf.recording.run_records import (
    ArtifactRecord,
    CommandRecord,
    DatasetRecord,
    ModelRecord,
    ModelVersionRecord,
    RunRecord,
    SourceRecord,
)
from yprov_wf.recording.scopes import PathLike, TaskScope
from yprov_wf.timestamps import when
from yprov_wf.values import check_text, clean_text


@dataclass(frozen=True)
class RunInfo:
    """MLflow-style identity of a run (``run.info``)."""

    run_id: str
    experiment_name: str
    task_id: str
    workflow_id: str
    provenance_dir: Path


class Run:
    """One ML run. Use the module-level functions (``yprov_wf.log_metric``…) or this object's methods."""

    def __init__(self, task: TaskScope, experiment: str, *, save_after_n_logs: int = 100, rank: int = 0,
                 world_size: int | None = 1, collect_all_processes: bool = False, owns_task: bool = False,
                 device: str | None = None) -> None:
        self.task = task
        self.workflow = task.workflow
        self.owns_task = owns_task
        self.run_id = new_run_id(experiment)
        self.record = RunRecord(run_id=self.run_id, experiment=experiment, started=time.time(), rank=rank,
                                world_size=world_size, collect_all_processes=collect_all_processes, device=device)
        self._started_perf = time.perf_counter()
        self.cpu_baseline = cpu_baseline()  # the CPU counters when the run started (first log_system_metrics)
        store_cls = MetricStore if (rank == 0 or collect_all_processes) else NullMetricStore
        self.metrics = store_cls(self.workflow.dir.metrics_log(self.run_id), save_after_n_logs,
                                 self.workflow.degrade)
        self._model_sources: dict[int, str] = {}
        self._metric_sources: dict[tuple[str, str | None], str] = {}
        self._flops_epoch: dict[tuple[str, str | None], int] = {}  # FLOPs of the batches since the last epoch total
        self._token = None
        self._collectors: Any = None
        self.closed = False

    @property
    def info(self) -> RunInfo:
        return RunInfo(self.run_id, self.record.experiment, self.task.record.task_id,
                       self.workflow.record.workflow_id, self.workflow.dir.root)

    @property
    def collectors(self) -> Any:
        """The run's resource collectors (``yprov_wf.collectors.run_collectors.RunCollectors``), made on
        first use with the options of start_run, else of its task, else of its workflow."""
        if self._collectors is None:
            from yprov_wf.collectors.run_collectors import RunCollectors

            t = self.task
            self._collectors = RunCollectors(self, t.collectors, t.energy, t.energy_country)
        return self._collectors

    # -- lifecycle -----------------------------------------------------------------------------------
    def open(self, system_metrics_interval: float | None = None) -> Run:
        _warm_up_once()
        self.task.emit("run_opened", encode(self.record))
        self.record = self.task.record.run(self.run_id)  # the instance the journal events update
        self.task.runs.append(self)
        self._token = current.run_var.set(self)
        current.register(self)
        interval = system_metrics_interval or self.task.system_metrics_interval
        if interval and not isinstance(self.metrics, NullMetricStore):
            self.collectors.start_background(interval)
        return self

    def end(self, status: str = COMPLETED, error: str | None = None) -> None:
        """Close the run: finalise its metric file, record its end, and close an implicit task."""
        if self.closed:
            return
        self.closed = True
        error = current.error_record(error) if error is not None else None
        current.unregister(self)
        try:
            current.run_var.reset(self._token)
        except ValueError:
            if current.run_var.get() is self:
                current.run_var.set(None)
        if self._collectors is not None:  # stops and joins the background sampler first
            for name, reason in self._collectors.close().items():
                attribute = f"{name}Unavailable"
                if attribute.isidentifier():
                    self.task.set_attribute(attribute, reason[:500])
        self.metrics.close()
        wdir = self.workflow.dir
        series, metrics_file, finalized = [], None, False
        logs = metric_logs(wdir, self.run_id)
        if self.metrics.points and not isinstance(self.metrics, NullMetricStore) and not logs \
                and not self.workflow.broken:
            self.workflow.drop(f"the {self.metrics.points} metric points of run {self.run_id!r}", FileNotFoundError(
                f"{self.metrics.path} vanished: the provenance folder was deleted or moved during the run"),
                self.task)
        if logs and not self.workflow.broken:
            _wait_for_warm_up()
            try:
                result = finalize_run_metrics(wdir, self.run_id)
            except OSError as exc:  # the storage: off, the logs stay for `recover`
                result = None
                self.workflow.degrade(exc)
            except Exception as exc:
                result = None
                self.workflow.drop(f"the metric series of run {self.run_id!r}", exc, self.task)
            if result is not None:
                (series, metrics_file), finalized = result, True
        for s in series:
            s.source = self._metric_sources.get((s.key, s.context))
        self.task.emit("run_closed", {
            "run_id": self.run_id, "status": status, "ended": time.time(), "error": error,
            "series": [encode(s) for s in series], "metrics_file": encode(metrics_file) if metrics_file else None,
        })
        if finalized and not self.workflow.broken:  # the Parquet is on record: the logs can go
            self.workflow.io(remove_metric_logs, wdir, self.run_id)
        if self.owns_task:
            self.task.close(status, error)

    def close_at_exit(self, status: str, error: str) -> None:
        self.end(status, error)

    def forked(self) -> None:
        """In a fork of the run's process: the parent owns the run; the child's calls record nothing
        (its workflow writes nothing either) and raise nothing."""
        self.metrics.detach()
        self._collectors = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.end(*current.exit_status(exc))

    # -- records -------------------------------------------------------------------------------------
    def log_param(self, key: str, value: Any, context: Any = None) -> None:
        add_param(self.record.params, key, value,
                  lambda p: self.task.emit("param", {"run_id": self.run_id, **encode(p)}), as_context(context))

    def set_metric_source(self, key: str, context: Any, source: str) -> None:
        """Record where the values of series (key, context) come from (a library, a collector, a function)."""
        if not isinstance(source, str) or not source:
            raise TypeError(f"metric {key!r}: source must be a non-empty str, got {source!r}")
        self._metric_sources[(key, as_context(context))] = source[:200]

    def log_metric(self, key: str, value: float, context: Any = None, step: int | None = None,
                   timestamp: float | None = None) -> None:
        self.metrics.log(key, value, context, step, timestamp)

    def log_artifact(self, path: PathLike, context: Any = None, step: int | None = None,
                     timestamp: float | None = None, *, is_input: bool = False,
                     name: str | None = None) -> Path | None:
        """Copy a file or folder into the provenance folder and record it with its sha256. Returns where
        the copy went, or None when it could not be made (warned; the rest of the run is recorded)."""
        at, step = when(timestamp, time.time(), "artifact timestamp"), _step(step)
        src = self._check_source(path)
        ctx = as_context(context)
        label = check_text(name, "artifact name") if name is not None else src.name
        dest = _unique(self.workflow.dir.artifacts(self.run_id) / safe_name(label, "artifact name"))
        result = self._copy_in(f"artifact {label!r}", src, dest)
        if result is None:
            return None
        digest, size = result
        rec = ArtifactRecord(name=label, path=self._relative(dest), sha256=digest, size=size,
                             source=clean_text(str(src)), is_input=is_input, context=ctx, step=step, time=at)
        self.task.emit("artifact", {"run_id": self.run_id, **encode(rec)})
        return dest

    def save_model_version(self, model: Any, model_name: str, context: Any = None, step: int | None = None,
                           timestamp: float | None = None) -> Path | None:
        """Save the model's current weights as the next version of ``model_name`` (a prov:Revision of the
        previous one); a path (e.g. a checkpoint file) is copied as that version. Returns the file written,
        or None when it could not be written (warned; e.g. a model that cannot be pickled)."""
        at = when(timestamp, time.time(), "model version timestamp")
        ctx = as_context(context)
        step = _step(step)
        folder = safe_name(check_text(model_name, "model name"), "model name")
        version = 1 + sum(1 for v in self.record.model_versions if v.model_name == model_name)
        what = f"model version {model_name!r} v{version}"
        if isinstance(model, (str, os.PathLike)):
            src = self._check_source(model)
            if not src.is_file():
                raise ValueError(f"model version file {str(model)!r} is not a file")
            dest = self.workflow.dir.artifacts(self.run_id) / "models" / folder / f"v{version}{src.suffix or '.pt'}"
            result = self._copy_in(what, src, dest)
        else:
            dest = self.workflow.dir.artifacts(self.run_id) / "models" / folder / f"v{version}.pt"
            result = self._save(what, model, dest)
        if result is None:
            return None
        digest, size = result
        rec = ModelVersionRecord(model_name=model_name, version=version, path=self._relative(dest),
                                 sha256=digest, size=size, context=ctx, step=step, time=at)
        self.task.emit("model_version", {"run_id": self.run_id, **encode(rec)})
        self._model_sources[id(model)] = f"{model_name}/{version}"
        return dest

    def log_model(self, model: Any, model_label: str, *, info: bool = True, layers: bool = False) -> Path | None:
        """Save the final model with its parameter count, memory and layer summary (``info``; with
        yProv4ML's training-memory estimate), and with ``layers`` each layer's shapes and dtype; None when
        it could not be written (warned)."""
        label = safe_name(check_text(model_label, "model label"), "model label")
        dest = _unique(self.workflow.dir.artifacts(self.run_id) / "models" / f"{label}.pt")
        summary = describe.model_summary(model)
        if not info:
            summary = {"modelClass": summary["modelClass"]}
        elif "memoryBytes" in summary:  # + fp32 gradient and one fp32 optimiser state per trainable parameter
            summary["trainingMemoryBytes"] = summary["memoryBytes"] + 8 * summary["trainableParameterCount"]
        if layers:
            summary["layerDetails"] = describe.layer_details(model)
        result = self._save(f"model {model_label!r}", model, dest)
        if result is None:
            return None
        digest, size = result
        rec = ModelRecord(label=model_label, path=self._relative(dest), sha256=digest, size=size, time=time.time(),
                          summary=summary, revision_of=self._model_sources.get(id(model)))
        self.task.emit("model", {"run_id": self.run_id, **encode(rec)})
        return dest

    def log_dataset(self, dataset: Any, label: str, context: Any = None) -> None:
        """Record a dataset the run used: a torch Dataset/DataLoader/Subset, an array, a DataFrame or a file."""
        if not isinstance(label, str) or not label:
            raise TypeError(f"dataset label must be a non-empty str, got {label!r}")
        ctx = as_context(context)
        path = sha = None
        if isinstance(dataset, (str, os.PathLike)):
            p = Path(dataset)
            if not p.exists():
                raise FileNotFoundError(f"dataset {label!r}: {p} does not exist")
            sha, size = digest_path(p)
            kind, samples, attrs = ("directory" if p.is_dir() else "file"), None, {"size": size}
            if p.is_dir():
                samples = sum(1 for f in p.rglob("*") if f.is_file())
            path = str(p.resolve())
        else:
            kind, samples, attrs, raw = describe.dataset_description(dataset)
            sha = describe.digest_bytes(raw) if raw is not None else None
        rec = DatasetRecord(label=label, kind=kind, samples=samples, attributes=attrs, context=ctx,
                            time=time.time(), path=path, sha256=sha)
        self.task.emit("dataset", {"run_id": self.run_id, **encode(rec)})

    def log_source_code(self, path: PathLike | list[PathLike] | None = None) -> list[Path]:
        """Copy the running script (or the given files/folders) into the provenance folder with their digests
        and git state; recorded as source code the run used. Returns where the copies went."""
        from yprov_wf.recording import source

        if path is None:
            sources = [source.running_script()]
        else:
            items = path if isinstance(path, (list, tuple)) else [path]
            if not items:
                raise ValueError("log_source_code: an empty list of paths")
            for p in items:
                if not isinstance(p, (str, os.PathLike)):
                    raise TypeError(f"source path must be a str or path, got {type(p).__name__}")
                if not Path(p).exists():
                    raise FileNotFoundError(f"source path {str(p)!r} does not exist")
                source.check_not_installed(Path(p).resolve())
            sources = [self._check_source(p) for p in items]
        for src in sources:
            source.check_not_installed(src)
        dest_dir = self.workflow.dir.artifacts(self.run_id) / "source"
        copies = []
        for src in sources:
            dest = _unique(dest_dir / safe_name(src.name, "source name"))
            what = f"source code {src.name!r}"

            def copy(src: Path = src, dest: Path = dest) -> tuple[int, str, int]:
                counted: list[int] = []
                write_atomically(dest, lambda tmp: counted.append(
                    source.copy_source(src, tmp, self.workflow.dir.root.resolve())))
                return (counted[0], *digest_path(dest))
            copied = self.workflow.record_io(what, self.task, copy)
            if copied is None:
                continue
            files, digest, size = copied
            git = self.workflow.record_io(f"the git state of {what}", self.task, source.git_state, src)
            diff_path = diff_sha = None
            if git is not None and git.diff:
                diff_file = dest.with_name(dest.name + ".git.diff")
                diff = git.diff
                self.workflow.record_io(f"the git diff of {what}", self.task, write_atomically, diff_file,
                                        lambda tmp, diff=diff: tmp.write_bytes(diff))
                if diff_file.exists():
                    diff_path, diff_sha = self._relative(diff_file), sha256_file(diff_file)
            rec = SourceRecord(
                name=dest.name, path=self._relative(dest), sha256=digest, size=size, files=files, source=str(src),
                git_commit=git.commit if git else None, git_branch=git.branch if git else None,
                git_remote=git.remote if git else None, git_dirty=git.dirty if git else None,
                git_diff=diff_path, git_diff_sha256=diff_sha, time=time.time(),
            )
            self.task.emit("source", {"run_id": self.run_id, **encode(rec)})
            copies.append(dest)
        return copies

    def log_execution_command(self) -> CommandRecord:
        """Record this process's command line (secret-looking options redacted), working folder and Python."""
        from yprov_wf.environment import redact_argv

        rec = CommandRecord(argv=redact_argv(sys.argv), cwd=os.getcwd(), executable=sys.executable or "",
                            time=time.time())
        self.task.emit("command", {"run_id": self.run_id, **encode(rec)})
        return rec

    def log_flops_per_batch(self, label: str, model: Any, batch: Any, context: Any = None,
                            step: int | None = None, *, recount: bool = False) -> int:
        """Count ``model``'s forward FLOPs on ``batch``, log them as metric ``label``, add them to the epoch total."""
        from yprov_wf.flops import count_flops

        ctx = as_context(context)
        flops = count_flops(model, batch, recount=recount)
        self.metrics.log(label, flops, ctx, step)
        self._flops_epoch[(label, ctx)] = self._flops_epoch.get((label, ctx), 0) + flops
        return flops

    def log_flops_per_epoch(self, label: str, model: Any = None, dataset: Any = None, context: Any = None,
                            step: int | None = None, *, batch_label: str | None = None,
                            recount: bool = False) -> int:
        """Log an epoch's FLOPs as metric ``label``: counted over ``dataset``'s batches, or (``batch_label=``)
        the sum of the batches logged with log_flops_per_batch(batch_label, …) since the last total."""
        from yprov_wf.flops import count_flops

        ctx = as_context(context)
        if model is not None and dataset is not None and batch_label is None:
            total = sum(count_flops(model, batch, recount=recount) for batch in dataset)
        elif model is None and dataset is None and batch_label is not None:
            total = self._flops_epoch.pop((batch_label, ctx), 0)
        else:
            raise TypeError("log_flops_per_epoch needs a model and a dataset, or batch_label= alone "
                            "(the per-batch series to sum)")
        self.metrics.log(label, total, ctx, step)
        return total

    def log_current_execution_time(self, label: str, context: Any = None, step: int | None = None) -> float:
        """Log the seconds since the run started as metric ``label``; returns them."""
        elapsed = time.perf_counter() - self._started_perf
        self.metrics.log(label, elapsed, context, step)
        return elapsed

    # -- helpers -------------------------------------------------------------------------------------
    def _check_source(self, path: PathLike) -> Path:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"artifact path must be a str or path, got {type(path).__name__}")
        src = Path(path).resolve()
        if not src.exists():
            raise FileNotFoundError(f"artifact {str(path)!r} does not exist")
        if not (src.is_file() or src.is_dir()):
            raise ValueError(f"artifact {str(path)!r} is not a regular file or folder (a FIFO, socket or device)")
        roots = self.workflow.allowed_artifact_roots()
        if not any(src.is_relative_to(r) for r in roots):
            raise ValueError(
                f"artifact {str(path)!r} is outside the allowed folders ({', '.join(map(str, roots))}); "
                "add its folder with artifact_roots= or YPROV_WF_ARTIFACT_ROOTS"
            )
        return src

    def _save(self, what: str, model: Any, dest: Path) -> tuple[str, int] | None:
        """Write a model file atomically and digest it; None (warned, noted) when that fails."""
        def save() -> tuple[str, int]:
            write_atomically(dest, lambda tmp: describe.save_model(model, tmp))
            return digest_path(dest)
        return self.workflow.record_io(what, self.task, save)

    def _copy_in(self, what: str, src: Path, dest: Path) -> tuple[str, int] | None:
        """Copy a file or folder in (see recording/copying.py) and digest the copy; None (warned, noted)
        when the copy fails. What a folder copy left out (links out of it, FIFOs…) is warned about."""
        def copy() -> tuple[str, int, list[str]]:
            left_out = copy_in(src, dest, self.workflow.save_dir)
            return (*digest_path(dest), left_out)
        result = self.workflow.record_io(what, self.task, copy)
        if result is None:
            return None
        digest, size, left_out = result
        if left_out:
            shown = ", ".join(clean_text(p) for p in left_out[:5]) + (" …" if len(left_out) > 5 else "")
            warn_degraded(f"yprov-wf: {what}: {len(left_out)} entries not copied (symlinks leading out of the "
                          f"folder, absolute, dangling or looping links, special files): {shown}", stacklevel=4)
        return digest, size

    def _relative(self, path: Path) -> str:
        return self.workflow.dir.relative(path)


_warmed = threading.Event()


def _warm_up_once() -> None:
    """Import what end_run needs (numpy, pyarrow, prov: ~0.4 s) and what the collectors need on a daemon
    thread while the run trains, so that the first end_run in a process costs what every later one does."""
    if _warmed.is_set():
        return
    _warmed.set()

    def work() -> None:
        import importlib

        try:  # the collector registry (entry points, ~35 ms) and NVML's bindings: log_system_metrics' first call
            from yprov_wf.collectors.registry import collector_names

            collector_names()
            importlib.import_module("pynvml")
        except Exception:
            pass
        for name in ("numpy", "pyarrow", "pyarrow.parquet", "pyarrow.compute",
                     "yprov_wf.prov.mapping"):
            try:
                importlib.import_module(name)
            except Exception:  # end_run will import (and report) it itself
                return

    thread = threading.Thread(target=work, name="yprov-wf-warm-up", daemon=True)
    _warm_up.append(thread)
    thread.start()


_warm_up: list[threading.Thread] = []


def _wait_for_warm_up(timeout: float = 30.0) -> None:
    """end_run imports what the warm-up thread is importing: let it finish first, so that two threads
    never import pyarrow at once (a half-initialised module would fail the Parquet file)."""
    for thread in _warm_up:
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)


def metric_logs(wdir: WorkflowDir, run_id: str) -> list[Path]:
    """The run's append-only metric logs that exist (the hot path's and the sampler's)."""
    return [p for p in (wdir.metrics_log(run_id), wdir.sampler_log(run_id)) if p.exists()]


def finalize_run_metrics(wdir: WorkflowDir, run_id: str) -> tuple[list, DataRecord | None]:
    """Turn the run's metric logs into its Parquet file (written atomically); returns the series
    summaries and the file. The logs stay until the caller has recorded the file (remove_metric_logs),
    so a kill in between leaves them for ``recover`` to convert again."""
    logs = metric_logs(wdir, run_id)
    if not logs:
        return [], None
    target = wdir.metrics_file(run_id)
    series: list = []

    def write(tmp: Path) -> None:
        series.extend(finalize_series(logs, tmp))
        if not series:
            raise _NoPoints
    try:
        write_atomically(target, write)
    except _NoPoints:
        return [], None
    return series, DataRecord(path=wdir.relative(target), sha256=sha256_file(target), size=target.stat().st_size)


class _NoPoints(Exception):
    """The logs held no complete point: no Parquet file is made."""


def remove_metric_logs(wdir: WorkflowDir, run_id: str) -> None:
    for log in metric_logs(wdir, run_id):
        log.unlink(missing_ok=True)


def _unique(dest: Path) -> Path:
    candidate, n = dest, 1
    while candidate.exists():
        n += 1
        candidate = dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
    return candidate


def _step(step: Any) -> int | None:
    if step is None or (type(step) is int and -(1 << 63) <= step < (1 << 63)):
        return step
    if isinstance(step, numbers.Integral) and not isinstance(step, bool) and -(1 << 63) <= int(step) < (1 << 63):
        return int(step)
    raise TypeError(f"step must be an int (int64) or None, got {step!r}")
