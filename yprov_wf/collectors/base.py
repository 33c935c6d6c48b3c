"""The collector protocol: what a resource collector (built-in or plugin) implements.

A collector is created with no arguments, ``setup()`` once (raise :class:`CollectorUnavailable` when
it cannot run here, e.g. no GPU), ``sample()`` as often as asked (a flat dict of metric name → number),
and ``teardown()`` once at the end of its scope.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class CollectorUnavailable(Exception):
    """Raised by ``setup()`` when a collector cannot work on this machine; the message says why."""


@runtime_checkable
class Collector(Protocol):
    """A source of resource samples, registered in the entry-point group ``yprov_wf.collectors``."""

    name: str

    def setup(self) -> None:
        """Acquire what sampling needs (handles, baselines); raise CollectorUnavailable if impossible."""

    def sample(self) -> dict[str, float]:
        """One reading: metric name → number. Must be quick (it runs beside the training)."""

    def teardown(self) -> None:
        """Release what setup acquired."""
