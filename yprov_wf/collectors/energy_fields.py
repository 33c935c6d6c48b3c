"""Energy as the recording core sees it, without measuring anything: the switches that turn tracking on
(an option or ``YPROV_WF_ENERGY``, the grid's country) and the workflow totals summed from its tasks'
figures. Importing it loads neither codecarbon nor the meter (:mod:`yprov_wf.collectors.energy`), which
only a run that tracks energy needs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_COUNTRY = "USA"
COUNTRY_ENV = "YPROV_WF_ENERGY_COUNTRY"
ENERGY_ENV = "YPROV_WF_ENERGY"
_COUNTRY = re.compile(r"^[A-Z]{3}$")

# Task and workflow attributes (ywf:<name>) that carry energy totals; summed from tasks to the workflow.
SUMMED = ("energyKWh", "cpuEnergyKWh", "gpuEnergyKWh", "ramEnergyKWh", "emissionsKgCO2eq")


def check_country(country: str) -> str:
    """An ISO 3166-1 alpha-3 country code (upper case); ValueError naming the value otherwise."""
    if not isinstance(country, str) or not _COUNTRY.match(country.upper()):
        raise ValueError(f"energy country {country!r} must be a 3-letter ISO 3166-1 code such as 'FRA' or 'USA'")
    return country.upper()


def energy_enabled(option: bool | None) -> bool:
    """An explicit option, else the environment variable YPROV_WF_ENERGY (1/true/yes)."""
    if option is not None:
        if not isinstance(option, bool):
            raise TypeError(f"energy must be a bool or None, got {option!r}")
        return option
    return os.environ.get(ENERGY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def rollup(tasks: Iterable[Mapping[str, Any]], started: float, ended: float | None) -> dict[str, Any]:
    """Workflow totals from its tasks' attributes: summed energy and emissions, summed task durations
    and the workflow's wall time. Empty when no task carried energy figures."""
    measured = [t for t in tasks if "energyKWh" in t]
    if not measured:
        return {}
    out: dict[str, Any] = {name: float(sum(t.get(name, 0.0) for t in measured)) for name in SUMMED}
    out["taskDurationSeconds"] = float(sum(t.get("durationSeconds", 0.0) for t in measured))
    out["energyTaskCount"] = len(measured)
    if ended is not None:
        out["durationSeconds"] = round(ended - started, 6)
    return out
