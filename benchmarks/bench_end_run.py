"""Fixed costs: import, start_run and end_run of yprov-wf against yProv4ML (and MLflow's import).

end_run is timed on a small run (10 params, 100 metric points; the first end_run of a fresh process
apart from the later ones) and after 1,000,000 points. Run from the repo root inside .venv:
``python benchmarks/bench_end_run.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _anchors import Target, WorkerError, run_python, run_rounds, targets
from _harness import VALUE, Row, emit, median, open_lib, print_table, save_json, worker_spec

SCRIPT = Path(__file__)
MODULES = {"yprov_wf": "yprov_wf", "yprov4ml": "yprov4ml", "mlflow": "mlflow"}

# Runs in a fresh interpreter: times the import alone, then reports RSS and whether torch came along.
_IMPORT_PROBE = """
import sys, time
t0 = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t0
import json
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024
print("BENCH_RESULT " + json.dumps({{"import_s": elapsed, "torch": "torch" in sys.modules, "rss_mb": rss}}))
"""
_EMPTY_PROBE = 'print("BENCH_RESULT {}")'


def _small_run(lib: Any, name: str, save_dir: str) -> tuple[float, float]:
    """start_run, 10 params, 100 points, end_run; returns (start_run s, end_run s)."""
    t0 = time.perf_counter()
    lib.start(name, save_dir)
    started = time.perf_counter() - t0
    for k in range(10):
        lib.module.log_param(f"param_{k}", k * 0.5)
    for i in range(100):
        lib.module.log_metric("loss", VALUE, context=lib.context, step=i)
    t0 = time.perf_counter()
    lib.module.end_run()
    return started, time.perf_counter() - t0


def _worker(spec: dict[str, Any]) -> None:
    lib = open_lib(spec["lib"])
    save_dir = str(Path.cwd() / "prov")
    if spec["mode"] == "fixed":
        times = [_small_run(lib, f"fixed_{r}", save_dir) for r in range(spec["runs"])]
        emit({"version": lib.version, "start_run_s": [s for s, _ in times], "end_run_s": [e for _, e in times]})
        return
    _small_run(lib, "warmup", save_dir)  # first-call costs (lazy imports) are measured by "fixed"
    lib.start("big", save_dir)
    log, ctx = lib.module.log_metric, lib.context
    t0 = time.perf_counter()
    for i in range(spec["points"]):
        log("loss", VALUE, context=ctx, step=i)
    logged = time.perf_counter() - t0
    t0 = time.perf_counter()
    lib.module.end_run()
    emit({"version": lib.version, "log_us": logged / spec["points"] * 1e6, "end_run_s": time.perf_counter() - t0})


def _imports(tgts: list[Target], repeats: int) -> dict[str, dict[str, list[Any]]]:
    """Fresh-process import time (in-process and process wall), RSS and torch, per target."""
    out: dict[str, dict[str, list[Any]]] = {
        t.lib: {"import_s": [], "wall_s": [], "empty_wall_s": [], "rss_mb": [], "torch": []} for t in tgts
    }
    for _ in range(repeats):
        for target in tgts:
            t0 = time.perf_counter()
            run_python(target, ["-c", _EMPTY_PROBE])
            out[target.lib]["empty_wall_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            try:
                res = run_python(target, ["-c", _IMPORT_PROBE.format(module=MODULES[target.lib])])
            except WorkerError as exc:
                print(f"import {target.label} FAILED:\n{exc}", flush=True)
                continue
            out[target.lib]["wall_s"].append(time.perf_counter() - t0)
            for key in ("import_s", "rss_mb", "torch"):
                out[target.lib][key].append(res[key])
    return out


def _ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


def _report(
    imports: dict[str, dict[str, list[Any]]],
    fixed: dict[str, list[dict[str, Any]]],
    big: dict[str, list[dict[str, Any]]],
    points: int,
) -> dict[str, dict[str, float]]:
    """Print the tables; return {table title: {library: median}} for the JSON file."""
    libs = list(imports)

    def ours_of(rows: dict[str, list[float]]) -> float | None:
        return median(rows["yprov_wf"]) if rows.get("yprov_wf") else None

    summary: dict[str, dict[str, float]] = {}

    def table(title: str, unit: str, series: dict[str, list[float]]) -> None:
        rows = [Row(lib, values, ours_of(series)) for lib, values in series.items() if values]
        if rows:
            print_table(title, unit, rows)
            summary[f"{title} ({unit})"] = {row.name: row.value for row in rows}

    first = {lib: [run["end_run_s"][0] for run in runs] for lib, runs in fixed.items()}
    later = {lib: [e for run in runs for e in run["end_run_s"][1:]] for lib, runs in fixed.items()}
    starts = {lib: [s for run in runs for s in run["start_run_s"]] for lib, runs in fixed.items()}
    table("import, timed inside a fresh process", "ms", {lib: _ms(imports[lib]["import_s"]) for lib in libs})
    table("python -c 'import X', process wall time", "ms", {lib: _ms(imports[lib]["wall_s"]) for lib in libs})
    table(
        "python -c 'pass', process wall time (same interpreter)",
        "ms",
        {lib: _ms(imports[lib]["empty_wall_s"]) for lib in libs},
    )
    table("RSS after import", "MB", {lib: imports[lib]["rss_mb"] for lib in libs})
    table("start_run (run with 10 params, 100 points)", "ms", {lib: _ms(v) for lib, v in starts.items()})
    table("end_run, first in a fresh process", "ms", {lib: _ms(v) for lib, v in first.items()})
    table("end_run, later runs in the same process", "ms", {lib: _ms(v) for lib, v in later.items()})
    table(
        f"end_run after {points:,} points",
        "ms",
        {lib: _ms([r["end_run_s"] for r in runs]) for lib, runs in big.items()},
    )
    print("\ntorch in sys.modules after import: " + ", ".join(f"{lib}={any(imports[lib]['torch'])}" for lib in libs))
    for lib, runs in fixed.items():
        ends = runs[0]["end_run_s"] if runs else []
        if len(ends) > 2:
            print(
                f"{lib}: end_run in one process, run 2 vs last run: {ends[1] * 1000:.1f} ms -> {ends[-1] * 1000:.1f} ms"
            )
    return summary


def main() -> None:
    spec = worker_spec(sys.argv)
    if spec is not None:
        _worker(spec)
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs and 100,000 points (smoke run)")
    parser.add_argument("--json", metavar="FILE", help="save the results as JSON")
    args = parser.parse_args()
    imports_n, procs, runs, big_n, points = (2, 2, 5, 1, 100_000) if args.quick else (5, 3, 20, 3, 1_000_000)
    print(
        f"end_run: import x{imports_n}, {procs} processes x {runs} small runs, {big_n} x {points:,} points, "
        f"Python {platform.python_version()}"
    )
    tgts = targets(["yprov4ml", "mlflow"])
    imports = _imports(tgts, imports_n)
    yprov = [t for t in tgts if t.lib != "mlflow"]
    fixed = run_rounds(SCRIPT, [(t.lib, t, {"mode": "fixed", "runs": runs}) for t in yprov], procs, "fixed")
    big = run_rounds(SCRIPT, [(t.lib, t, {"mode": "big", "points": points}) for t in yprov], big_n, "big")
    summary = _report(imports, fixed, big, points)
    save_json(args.json, {"imports": imports, "fixed": fixed, "big": big, "medians": summary})


if __name__ == "__main__":
    main()
