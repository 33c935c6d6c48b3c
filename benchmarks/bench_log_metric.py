"""log_metric cost per call: yprov-wf against yProv4ML and MLflow, measured side by side in one run.

Each round runs every library in a fresh worker process (interleaved, to spread the noise of a busy
machine), after an untimed warm-up run; the table shows the median over rounds. From the repo root, in .venv:
``python benchmarks/bench_log_metric.py [--quick] [--rounds N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _anchors import Target, run_rounds, targets
from _harness import VALUE, Row, emit, median, open_lib, print_table, save_json, worker_spec

SCRIPT = Path(__file__)
KEYS = 1000
COLD = "first 1,000 calls in a fresh process"


def _per_call_us(log: Callable[..., Any], ctx: Any, n_keys: int, calls: int) -> float:
    """One timing of ``calls`` log calls (one key, or n_keys round-robin), in µs per call."""
    if n_keys == 1:
        key = "loss"
        t0 = time.perf_counter()
        for i in range(calls):
            log(key, VALUE, context=ctx, step=i)
        return (time.perf_counter() - t0) / calls * 1e6
    keys = [f"metric_{k}" for k in range(n_keys)]
    t0 = time.perf_counter()
    for i, key in zip(range(calls), itertools.cycle(keys)):
        log(key, VALUE, context=ctx, step=i)
    return (time.perf_counter() - t0) / calls * 1e6


def _noop(key: str, value: float, context: Any = None, step: int | None = None) -> None:
    """What a call costs when the callee does nothing."""


def _baseline(calls: int) -> dict[str, Any]:
    """Cost of the loop itself: a no-op call with the same arguments, and a bare loop."""
    t0 = time.perf_counter()
    for _ in range(calls):
        pass
    bare = (time.perf_counter() - t0) / calls * 1e6
    return {
        "version": platform.python_version(),
        "no-op call, 1 key": _per_call_us(_noop, "training", 1, calls),
        f"no-op call, {KEYS} keys": _per_call_us(_noop, "training", KEYS, calls),
        "bare loop": bare,
    }


def _yprov(name: str, calls: int) -> dict[str, Any]:
    """A warm-up run (its first 1,000 calls timed apart: one-time costs), then one timed run per scenario."""
    lib = open_lib(name)
    save_dir = str(Path.cwd() / "prov")
    lib.start("bench_warmup", save_dir)
    out: dict[str, Any] = {"version": lib.version, COLD: _per_call_us(lib.module.log_metric, lib.context, 1, 1000)}
    lib.module.end_run()
    for n_keys in (1, KEYS):
        lib.start(f"bench_{n_keys}", save_dir)
        out[f"{n_keys} key" + ("s" if n_keys > 1 else "")] = _per_call_us(
            lib.module.log_metric, lib.context, n_keys, calls
        )
        lib.module.end_run()
    return out


def _mlflow(calls: int) -> dict[str, Any]:
    """MLflow's log_metric, and log_batch with 1 and 1000 points per call, on file and sqlite stores."""
    import mlflow

    out: dict[str, Any] = {"version": mlflow.__version__}
    root = Path.cwd()
    stores = {"file": f"file:{root / 'mlruns'}", "sqlite": f"sqlite:///{root / 'mlflow.db'}"}
    for store, uri in stores.items():
        try:
            out.update({f"{store}: {k}": v for k, v in _mlflow_store(mlflow, uri, calls).items()})
        except Exception as exc:  # a store that does not work is reported, not fatal
            out[f"{store}: error"] = repr(exc)[:300]
    return out


def _mlflow_store(mlflow: Any, uri: str, calls: int) -> dict[str, float]:
    """µs per point of the three ways MLflow logs metrics, on one tracking store."""
    from mlflow.entities import Metric

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    out: dict[str, float] = {}
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", VALUE, step=i)
        out["log_metric"] = (time.perf_counter() - t0) / calls * 1e6
        client, rid, ts = mlflow.MlflowClient(), run.info.run_id, int(time.time() * 1000)
        t0 = time.perf_counter()
        for i in range(calls):
            client.log_batch(rid, metrics=[Metric("b1", VALUE, ts, i)])
        out["log_batch, 1 point/call"] = (time.perf_counter() - t0) / calls * 1e6
        batches = max(calls, 10_000) // 1000
        t0 = time.perf_counter()
        for b in range(batches):
            client.log_batch(rid, metrics=[Metric("b1000", VALUE, ts, b * 1000 + j) for j in range(1000)])
        out["log_batch, 1000 points/call (per point)"] = (time.perf_counter() - t0) / (batches * 1000) * 1e6
    return out


def _worker(spec: dict[str, Any]) -> None:
    lib = spec["lib"]
    if lib == "baseline":
        emit(_baseline(spec["calls"]))
    elif lib == "mlflow":
        emit(_mlflow(spec["mlflow_calls"]))
    else:
        emit(_yprov(lib, spec["calls"]))


def _rows(results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    """Table rows: every figure, compared with ours in the same scenario (1 key for MLflow)."""

    def values(lib: str, key: str) -> list[float]:
        return [float(r[key]) for r in results.get(lib, []) if key in r]

    def ours(key: str) -> float | None:
        v = values("yprov_wf", key)
        return median(v) if v else None

    def label(lib: str) -> str:
        runs = results.get(lib) or [{}]
        return f"{lib} {runs[0].get('version', '?')}"

    rows: list[Row] = []
    for scenario in ("1 key", f"{KEYS} keys", COLD):
        for lib in ("yprov_wf", "yprov4ml"):
            if values(lib, scenario):
                rows.append(Row(f"{label(lib)}, {scenario}", values(lib, scenario), ours(scenario)))
    for run in results.get("mlflow", [])[:1]:
        for key in run:
            if key != "version" and not key.endswith("error"):
                rows.append(Row(f"{label('mlflow')} {key}", values("mlflow", key), ours("1 key")))
    for key in ("no-op call, 1 key", f"no-op call, {KEYS} keys", "bare loop"):
        if values("baseline", key):
            rows.append(Row(f"python {key}", values("baseline", key), ours("1 key")))
    return rows


def main() -> None:
    spec = worker_spec(sys.argv)
    if spec is not None:
        _worker(spec)
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10x fewer calls (smoke run)")
    parser.add_argument("--rounds", type=int, default=5, help="fresh-process repeats (default 5)")
    parser.add_argument("--json", metavar="FILE", help="save the results as JSON")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    spec = {"calls": 1_000_000 // scale, "mlflow_calls": 2_000 // scale}
    rounds = 3 if args.quick and args.rounds == 5 else args.rounds
    print(
        f"log_metric: {spec['calls']:,} calls per scenario (MLflow {spec['mlflow_calls']:,}), "
        f"{rounds} rounds, Python {platform.python_version()}, save_after_n_logs=100"
    )
    tgts = [Target("baseline", sys.executable, {}, "python baseline"), *targets(["yprov4ml", "mlflow"])]
    results = run_rounds(SCRIPT, [(t.lib, t, spec) for t in tgts], rounds)
    for run in results.get("mlflow", [])[:1]:
        for key, msg in run.items():
            if key.endswith("error"):
                print(f"mlflow {key}: {msg}")
    rows = _rows(results)
    print_table("log_metric per call (median over rounds; ratio = figure / ours, >1: ours is faster)", "µs/call", rows)
    save_json(
        args.json,
        {
            "spec": spec,
            "rounds": rounds,
            "results": results,
            "medians": {r.name: r.value for r in rows},
            "ratios": {r.name: r.value / r.ours for r in rows if r.ours},
        },
    )


if __name__ == "__main__":
    main()
