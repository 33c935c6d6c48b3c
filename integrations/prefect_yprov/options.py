"""The provenance options the decorators take on top of Prefect's own arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from yprov_wf.prov.vocabulary import check_namespace

OPTION_NAMES = ("save_dir", "namespace", "record_values", "system_metrics_interval", "energy")


def take_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the provenance options present in a decorator's keyword arguments."""
    return {k: kwargs.pop(k) for k in OPTION_NAMES if k in kwargs}


@dataclass(frozen=True, slots=True)
class ProvOptions:
    """Where and how a flow or task records provenance.

    ``save_dir`` and ``namespace`` default to ``YPROV_WF_SAVE_DIR`` / ``YPROV_WF_NAMESPACE`` (then ``prov``
    and a placeholder namespace); a task without its own takes its flow's. ``record_values=False`` skips
    digesting arguments and results (for huge in-memory values whose sha256 is too costly).
    """

    save_dir: Path | None = None
    namespace: str | None = None
    record_values: bool | None = None  # None: inherit (default True)
    system_metrics_interval: float | None = None  # background system sampling of the ML runs, seconds
    energy: bool | None = None  # codecarbon energy and emission totals per task and flow run

    @property
    def digests_values(self) -> bool:
        return self.record_values is not False

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> ProvOptions:
        """Take the provenance options out of a decorator's keyword arguments, checking each."""
        save_dir = kwargs.pop("save_dir", None)
        namespace = kwargs.pop("namespace", None)
        record_values = kwargs.pop("record_values", None)
        interval = kwargs.pop("system_metrics_interval", None)
        energy = kwargs.pop("energy", None)
        if save_dir is not None and not isinstance(save_dir, (str, os.PathLike)):
            raise TypeError(f"save_dir must be a str or path, got {type(save_dir).__name__}")
        if namespace is not None:
            namespace = check_namespace(namespace)
        if record_values is not None and not isinstance(record_values, bool):
            raise TypeError(f"record_values must be a bool, got {record_values!r}")
        if energy is not None and not isinstance(energy, bool):
            raise TypeError(f"energy must be a bool, got {energy!r}")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))
                                     or not interval > 0):
            raise ValueError(f"system_metrics_interval must be a positive number of seconds, got {interval!r}")
        return cls(Path(save_dir) if save_dir is not None else None, namespace, record_values, interval, energy)

    def merged(self, other: ProvOptions | None) -> ProvOptions:
        """These options, with unset ones taken from ``other`` (e.g. a task's from its flow's)."""
        if other is None:
            return self
        return ProvOptions(*(getattr(self, f.name) if getattr(self, f.name) is not None else getattr(other, f.name)
                             for f in fields(self)))

    def as_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
