"""Finding collectors through the entry-point group ``yprov_wf.collectors`` (the built-ins use the same
door, see pyproject.toml) and running them so that a failing one is switched off with one warning."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from yprov_wf.collectors.base import Collector, CollectorUnavailable
from yprov_wf.errors import warn_degraded

GROUP = "yprov_wf.collectors"
# Used only when this package runs from a source tree that was never installed (no entry points).
_BUILTIN = {
    "system": "yprov_wf.collectors.system:SystemCollector",
    "gpu": "yprov_wf.collectors.gpu:GpuCollector",
    "energy": "yprov_wf.collectors.energy:EnergyCollector",
}
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


@cache
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def collector_names() -> list[str]:
    """Every registered collector name (built-ins and plugins), sorted."""
    return sorted(set(_entry_points()) | set(_BUILTIN))


def refresh() -> None:
    """Forget the cached entry points (after installing a plugin in a running process)."""
    _entry_points.cache_clear()


def collector_factory(name: str) -> Callable[[], Collector]:
    """The class (or factory) registered under ``name``; ValueError naming it when none is."""
    ep = _entry_points().get(name)
    if ep is not None:
        return ep.load()
    if name in _BUILTIN:
        import importlib

        module, _, attr = _BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    raise ValueError(f"no collector named {name!r} (registered: {', '.join(collector_names())})")


def warn_once(name: str, message: str) -> None:
    """One ProvenanceWarning per (collector, message) in this process."""
    with _warned_lock:
        if (name, message) in _warned:
            return
        _warned.add((name, message))
    warn_degraded(f"yprov-wf: collector {name!r} {message}; it is switched off, your code goes on", stacklevel=4)


class Guarded:
    """A collector that is switched off (with one warning) the first time it raises or hangs.

    ``unavailable`` holds why it does not sample (CollectorUnavailable from setup, an error, a hang);
    an unavailable collector's series are absent, never zeros.
    """

    __slots__ = ("name", "collector", "unavailable", "_torn_down")

    def __init__(self, name: str, collector: Collector | None, unavailable: str | None = None) -> None:
        self.name = name
        self.collector = collector
        self.unavailable = unavailable
        self._torn_down = False

    @classmethod
    def create(cls, name: str, options: dict[str, Any] | None = None, *, warn_unavailable: bool = False) -> Guarded:
        """Instantiate (with ``options`` as keyword arguments, built-ins only) and set up the collector
        ``name``. CollectorUnavailable is recorded (no warning unless asked); any other error switches
        it off with a warning."""
        try:
            factory = collector_factory(name)
            collector = factory(**options) if options else factory()
            collector.setup()
        except CollectorUnavailable as exc:
            if warn_unavailable:
                warn_once(name, f"is unavailable ({exc})")
            return cls(name, None, str(exc) or type(exc).__name__)
        except Exception as exc:
            reason = f"setup failed: {type(exc).__name__}: {exc}"
            warn_once(name, reason)
            return cls(name, None, reason)
        return cls(name, collector)

    @property
    def active(self) -> bool:
        return self.collector is not None and self.unavailable is None

    def sample(self) -> dict[str, float]:
        """The collector's sample, or {} once it has failed (the failure warns once and disables it)."""
        c = self.collector
        if c is None or self.unavailable is not None:
            return {}
        try:
            out = c.sample()
            if not isinstance(out, dict):
                raise TypeError(f"sample() returned {type(out).__name__}, not a dict")
            return out
        except Exception as exc:
            self.disable(f"raised {type(exc).__name__}: {exc}")
            return {}

    def disable(self, reason: str) -> None:
        if self.unavailable is None:
            self.unavailable = reason
            warn_once(self.name, reason)

    def teardown(self) -> None:
        if self._torn_down or self.collector is None:
            return
        self._torn_down = True
        try:
            self.collector.teardown()
        except Exception as exc:
            warn_once(self.name, f"teardown raised {type(exc).__name__}: {exc}")
