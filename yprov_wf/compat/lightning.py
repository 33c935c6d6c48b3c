"""yProv4ML's Lightning logger, ``prov4ml.ProvMLLogger()``, as an adapter of ``lightning_yprov.YProvLogger``
(imported only when ``yprov_wf.ProvMLLogger`` is first used: it needs the ``lightning`` extra)."""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.loggers.logger import rank_zero_experiment
    from lightning_yprov.logger import YProvLogger
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"yprov_wf.ProvMLLogger needs Lightning: pip install 'yprov-wf[lightning]' ({exc})") from exc

from yprov_wf import api
from yprov_wf.compat.yprov4ml import warn_ignored
from yprov_wf.recording import current
from yprov_wf.recording.scopes import default_namespace


class ProvMLLogger(YProvLogger):
    """``Trainer(logger=[prov4ml.ProvMLLogger()])``: records into the run already started in this context
    (``start_run`` … ``end_run``, which the user ends), else opens its own run named ``name`` under the open
    workflow's namespace or the default one, and ends it when Lightning finalises the logger."""

    def __init__(self, name: str | None = "lightning_logs", version: Any = None, prefix: str = "",
                 flush_logs_every_n_steps: int = 100, **options: Any) -> None:
        ignored = {}
        if version is not None:
            ignored["version"] = "the ML run's id is its version"
        if prefix:
            ignored["prefix"] = "metric names are recorded as logged"
        if flush_logs_every_n_steps != 100:
            ignored["flush_logs_every_n_steps"] = "start_run's save_after_n_logs sets the flush interval"
        if options.get("namespace") is None:
            wf = api.current_workflow()
            options["namespace"] = wf.namespace if wf is not None else default_namespace()
        super().__init__(name or "lightning_logs", **options)
        self._adopted = False
        warn_ignored("ProvMLLogger", ignored, stacklevel=3)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The run open in this context, else a run of this logger's own (opened on first use)."""
        if self._run is None or self._run.closed:
            run = current.run_var.get()
            if run is not None and not run.closed:
                self._run, self._adopted = run, True
                self.runs.append(run.info)
                return run
            self._adopted = False
        return YProvLogger.experiment.fget(self)

    def finalize(self, status: str) -> None:
        """End the logger's own run; a run the user started is left for their end_run."""
        if not self._adopted:
            super().finalize(status)
