"""Collectors: ``log_system_metrics`` per call against yProv4ML's, the cost of background sampling at 1 s
on a CPU-bound PyTorch loop, and a 20-task workflow with energy tracking on against off.

Every figure comes from fresh worker processes, interleaved over rounds; the table shows medians.
From the repo root, in .venv: ``python benchmarks/bench_collectors.py [--quick] [--rounds N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _anchors import Target, run_rounds, targets
from _harness import Row, emit, median, open_lib, print_table, save_json, worker_spec

SCRIPT = Path(__file__)
NS = "https://example.org/"


# -- workers ------------------------------------------------------------------------------------------


def _system_metrics(lib_name: str, calls: int) -> dict[str, Any]:
    """µs per log_system_metrics call after 10 warm-up calls (the first call sets the collectors up)."""
    lib = open_lib(lib_name)
    lib.start("bench_system", str(Path.cwd() / "prov"))
    log = lib.module.log_system_metrics
    t0 = time.perf_counter()
    log(lib.context, 0)
    first = (time.perf_counter() - t0) * 1e6
    for i in range(10):
        log(lib.context, i)
    t0 = time.perf_counter()
    for i in range(calls):
        log(lib.context, i)
    per_call = (time.perf_counter() - t0) / calls * 1e6
    lib.module.end_run()
    return {"version": lib.version, "per call": per_call, "first call": first}


def _log_metric(calls: int, interval: float | None) -> dict[str, Any]:
    """µs per log_metric call while a background sampler runs every ``interval`` s (or none runs)."""
    import yprov_wf as yp

    yp.start_run(NS, "bench_hot_path", provenance_save_dir=str(Path.cwd() / "prov"), system_metrics_interval=interval)
    log, ctx = yp.log_metric, yp.Context.TRAINING
    for i in range(1000):
        log("loss", 0.123456789, ctx, i)
    t0 = time.perf_counter()
    for i in range(calls):
        log("loss", 0.123456789, ctx, i)
    per_call = (time.perf_counter() - t0) / calls * 1e6
    yp.end_run()
    return {"per call": per_call}


def _training(steps: int, blocks: int, interval: float) -> dict[str, Any]:
    """Wall time of a CPU-bound PyTorch loop (MLP on random data), in ``blocks`` pairs of runs of
    ``steps`` steps, one sampled every ``interval`` s in the background and one not, alternating which
    goes first: both halves of the comparison share the process and the machine's load of the moment."""
    import torch

    import yprov_wf as yp

    torch.manual_seed(0)
    torch.set_num_threads(1)  # one core for the loop, one for everything else on a 2-core machine
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(256, 256), torch.randint(0, 10, (256,))
    loss_fn = torch.nn.CrossEntropyLoss()
    walls = {"off": 0.0, "on": 0.0}
    samples = 0
    for block in range(blocks + 1):  # block 0 warms up and is not counted
        for mode in (("off", "on") if block % 2 else ("on", "off")):
            yp.start_run(NS, "bench_training", provenance_save_dir=str(Path.cwd() / "prov"),
                         system_metrics_interval=interval if mode == "on" else None)
            t0 = time.perf_counter()
            for step in range(steps):
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                yp.log_metric("loss", loss.item(), yp.Context.TRAINING, step)
            wall = time.perf_counter() - t0
            run = yp.active_run()
            yp.end_run()
            if block:
                walls[mode] += wall
                if mode == "on":
                    samples += _sampled_points(run)
    return {"no sampling s": walls["off"], "sampling s": walls["on"],
            "overhead %": (walls["on"] / walls["off"] - 1) * 100, "sampled points": samples,
            "tick µs": _tick_cost()}


def _tick_cost(ticks: int = 200) -> float:
    """µs of work per background sample (all default collectors, logged and flushed), timed without the
    thread: what one tick takes from the training each interval."""
    import yprov_wf as yp
    from yprov_wf.collectors.sampler import BackgroundSampler

    yp.start_run(NS, "bench_tick", provenance_save_dir=str(Path.cwd() / "prov"))
    rc = yp.active_run().collectors
    from yprov_wf.collectors.registry import Guarded
    from yprov_wf.metrics import MetricStore

    store = MetricStore(Path.cwd() / "tick.ylog", 1 << 30, lambda exc: None)
    s = BackgroundSampler(rc.default_names(True), rc.options, store, 1.0, "bench")
    s.collectors = [Guarded.create(n, rc.options.get(n)) for n in s.names]
    s._tick()
    t0 = time.perf_counter()
    for _ in range(ticks):
        s._tick()
    cost = (time.perf_counter() - t0) / ticks * 1e6
    store.close()
    yp.end_run()
    return cost


def _sampled_points(run: Any) -> int:
    import pyarrow.parquet as pq

    f = run.info.provenance_dir / "metrics" / f"{run.run_id}.parquet"
    if not f.exists():
        return 0
    table = pq.read_table(f, columns=["context"])
    return sum(1 for c in table.column("context").to_pylist() if c == "system")


def _workflow(tasks: int, energy: bool, work_s: float) -> dict[str, Any]:
    """Wall time of a workflow of ``tasks`` tasks, each a run busy for ``work_s`` s of CPU, energy on/off."""
    import yprov_wf as yp

    save = str(Path.cwd() / "prov")
    opened = time.time()
    t0 = time.perf_counter()
    with yp.workflow("bench_energy", namespace=NS, save_dir=save, energy=energy, energy_country="FRA") as wf:
        for i in range(tasks):
            with yp.task(f"t{i}"):
                with yp.start_run(NS, "r"):
                    _busy(work_s)
                    yp.log_metric("loss", 1.0 / (i + 1))
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"wall s": wall}
    if energy:
        from yprov_wf.collectors.energy import energy_meter
        from yprov_wf.prov.reading import read_task_file

        out["tasks with energy"] = sum("energyKWh" in read_task_file(f).attributes
                                       for f in (wf.dir.root / "tasks").glob("*.json"))
        meter = energy_meter()
        meter.wait()
        out["tracker ready after s"] = (meter.started_at or time.time()) - opened
    return out


def _naive_energy(tasks: int, work_s: float) -> dict[str, Any]:
    """What tracking costs when a codecarbon tracker is started and stopped per task (the trap)."""
    import logging

    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    for _ in range(tasks):
        tracker = OfflineEmissionsTracker(country_iso_code="FRA", save_to_file=False, log_level="error",
                                          allow_multiple_runs=True)
        tracker.start()
        _busy(work_s)
        tracker.stop()
    return {"wall s": time.perf_counter() - t0}


def _busy(seconds: float) -> None:
    """CPU work as ML code does it: array operations in native code (which release the GIL)."""
    import numpy as np

    a = np.random.default_rng(0).random((200, 200))
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = np.tanh(a @ a.T / 200.0)


def _worker(spec: dict[str, Any]) -> None:
    kind = spec["kind"]
    if kind == "system":
        emit(_system_metrics(spec["lib"], spec["calls"]))
    elif kind == "log_metric":
        emit(_log_metric(spec["calls"], spec["interval"]))
    elif kind == "training":
        emit(_training(spec["steps"], spec["blocks"], spec["interval"]))
    elif kind == "workflow":
        emit(_workflow(spec["tasks"], spec["energy"], spec["work_s"]))
    elif kind == "naive":
        emit(_naive_energy(spec["tasks"], spec["work_s"]))
    else:
        raise ValueError(f"unknown worker kind {kind!r}")


# -- main ---------------------------------------------------------------------------------------------


def _values(results: dict[str, list[dict[str, Any]]], name: str, key: str) -> list[float]:
    return [float(r[key]) for r in results.get(name, []) if key in r]


def main() -> None:
    spec = worker_spec(sys.argv)
    if spec is not None:
        _worker(spec)
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls and steps (smoke run)")
    parser.add_argument("--rounds", type=int, default=5, help="fresh-process repeats (default 5)")
    parser.add_argument("--json", metavar="FILE", help="save the results as JSON")
    parser.add_argument("--no-naive", action="store_true", help="skip the tracker-per-task anchor (~30-100 s)")
    parser.add_argument("--only", choices=["system", "hot", "training", "workflow"], action="append",
                        help="run only these parts (repeatable; default: all)")
    args = parser.parse_args()
    quick = args.quick
    rounds = 3 if quick and args.rounds == 5 else args.rounds
    calls = 2_000 if quick else 20_000
    steps, blocks = (200, 2) if quick else (500, 6)
    tasks, work_s = 20, 0.1
    print(f"collectors: {calls:,} log_system_metrics calls, PyTorch loop of {steps} steps, "
          f"{tasks}-task workflow ({work_s} s CPU per task), {rounds} rounds, Python {platform.python_version()}")

    tgts = targets(["yprov4ml"])
    ours = tgts[0]
    jobs: list[tuple[str, Target, dict[str, Any]]] = [
        (f"{t.lib} system", t, {"kind": "system", "calls": calls}) for t in tgts
    ]
    jobs += [
        ("log_metric, no sampling", ours, {"kind": "log_metric", "calls": calls * 50, "interval": None}),
        ("log_metric, sampling every 1 s", ours, {"kind": "log_metric", "calls": calls * 50, "interval": 1.0}),
        ("training", ours, {"kind": "training", "steps": steps, "blocks": blocks, "interval": 1.0}),
        ("workflow, energy off", ours, {"kind": "workflow", "tasks": tasks, "energy": False, "work_s": work_s}),
        ("workflow, energy on", ours, {"kind": "workflow", "tasks": tasks, "energy": True, "work_s": work_s}),
    ]
    parts = set(args.only or ["system", "hot", "training", "workflow"])
    jobs = [j for j in jobs if {"system": "system", "log_metric": "hot", "training": "training",
                                "workflow": "workflow"}[j[2]["kind"]] in parts]
    results = run_rounds(SCRIPT, jobs, rounds, timeout=1800)
    if not args.no_naive and "workflow" in parts:
        naive_spec = {"kind": "naive", "tasks": tasks, "work_s": work_s}
        results.update(run_rounds(SCRIPT, [("workflow, tracker per task", ours, naive_spec)], 1, timeout=1800))

    ours_sys = _values(results, "yprov_wf system", "per call")
    rows = [Row(f"{name.split()[0]} {runs[0].get('version', '?')}, log_system_metrics",
                _values(results, name, "per call"), median(ours_sys) if ours_sys else None)
            for name, runs in results.items() if name.endswith(" system") and runs]
    rows += [Row(f"{name.split()[0]}, first call (sets collectors up)", _values(results, name, "first call"),
                 median(ours_sys) if ours_sys else None)
             for name, runs in results.items() if name.endswith(" system") and runs]
    if rows:
        print_table("log_system_metrics (ratio = figure / ours)", "µs/call", rows)

    hot_off = _values(results, "log_metric, no sampling", "per call")
    hot_on = _values(results, "log_metric, sampling every 1 s", "per call")
    if hot_off and hot_on:
        print_table("log_metric hot path while a sampler runs (ratio = figure / no sampling)", "µs/call",
                    [Row("no sampling", hot_off, median(hot_off)), Row("sampling every 1 s", hot_on, median(hot_off))])

    base = _values(results, "training", "no sampling s")
    sampled = _values(results, "training", "sampling s")
    train_rows = [Row("no sampling", base, median(sampled) if sampled else None),
                  Row("sampling every 1 s", sampled, median(sampled) if sampled else None)]
    if base:
        print_table(f"CPU-bound PyTorch loop, {blocks} x {steps} steps per mode and process "
                    "(ratio = figure / sampled)", "s", train_rows)
    overhead = None
    if base and sampled:
        per_round = _values(results, "training", "overhead %")
        overhead = median(per_round)
        points = _values(results, "training", "sampled points")
        tick = _values(results, "training", "tick µs")
        print(f"background sampling overhead: median {overhead:+.2f}% of wall time (per process: "
              f"{', '.join(f'{x:+.1f}%' for x in per_round)}; median {median(points):.0f} sampled points); "
              f"one sample costs {median(tick):.0f} µs of work, {median(tick) / 1e4:.3f}% of a 1 s interval")

    off = _values(results, "workflow, energy off", "wall s")
    on = _values(results, "workflow, energy on", "wall s")
    naive = _values(results, "workflow, tracker per task", "wall s")
    wf_rows = [Row("energy off", off, median(on) if on else None), Row("energy on", on, median(on) if on else None)]
    if naive:
        wf_rows.append(Row("codecarbon tracker started per task", naive, median(on) if on else None))
    if off or on:
        print_table(f"{tasks}-task workflow (ratio = figure / energy on)", "s", wf_rows)
    extra = None
    if off and on:
        extra = median(on) - median(off)
        measured = _values(results, "workflow, energy on", "tasks with energy")
        ready = _values(results, "workflow, energy on", "tracker ready after s")
        print(f"energy tracking adds {extra:+.2f} s to the workflow; tasks with energy figures: "
              f"median {median(measured):.0f} of {tasks} (the tracker was ready {median(ready):.1f} s after "
              "the workflow opened)")
    save_json(args.json, {
        "rounds": rounds, "results": results, "medians": {r.name: r.value for r in rows + train_rows + wf_rows if r.values},
        "sampling_overhead_pct": overhead, "energy_extra_s": extra,
    })


if __name__ == "__main__":
    main()
