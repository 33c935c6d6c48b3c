"""The collectors of one ML run: sampled on demand by ``log_system_metrics`` / ``log_carbon_metrics``
(on the caller's thread, set up on first use) and, when an interval is given, by a background sampler.
At the end of the run the sampler is stopped and joined, and why a collector did not sample is
written once on the task (``ywf:<name>Unavailable``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from yprov_wf.collectors.registry import Guarded, collector_names

if TYPE_CHECKING:
    from yprov_wf.collectors.sampler import BackgroundSampler
    from yprov_wf.recording.run import Run

ENERGY = "energy"


def check_interval(interval: Any) -> float | None:
    """A sampling interval in seconds (> 0), or None; ValueError naming a bad value."""
    if interval is None:
        return None
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ValueError(f"system_metrics_interval must be a positive number of seconds, got {interval!r}")
    return float(interval)


def check_names(names: Any) -> tuple[str, ...] | None:
    """Collector names chosen by the user (each must be registered), or None for the default set."""
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"collectors must be a list of collector names, got {names!r}")
    known = collector_names()
    for n in names:
        if n not in known:
            raise ValueError(f"no collector named {n!r} (registered: {', '.join(known)})")
    return tuple(names)


class RunCollectors:
    """On-demand and background collectors of one run."""

    def __init__(self, run: Run, names: tuple[str, ...] | None, energy: bool, country: str | None) -> None:
        self.run = run
        self.names = names
        self.energy = energy
        self.options: dict[str, dict[str, Any]] = {"system": {"disk_path": run.workflow.dir.root,
                                                              "baseline": run.cpu_baseline}}
        if country is not None:
            self.options[ENERGY] = {"country": country}
        self._sync: list[Guarded] | None = None
        self._carbon: Guarded | None = None
        self.sampler: BackgroundSampler | None = None

    def default_names(self, background: bool) -> list[str]:
        """The chosen names, else every registered collector (energy only when energy tracking is on
        for a background sampler: its tracker is the one that costs a start)."""
        if self.names is not None:
            return list(self.names)
        return [n for n in collector_names() if n != ENERGY or (background and self.energy)]

    def sample_now(self, context: Any, step: int | None) -> None:
        """``log_system_metrics``: one sample of every collector but energy, logged at one timestamp."""
        sync = self._sync
        if sync is None:
            sync = self._sync = [Guarded.create(n, self.options.get(n))
                                 for n in self.default_names(False) if n != ENERGY]
        log = self.run.metrics.log
        now = time.time()
        for c in sync:
            if c.unavailable is None and c.collector is not None:
                try:
                    values = c.collector.sample()
                except Exception as exc:
                    c.disable(f"raised {type(exc).__name__}: {exc}")
                    continue
                try:
                    for key, value in values.items():
                        log(key, value, context, step, now)
                except (AttributeError, TypeError, ValueError) as exc:  # a plugin's bad value must not reach the user
                    c.disable(f"returned a bad value: {exc}")

    def carbon_now(self, context: Any, step: int | None) -> None:
        """``log_carbon_metrics``: energy and emissions since the run's first call, and power now."""
        c = self._carbon
        if c is None:
            c = self._carbon = Guarded.create(ENERGY, self.options.get(ENERGY), warn_unavailable=True)
            if c.collector is not None:
                c.collector.wait()  # the first call in a process may wait for the tracker's start
        log = self.run.metrics.log
        now = time.time()
        try:
            for key, value in c.sample().items():
                log(key, value, context, step, now)
        except (TypeError, ValueError) as exc:
            c.disable(f"returned a bad value: {exc}")

    def start_background(self, interval: float) -> None:
        from yprov_wf.collectors.sampler import BackgroundSampler
        from yprov_wf.metrics import MetricStore

        run = self.run
        store = MetricStore(run.workflow.dir.sampler_log(run.run_id), 1 << 30, run.workflow.degrade)
        self.sampler = BackgroundSampler(self.default_names(True), self.options, store, interval,
                                         f"yprov-wf-sampler-{run.run_id}").start()

    def close(self) -> dict[str, str]:
        """Stop and join the sampler, tear the collectors down; returns why collectors did not sample."""
        reasons: dict[str, str] = {}
        if self.sampler is not None:
            self.sampler.stop()
            reasons.update(self.sampler.unavailable)
        for c in [*(self._sync or ()), *([self._carbon] if self._carbon else [])]:
            c.teardown()
            if c.unavailable:
                reasons.setdefault(c.name, c.unavailable)
        return reasons
