"""``YProvLogger``: a Lightning logger that records hyperparameters, every ``self.log(...)`` metric with
its step and context, and every checkpoint as a model version, into a yprov-wf ML run.

The ML run opens on first use, inside the task open in this context (else as a workflow of one task),
and ends when Lightning finalises the logger (the end of ``fit``/``validate``/``test``); a later
``trainer.test(...)`` with the same logger records a second ML run in the same task.

Context of a metric: the first word of its name (``train``/``training`` → training, ``val``/``valid``/
``validation`` → validation, ``test``/``testing`` → testing, ``predict``/``prediction`` → prediction,
words split at ``/``, ``_``, ``.``, ``-``, case-insensitive); a name without such a word takes the
stage Lightning is running (fit → training, validation and sanity check → validation, test, predict).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict, _sanitize_callable_params
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

import yprov_wf as yp

_WORD = re.compile(r"[/_.\-]")
_PREFIXES = {
    "train": yp.Context.TRAINING, "training": yp.Context.TRAINING,
    "val": yp.Context.VALIDATION, "valid": yp.Context.VALIDATION, "validation": yp.Context.VALIDATION,
    "test": yp.Context.TESTING, "testing": yp.Context.TESTING,
    "predict": yp.Context("prediction"), "prediction": yp.Context("prediction"),
}
_STAGES = {
    "train": yp.Context.TRAINING, "validate": yp.Context.VALIDATION, "sanity_check": yp.Context.VALIDATION,
    "test": yp.Context.TESTING, "predict": yp.Context("prediction"),
}
_UNKNOWN = object()
_STATUS = {"success": "completed", "failed": "failed", "finished": "interrupted"}


def context_for(name: str, stage: str | None = None) -> yp.Context | None:
    """The context of metric ``name``: from its first word, else from Lightning's stage, else None."""
    first = _WORD.split(name, maxsplit=1)[0].lower()
    if first in _PREFIXES:
        return _PREFIXES[first]
    return _STAGES.get(stage) if stage is not None else None


class YProvLogger(Logger):
    """Lightning logger writing W3C PROV through yprov-wf.

    Args:
        experiment_name: the ML run's experiment name (Lightning's logger ``name``).
        namespace: the PROV namespace; defaults to the open workflow's, else ``YPROV_WF_NAMESPACE``.
        provenance_save_dir: where a run with no task around it writes (a workflow of one task).
        model_name: the model name checkpoints are recorded under, as versions v1, v2, …
        save_dir: where Lightning writes its own checkpoints (None: the Trainer's ``default_root_dir``).
    """

    def __init__(self, experiment_name: str = "lightning", *, namespace: str | None = None,
                 provenance_save_dir: str | os.PathLike | None = None, model_name: str = "checkpoint",
                 save_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        if not isinstance(experiment_name, str) or not experiment_name.strip():
            raise ValueError(f"experiment_name must be a non-empty str, got {experiment_name!r}")
        if not isinstance(model_name, str) or not model_name.strip():
            raise ValueError(f"model_name must be a non-empty str, got {model_name!r}")
        self._experiment_name = experiment_name
        self._namespace = namespace
        self._provenance_save_dir = provenance_save_dir
        self._model_name = model_name
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._run: yp.Run | None = None
        self._last_step: int | None = None
        self._saved: set[tuple[str, float, int]] = set()
        self._warned = False
        self.runs: list[yp.RunInfo] = []  # every ML run this logger recorded, in order

    # -- Logger interface ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._experiment_name

    @property
    def version(self) -> str:
        """The current ML run's id (opens the run)."""
        run = self.experiment
        return run.run_id if isinstance(run, yp.Run) else "rank-not-zero"

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> yp.Run:
        """The yprov-wf ML run, opened on first use inside the current task."""
        if self._run is None or self._run.closed:
            namespace = self._namespace
            if namespace is None:
                wf = yp.current_workflow()
                namespace = wf.namespace if wf is not None else os.environ.get("YPROV_WF_NAMESPACE")
            if namespace is None:
                raise ValueError("YProvLogger needs namespace= (or YPROV_WF_NAMESPACE) outside a yprov-wf workflow")
            self._run = yp.start_run(prov_user_namespace=namespace, experiment_name=self._experiment_name,
                                     provenance_save_dir=self._provenance_save_dir)
            self._saved.clear()
            self.runs.append(self._run.info)
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Record hyperparameters as params of the run (nested dicts flattened with '/')."""
        flat = _flatten_dict(_sanitize_callable_params(_convert_params(params)))
        run = self.experiment
        for key, value in flat.items():
            run.log_param(str(key), value)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record each metric at ``step`` with its context (see the module docstring for the rule)."""
        run = self.experiment
        if step is not None:
            self._last_step = int(step)
        stage: Any = _UNKNOWN
        for key, value in metrics.items():
            if hasattr(value, "item"):
                value = value.item()
            context = context_for(key)
            if context is None:
                if stage is _UNKNOWN:  # looked up once per call, only for names without a context word
                    stage = _stage(_find_trainer())
                context = context_for(key, stage)
            run.log_metric(key, value, context, step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Copy the checkpoint just written into the provenance folder as the next model version."""
        path = (getattr(checkpoint_callback, "_last_checkpoint_saved", "")
                or getattr(checkpoint_callback, "last_model_path", "")
                or getattr(checkpoint_callback, "best_model_path", ""))
        if not path or not os.path.isfile(path):
            return
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime, stat.st_size)
        if key in self._saved:  # the same file announced twice
            return
        self._saved.add(key)
        trainer = _find_trainer()
        step = int(trainer.global_step) if trainer is not None else self._last_step
        try:
            self.experiment.save_model_version(path, self._model_name, yp.Context.TRAINING, step)
        except ValueError as exc:  # e.g. a checkpoint folder outside the allowed artifact roots
            if not self._warned:
                self._warned = True
                warnings.warn(f"yprov-wf: checkpoint {path} not recorded: {exc}", yp.ProvenanceWarning,
                              stacklevel=2)

    @rank_zero_only
    def save(self) -> None:
        """Nothing to do: metric points are buffered and flushed by yprov-wf itself."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the ML run (completed, failed or interrupted) and write its records."""
        if self._run is not None and not self._run.closed:
            self._run.end(_STATUS.get(status, "completed"),
                          None if status == "success" else f"Lightning finished with status {status!r}")


def _find_trainer() -> Any:
    """The Trainer that is calling the logger, found in the calling frames (Lightning passes it to no
    logger hook); None if there is none within a few frames."""
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return None
        local = frame.f_locals
        trainer = local.get("trainer")
        if trainer is None:
            trainer = getattr(local.get("self"), "trainer", None)
        if trainer is not None and hasattr(trainer, "state") and hasattr(trainer, "global_step"):
            return trainer
        frame = frame.f_back
    return None


def _stage(trainer: Any) -> str | None:
    stage = getattr(getattr(trainer, "state", None), "stage", None)
    return None if stage is None else str(getattr(stage, "value", stage))
