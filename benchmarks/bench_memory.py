"""Resident memory growth while logging many points: yprov-wf (10,000,000) against yProv4ML.

Growth = RSS after the last log_metric minus RSS right after start_run (before end_run), one key,
context TRAINING, step=i, save_after_n_logs=100. Run from the repo root inside .venv:
``python benchmarks/bench_memory.py [--quick] [--points N] [--anchor-points N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _anchors import WorkerError, run_worker, targets
from _harness import VALUE, Row, emit, open_lib, print_table, rss_mb, save_json, worker_spec

SCRIPT = Path(__file__)
_TABLES = (  # (result key, table title, unit)
    ("growth_mb", "RSS growth from after start_run to after the last log_metric", "MB"),
    ("rss_after_start_mb", "RSS after start_run", "MB"),
    ("peak_before_end_mb", "peak RSS before end_run (VmHWM)", "MB"),
    ("peak_after_end_mb", "peak RSS including end_run (VmHWM)", "MB"),
    ("rss_after_end_mb", "RSS after end_run", "MB"),
    ("log_us", "log_metric per call during this run", "µs"),
    ("end_run_s", "end_run after all points", "s"),
)


def _worker(spec: dict[str, Any]) -> None:
    lib = open_lib(spec["lib"])
    points = spec["points"]
    rss_import = rss_mb()
    lib.start("memory", str(Path.cwd() / "prov"))
    gc.collect()
    rss_start = rss_mb()
    log, ctx = lib.module.log_metric, lib.context
    chunk, curve = points // 10, []
    t0 = time.perf_counter()
    for c in range(10):  # RSS sampled after each tenth, to tell steady growth from a plateau
        for i in range(c * chunk, points if c == 9 else (c + 1) * chunk):
            log("loss", VALUE, context=ctx, step=i)
        curve.append(rss_mb() - rss_start)
    logged = time.perf_counter() - t0
    rss_logged, peak_logged = rss_mb(), rss_mb("VmHWM")
    t0 = time.perf_counter()
    lib.module.end_run()
    ended = time.perf_counter() - t0
    emit(
        {
            "version": lib.version,
            "points": points,
            "rss_after_import_mb": rss_import,
            "rss_after_start_mb": rss_start,
            "rss_after_logs_mb": rss_logged,
            "rss_after_end_mb": rss_mb(),
            "peak_before_end_mb": peak_logged,
            "peak_after_end_mb": rss_mb("VmHWM"),
            "growth_mb": rss_logged - rss_start,
            "growth_curve_mb": curve,
            "bytes_per_point": (rss_logged - rss_start) * 2**20 / points,
            "log_us": logged / points * 1e6,
            "end_run_s": ended,
        }
    )


def main() -> None:
    spec = worker_spec(sys.argv)
    if spec is not None:
        _worker(spec)
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10x fewer points (smoke run)")
    parser.add_argument("--points", type=int, default=10_000_000, help="points logged through ours")
    parser.add_argument("--anchor-points", type=int, default=10_000_000, help="points logged through yProv4ML")
    parser.add_argument("--json", metavar="FILE", help="save the results as JSON")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    points = {"yprov_wf": args.points // scale, "yprov4ml": args.anchor_points // scale}
    print(
        f"memory: Python {platform.python_version()}, points: " + ", ".join(f"{lib} {n:,}" for lib, n in points.items())
    )
    results: dict[str, dict[str, Any]] = {}
    for target in targets(["yprov4ml"]):
        t0 = time.perf_counter()
        try:
            results[target.lib] = run_worker(SCRIPT, target, {"points": points[target.lib]})
        except WorkerError as exc:
            print(f"{target.label} FAILED:\n{exc}", flush=True)
            continue
        print(f"{target.label}: {time.perf_counter() - t0:.1f} s", flush=True)
    ours = results.get("yprov_wf", {})
    for metric, title, unit in _TABLES:
        rows = [
            Row(f"{lib} {res['version']} ({res['points']:,} points)", [res[metric]], ours.get(metric))
            for lib, res in results.items()
        ]
        print_table(title, unit, rows)
    print("\nRSS growth after each tenth of the points (MB):")
    for lib, res in results.items():
        print(f"  {lib}: " + " ".join(f"{mb:.1f}" for mb in res["growth_curve_mb"]))
    save_json(args.json, {"points": points, "results": results})


if __name__ == "__main__":
    main()
