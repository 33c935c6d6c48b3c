"""Background sampling (like MLflow's system metrics monitor): a daemon thread samples the collectors
every ``interval`` seconds into a metric store of its own, so the ``log_metric`` hot path shares
nothing with it (no lock, no check). Each sample is flushed to disk at once: a killed process keeps
every sample taken before the kill.

A collector whose ``sample()`` does not return within ``SAMPLE_TIMEOUT_S`` is switched off with one
warning; its call is left running on its own daemon thread (Python cannot kill a thread) and the
sampler goes on with the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from yprov_wf.collectors.registry import Guarded
from yprov_wf.metrics import MetricStore

SAMPLE_TIMEOUT_S = 5.0
SYSTEM_CONTEXT = "system"


class BackgroundSampler:
    """Samples ``collectors`` (names; set up on the sampler thread) every ``interval`` s into ``store``."""

    def __init__(self, names: Sequence[str], options: dict[str, dict[str, Any]], store: MetricStore,
                 interval: float, thread_name: str, context: str = SYSTEM_CONTEXT) -> None:
        self.names = list(names)
        self.options = options
        self.store = store
        self.interval = interval
        self.context = context
        self.collectors: list[Guarded] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)

    def start(self) -> BackgroundSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample, stop the thread and close the store (it is the thread's until then)."""
        if not self._thread.is_alive() and self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.store.close()

    @property
    def unavailable(self) -> dict[str, str]:
        return {c.name: c.unavailable for c in self.collectors if c.unavailable}

    def _loop(self) -> None:
        try:
            for name in self.names:
                if self._stop.is_set() and self.collectors:
                    break
                c = _bounded(lambda n=name: Guarded.create(n, self.options.get(n)), None, f"{name!r} setup")
                if c is None:
                    c = Guarded(name, None)
                    c.disable(f"setup did not return within {SAMPLE_TIMEOUT_S:g} s")
                self.collectors.append(c)
            deadline = time.monotonic() + self.interval
            while not self._stop.wait(max(0.0, deadline - time.monotonic())):
                self._tick()
                deadline += self.interval
                now = time.monotonic()
                if deadline < now:  # a slow tick: skip the missed beats instead of bursting
                    deadline = now + self.interval
            self._tick()  # the state at the end of the scope
        except Exception as exc:  # never let the sampler die noisily; say why once
            from yprov_wf.collectors.registry import warn_once

            warn_once("sampler", f"stopped: {type(exc).__name__}: {exc}")
        finally:
            for c in self.collectors:
                if not (c.unavailable or "").startswith("did not return"):
                    c.teardown()

    def _tick(self) -> None:
        step = self.samples
        now = time.time()
        log = self.store.log
        for c in self.collectors:
            if not c.active:
                continue
            values = _bounded(c.sample, None, f"{c.name!r} sample")
            if values is None:
                c.disable(f"did not return within {SAMPLE_TIMEOUT_S:g} s")
                continue
            for key, value in values.items():
                try:
                    log(key, value, self.context, step, now)
                except (TypeError, ValueError) as exc:
                    c.disable(f"returned a bad value: {exc}")
                    break
        self.store.flush()
        self.samples += 1  # counted once on disk


def _bounded(fn: Callable[[], Any], on_timeout: Any, what: str) -> Any:
    """``fn()`` on a daemon thread, waited for at most SAMPLE_TIMEOUT_S; ``on_timeout`` if it hangs."""
    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(fn()), name=f"yprov-wf-{what}", daemon=True)
    t.start()
    t.join(SAMPLE_TIMEOUT_S)
    return box[0] if box else on_timeout
