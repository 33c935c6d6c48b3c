"""Shared pieces of the benchmarks: library adapters and RSS for workers, tables and JSON for mains.

Standard library only: workers import this module inside the anchors' venvs too.
"""

from __future__ import annotations

import json
import statistics
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULT_TAG = "BENCH_RESULT "
VALUE = 0.123456789  # a realistic float (its repr costs what a loss value costs)


@dataclass
class Lib:
    """A yProv-style library as the workers drive it."""

    name: str
    version: str
    module: Any
    context: Any
    start: Callable[[str, str], None]  # (experiment_name, provenance_save_dir)


def open_lib(name: str) -> Lib:
    """Import ``yprov_wf`` or ``yprov4ml`` (inside a worker) and wrap its start_run."""
    if name == "yprov_wf":
        import yprov_wf as yp

        def start(exp: str, save_dir: str) -> None:
            yp.start_run(
                prov_user_namespace="https://example.org/",
                experiment_name=exp,
                provenance_save_dir=save_dir,
                save_after_n_logs=100,
            )

        return Lib(name, _version("yprov-wf", yp), yp, yp.Context.TRAINING, start)
    if name == "yprov4ml":
        import yprov4ml

        def start4ml(exp: str, save_dir: str) -> None:
            yprov4ml.start_run(
                prov_user_namespace="www.example.org",
                experiment_name=exp,
                provenance_save_dir=save_dir,
                save_after_n_logs=100,
            )

        # Context was removed in yProv4ML 3.x; the context is then a plain string.
        ctx = yprov4ml.Context.TRAINING if hasattr(yprov4ml, "Context") else "training"
        return Lib(name, _version("yprov4ml", yprov4ml), yprov4ml, ctx, start4ml)
    raise ValueError(f"unknown library {name!r}")


def _version(dist: str, module: Any) -> str:
    """Installed version of a distribution, else the module's __version__, else '?'."""
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


def rss_mb(field: str = "VmRSS") -> float:
    """Resident set size in MB: current (VmRSS) or peak (VmHWM) from /proc, else psutil's current."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


_WARNINGS: list[str] = []


def _collect_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    text = f"{category.__name__}: {message}"[:300]
    if text not in _WARNINGS:
        _WARNINGS.append(text)


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result (with the warnings it saw) as the one line the main process reads."""
    if _WARNINGS:
        result = {**result, "warnings": _WARNINGS[:5]}
    print(RESULT_TAG + json.dumps(result), flush=True)


def worker_spec(argv: list[str]) -> dict[str, Any] | None:
    """The JSON spec when the script was started as ``--worker SPEC`` (warnings then collected)."""
    if len(argv) == 3 and argv[1] == "--worker":
        warnings.showwarning = _collect_warning
        spec: dict[str, Any] = json.loads(argv[2])
        return spec
    return None


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


@dataclass
class Row:
    """One table line: a figure, its spread over repeats, and the figure of ours it compares to."""

    name: str
    values: list[float]
    ours: float | None = None

    @property
    def value(self) -> float:
        return median(self.values)


def print_table(title: str, unit: str, rows: list[Row]) -> None:
    """Print name | median | min-max | ratio (this figure divided by ours; >1 means ours is lower)."""
    width = max([len(r.name) for r in rows] + [9])
    print(f"\n{title}")
    head = f"{'name':<{width}} | {unit:>12} | {'min-max over repeats':>22} | ratio vs ours"
    print(head)
    print("-" * len(head))
    for row in rows:
        spread = f"{_fmt(min(row.values))}-{_fmt(max(row.values))}" if len(row.values) > 1 else ""
        ratio = _ratio(row.value / row.ours) if row.ours else "n/a"
        print(f"{row.name:<{width}} | {_fmt(row.value):>12} | {spread:>22} | {ratio}")
    sys.stdout.flush()


def _ratio(r: float) -> str:
    """Two decimals, or three significant digits for ratios far below 1."""
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3g}x"


def _fmt(x: float) -> str:
    """Three significant digits, without switching to exponents for ordinary sizes."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def save_json(path: str | None, payload: dict[str, Any]) -> None:
    """Write the results to ``path`` when --json was given."""
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nresults saved to {path}")
