"""The ``energy`` collector and per-task energy totals, from codecarbon's OfflineEmissionsTracker
(extra ``yprov-wf[energy]``): energy (kWh), CPU/GPU/RAM power (W) and emissions (kg CO2eq).

The tracker never makes a network call (offline mode, the country is given) and costs ~1.4 s to start,
so it is started once per process, on a background thread, the first time energy tracking is asked
for; tasks and runs read its running totals (~1 ms) and keep the differences.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from yprov_wf.collectors.base import CollectorUnavailable
from yprov_wf.collectors.energy_fields import COUNTRY_ENV, DEFAULT_COUNTRY, check_country

START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Reading:
    """The tracker's running totals since it started, and the last measured power."""

    time: float
    energy_kwh: float
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    emissions_kg: float
    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float


class EnergyMeter:
    """One OfflineEmissionsTracker for this process, started on a daemon thread; readings under a lock."""

    def __init__(self, country: str) -> None:
        self.country = country
        self.pid = os.getpid()
        self.unavailable: str | None = None
        self.tool = "codecarbon"
        self.has_gpu = False
        self.started_at: float | None = None
        self._tracker: Any = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the tracker in the background (idempotent, returns at once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._start, name="yprov-wf-energy-start", daemon=True)
                self._thread.start()

    def _start(self) -> None:
        try:
            import codecarbon
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            tracker = OfflineEmissionsTracker(
                country_iso_code=self.country, save_to_file=False, log_level="error",
                allow_multiple_runs=True, tracking_mode="machine",
            )
            tracker.start()
            if getattr(tracker, "_start_time", None) is None:
                raise RuntimeError("the tracker did not start")
            with self._lock:
                _measure(tracker)  # the first reading loads codecarbon's data (~0.3 s): do it here
            self.has_gpu = bool(tracker.get_detected_hardware().get("gpu_count"))
            self.tool = f"codecarbon {codecarbon.__version__} offline"
            self._tracker = tracker
            self.started_at = time.time()
            atexit.register(self._stop)
        except ImportError as exc:
            self.unavailable = f"codecarbon is not installed (pip install 'yprov-wf[energy]'): {exc}"
        except Exception as exc:
            self.unavailable = f"codecarbon failed to start: {type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def wait(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Wait until the tracker has started (or failed); True when it is usable."""
        self.start()
        self._ready.wait(timeout)
        return self._tracker is not None

    @property
    def ready(self) -> bool:
        return self._tracker is not None

    def reading(self) -> Reading | None:
        """The running totals now, or None while the tracker is still starting (never waits for it)."""
        tracker = self._tracker
        if tracker is None:
            return None
        with self._lock:
            return _measure(tracker)

    def _stop(self) -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is not None:
            try:
                with self._lock:
                    tracker.stop()
            except Exception:
                pass


def _measure(tracker: Any) -> Reading:
    tracker._measure_power_and_energy_if_stale()
    d = tracker._prepare_emissions_data()
    return Reading(time.time(), float(d.energy_consumed), float(d.cpu_energy), float(d.gpu_energy),
                   float(d.ram_energy), float(d.emissions), float(tracker._cpu_power.W),
                   float(tracker._gpu_power.W), float(tracker._ram_power.W))


_meter: EnergyMeter | None = None
_meter_lock = threading.Lock()
_country_warned: set[str] = set()


def energy_meter(country: str | None = None) -> EnergyMeter:
    """This process's meter (created on first use; a forked child gets its own). The country is the
    one given, else YPROV_WF_ENERGY_COUNTRY, else USA; the first one wins, another one asked for
    explicitly later warns once."""
    global _meter
    asked = country or os.environ.get(COUNTRY_ENV)
    wanted = check_country(asked) if asked else None
    with _meter_lock:
        if _meter is None or _meter.pid != os.getpid():
            _meter = EnergyMeter(wanted or DEFAULT_COUNTRY)
        meter = _meter
    if wanted and wanted != meter.country and wanted not in _country_warned:
        _country_warned.add(wanted)
        from yprov_wf.errors import warn_degraded

        warn_degraded(f"yprov-wf: the energy tracker of this process already runs for country "
                      f"{meter.country!r}; {wanted!r} is ignored", stacklevel=3)
    return meter


class EnergyCollector:
    """Energy since setup (kWh, in total and for CPU, GPU, RAM), emissions since setup (kg CO2eq) and
    the last measured power (W). GPU figures only where codecarbon found a GPU."""

    name = "energy"

    def __init__(self, country: str | None = None) -> None:
        self.country = country
        self._meter: EnergyMeter | None = None
        self._base: Reading | None = None

    def setup(self) -> None:
        self._meter = energy_meter(self.country)
        self._meter.start()
        self._base = self._meter.reading()

    def wait(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the tracker is up (used by log_carbon_metrics' first call only)."""
        if self._meter is not None:
            self._meter.wait(timeout)

    def sample(self) -> dict[str, float]:
        meter = self._meter
        now = meter.reading() if meter is not None else None
        if now is None:
            if meter is not None and meter.unavailable:
                raise CollectorUnavailable(meter.unavailable)
            return {}  # still starting: nothing yet, the next sample will have it
        base = self._base
        if base is None:
            base = self._base = _ZERO
        out = {
            "energy_kwh": now.energy_kwh - base.energy_kwh,
            "cpu_energy_kwh": now.cpu_kwh - base.cpu_kwh,
            "ram_energy_kwh": now.ram_kwh - base.ram_kwh,
            "emissions_kg": now.emissions_kg - base.emissions_kg,
            "cpu_power_w": now.cpu_power_w,
            "ram_power_w": now.ram_power_w,
        }
        if meter.has_gpu:
            out["gpu_energy_kwh"] = now.gpu_kwh - base.gpu_kwh
            out["gpu_power_w"] = now.gpu_power_w
        return out

    def teardown(self) -> None:
        self._meter = None  # the tracker is the process's, it keeps running


_ZERO = Reading(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class TaskEnergy:
    """A task's energy window: the reading when it opened and, at close, the totals as attributes."""

    def __init__(self, country: str | None, started: float) -> None:
        self.meter = energy_meter(country)
        self.meter.start()
        self.started = started
        self.start = self.meter.reading()

    def totals(self, ended: float) -> dict[str, Any]:
        """``ywf:`` attributes of the task activity: energy, emissions and duration, or why not."""
        out: dict[str, Any] = {"durationSeconds": round(ended - self.started, 6),
                               "energyCountry": self.meter.country}
        end = self.meter.reading()
        if end is None:
            out["energyUnavailable"] = self.meter.unavailable or "the energy tracker was still starting"
            return out
        start = self.start or _ZERO
        window_start = self.start.time if self.start else (self.meter.started_at or ended)
        out.update({
            "energyKWh": end.energy_kwh - start.energy_kwh,
            "cpuEnergyKWh": end.cpu_kwh - start.cpu_kwh,
            "gpuEnergyKWh": end.gpu_kwh - start.gpu_kwh,
            "ramEnergyKWh": end.ram_kwh - start.ram_kwh,
            "emissionsKgCO2eq": end.emissions_kg - start.emissions_kg,
            "energyMeasuredSeconds": round(max(0.0, end.time - window_start), 6),
            "energyTool": self.meter.tool,
        })
        return out

