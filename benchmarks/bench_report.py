"""The HTML report of a workflow with 1,000,000 metric points: `yprov-wf report` wall time in a fresh
process (target: at most 3 s) against drawing the same charts with plain matplotlib as PNG files (every
point, Agg backend, reading the same Parquet files), measured in the same run.

yProv4ML has no report at all; matplotlib PNG is what its users write by hand. The workflow: 4 tasks,
one ML run each, 250,000 points per run (loss@training 220,000; loss@validation, acc@validation 12,500
each; cpu_usage, process_rss_mb 2,500 each). Run from the repo root inside .venv:
``python benchmarks/bench_report.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Row, median, print_table, save_json

ROOT = Path(__file__).resolve().parent.parent
NS = "https://example.org/bench/"

# Same charts as the report: per run, one chart per metric key (a line per context) over steps, and one
# per system series over time; every point drawn, saved as PNG.
_MATPLOTLIB = r"""
import sys, time
t0 = time.perf_counter()
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyarrow.parquet as pq
out = Path(sys.argv[2]); out.mkdir(exist_ok=True)
n = 0
for f in sorted(Path(sys.argv[1]).glob("**/metrics/*.parquet")):
    t = pq.read_table(f)
    keys = t.column("key").to_numpy(zero_copy_only=False)
    ctxs = t.column("context").to_numpy(zero_copy_only=False)
    steps = t.column("step").to_numpy(); vals = t.column("value").to_numpy()
    times = t.column("timestamp").cast("int64").to_numpy() / 1e6
    for key in dict.fromkeys(keys.tolist()):
        sel = keys == key
        fig, ax = plt.subplots(figsize=(4.6, 2.6), dpi=100)
        system = key in ("cpu_usage", "process_rss_mb")
        for ctx in dict.fromkeys(ctxs[sel].tolist()):
            s = sel & (ctxs == ctx) if ctx is not None else sel & np.array([c is None for c in ctxs])
            x = times[s] - times[s].min() if system else steps[s]
            ax.plot(x, vals[s], label=str(ctx), linewidth=1)
        ax.set_title(key); ax.legend()
        fig.savefig(out / f"{f.stem}-{key}.png"); plt.close(fig); n += 1
print("CHARTS", n, time.perf_counter() - t0)
"""


def build_workflow(save_dir: Path, points_per_run: int, runs: int = 4) -> Path:
    """A workflow of ``runs`` tasks with one ML run each, ``points_per_run`` points per run."""
    import math

    import yprov_wf as yp

    val = points_per_run // 20
    sysn = points_per_run // 100
    train = points_per_run - 2 * val - 2 * sysn
    with yp.workflow("bench", namespace=NS, save_dir=save_dir):
        for r in range(runs):
            lr = 10 ** -(r + 1)
            with yp.task("train", params={"lr": lr}):
                yp.start_run(NS, "mlp")
                yp.log_param("lr", lr)
                log = yp.log_metric
                for i in range(train):
                    log("loss", math.exp(-i * lr / 1000) + (i % 97) * 1e-3, context="training", step=i)
                for i in range(val):
                    log("loss", math.exp(-i * lr / 50) + 0.05, context="validation", step=i * 20)
                    log("acc", 1 - math.exp(-i * lr / 50), context="validation", step=i * 20)
                t0 = time.time()
                for i in range(sysn):
                    log("cpu_usage", 50 + 40 * math.sin(i / 50), step=i, timestamp=t0 + i * 0.5)
                    log("process_rss_mb", 300 + i * 0.01, step=i, timestamp=t0 + i * 0.5)
                yp.end_run()
    return next(p for p in (save_dir / "bench").iterdir() if p.is_dir())


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, the process and its children) of one command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return wall, cpu, res.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 points and 2 repeats (smoke run)")
    parser.add_argument("--json", metavar="FILE", help="save the results as JSON")
    args = parser.parse_args()
    points, repeats = (100_000, 2) if args.quick else (1_000_000, 5)
    print(f"report of a workflow with {points:,} metric points, {repeats} repeats, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        run_dir = build_workflow(work / "prov", points // 4)
        print(f"workflow recorded in {time.perf_counter() - t0:.1f} s: {run_dir}", flush=True)

        cli, cli_cpu, warm, mpl, mpl_cpu, charts = [], [], [], [], [], 0
        html_bytes = 0
        for r in range(repeats):
            wall, cpu, _ = _timed([sys.executable, "-m", "yprov_wf.cli", "report", str(run_dir), "-o", "report.html"],
                                  work)
            cli.append(wall)
            cli_cpu.append(cpu)
            html_bytes = (work / "report.html").stat().st_size
            wall, cpu, out = _timed([sys.executable, "-c", _MATPLOTLIB, str(run_dir), str(work / f"png{r}")], work)
            mpl.append(wall)
            mpl_cpu.append(cpu)
            charts = int(out.split()[1])
            print(f"[{r + 1}/{repeats}] yprov-wf report {cli[-1]:.2f} s, matplotlib PNG {mpl[-1]:.2f} s", flush=True)

        from yprov_wf.viz.report import build_report
        from yprov_wf.viz.runs import load_workflows

        for _ in range(repeats):  # in one process, imports done: the rendering alone
            t0 = time.perf_counter()
            build_report(load_workflows([run_dir]))
            warm.append(time.perf_counter() - t0)

    ours, ours_cpu = median(cli), median(cli_cpu)
    print_table(f"report of {points:,} points, wall time", "s", [
        Row("yprov-wf report (fresh process, graph included)", cli, ours),
        Row("yprov-wf build_report (warm, in process)", warm, ours),
        Row(f"matplotlib PNG, same {charts} charts, every point (fresh process)", mpl, ours)])
    print_table(f"report of {points:,} points, CPU time (user + system)", "s", [
        Row("yprov-wf report (fresh process, graph included)", cli_cpu, ours_cpu),
        Row(f"matplotlib PNG, same {charts} charts, every point (fresh process)", mpl_cpu, ours_cpu)])
    verdict = "meets" if ours <= 3.0 else "MISSES"
    print(f"\nyprov-wf report: {ours:.2f} s for {points:,} points ({verdict} the 3 s target); "
          f"HTML {html_bytes / 1024:.0f} KiB, self-contained")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} ({os.cpu_count()} cores; other work on the machine slows wall times)")
    save_json(args.json, {"points": points, "cli_s": cli, "cli_cpu_s": cli_cpu, "warm_s": warm,
                          "matplotlib_png_s": mpl, "matplotlib_png_cpu_s": mpl_cpu,
                          "html_bytes": html_bytes, "charts": charts})


if __name__ == "__main__":
    main()
