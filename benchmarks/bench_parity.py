"""yProv4ML-parity features against their nearest anchors, measured side by side in this process.

    .venv/bin/python benchmarks/bench_parity.py [--quick]

Prints one row per figure: ours | anchor | ratio (anchor / ours: above 1, ours is faster). Medians of
several rounds. Figures:
- Lightning logger: ``log_metrics`` µs per call (2 metrics) of YProvLogger vs Lightning's CSVLogger.
- FLOPs: ``yp.log_flops_per_batch`` on a 3-layer MLP (first call traced, later ones cached) vs one plain
  forward pass of the same batch; and the first, traced count alone (``recount=True``).
- read-back: ``yp.load(dir)`` + ``run.metric(...)`` vs ``pandas.read_parquet`` of the same file, 100k points.
- crate: ``write_crate`` of a run with 100k points and 10 model versions vs ``shutil.make_archive`` (zip).
- source: ``yp.log_source_code(folder)`` of this repository's ``yprov_wf`` package vs ``shutil.copytree``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "integrations"))

import torch  # noqa: E402

import yprov_wf as yp  # noqa: E402

NS = "https://example.org/bench/"


def _median(fn: Callable[[], float], rounds: int) -> float:
    return statistics.median(fn() for _ in range(rounds))


def _per_call(fn: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter()
    fn(calls)
    return (time.perf_counter() - start) / calls


def bench_logger(tmp: Path, calls: int, rounds: int) -> tuple[float, float]:
    from lightning.pytorch.loggers import CSVLogger
    from lightning_yprov import YProvLogger

    def ours() -> float:
        logger = YProvLogger("bench", namespace=NS, provenance_save_dir=tmp / "prov-logger")
        logger.log_metrics({"train_loss": 0.0, "val_acc": 0.0}, step=0)

        def loop(n: int) -> None:
            log = logger.log_metrics
            for i in range(n):
                log({"train_loss": 0.5, "val_acc": 0.25}, i)
        t = _per_call(loop, calls)
        logger.finalize("success")
        return t

    def anchor() -> float:
        logger = CSVLogger(tmp / "csv", name="bench")

        def loop(n: int) -> None:
            log = logger.log_metrics
            for i in range(n):
                log({"train_loss": 0.5, "val_acc": 0.25}, i)
        t = _per_call(loop, calls)
        logger.finalize("success")
        return t

    return _median(ours, rounds), _median(anchor, rounds)


def bench_flops(tmp: Path, rounds: int) -> tuple[float, float, float]:
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    batch = torch.randn(128, 64)
    run = yp.start_run(NS, "flops", provenance_save_dir=tmp / "prov-flops")

    def ours() -> float:
        return _per_call(lambda n: [yp.log_flops_per_batch("flops", model, batch) for _ in range(n)], 50)

    def traced() -> float:
        return _per_call(lambda n: [yp.log_flops_per_batch("flops", model, batch, recount=True)
                                    for _ in range(n)], 20)

    def anchor() -> float:
        def loop(n: int) -> None:
            with torch.no_grad():
                for _ in range(n):
                    model(batch)
        return _per_call(loop, 50)

    result = _median(ours, rounds), _median(traced, rounds), _median(anchor, rounds)
    run.end()
    return result


def _big_run(tmp: Path, points: int) -> Path:
    model = torch.nn.Linear(256, 256)
    with yp.workflow("bench", namespace=NS, save_dir=tmp / "prov-big") as wf:
        with yp.task("train"):
            with yp.start_run(NS, "big", save_after_n_logs=10_000):
                for i in range(points):
                    yp.log_metric("loss", 1.0 / (i + 1), context=yp.Context.TRAINING, step=i)
                for v in range(10):
                    yp.save_model_version(model, "linear", step=v)
    return wf.dir.root


def bench_readback(root: Path, rounds: int) -> tuple[float, float]:
    import pandas as pd

    path = next((root / "metrics").glob("*.parquet"))

    def ours() -> float:
        start = time.perf_counter()
        df = yp.load(root)[0].runs[0].metric("loss", "training")
        assert len(df) > 0
        return time.perf_counter() - start

    def anchor() -> float:
        start = time.perf_counter()
        df = pd.read_parquet(path)
        df = df[(df["key"] == "loss") & (df["context"] == "training")]
        assert len(df) > 0
        return time.perf_counter() - start

    return _median(ours, rounds), _median(anchor, rounds)


def bench_crate(root: Path, tmp: Path, rounds: int) -> tuple[float, float]:
    from yprov_wf.crate import write_crate

    def ours() -> float:
        target = tmp / f"c-{time.perf_counter_ns()}.zip"
        start = time.perf_counter()
        write_crate(root, target)
        t = time.perf_counter() - start
        target.unlink()
        return t

    def anchor() -> float:
        base = tmp / f"a-{time.perf_counter_ns()}"
        start = time.perf_counter()
        archive = shutil.make_archive(str(base), "zip", root)
        t = time.perf_counter() - start
        Path(archive).unlink()
        return t

    return _median(ours, rounds), _median(anchor, rounds)


def bench_source(tmp: Path, rounds: int) -> tuple[float, float]:
    src = REPO / "yprov_wf"

    def ours() -> float:
        with yp.start_run(NS, "src", provenance_save_dir=tmp / "prov-src"):
            start = time.perf_counter()
            yp.log_source_code(src)
            return time.perf_counter() - start

    def anchor() -> float:
        dest = tmp / f"copy-{time.perf_counter_ns()}"
        start = time.perf_counter()
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        return time.perf_counter() - start

    return _median(ours, rounds), _median(anchor, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (smoke run)")
    args = parser.parse_args()
    calls, rounds, points = (2_000, 3, 10_000) if args.quick else (20_000, 5, 100_000)
    warnings.filterwarnings("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours, anchor = bench_logger(tmp, calls, rounds)
        rows.append(("Lightning log_metrics, µs/call (2 metrics)", "CSVLogger", ours * 1e6, anchor * 1e6))
        ours, traced, anchor = bench_flops(tmp, rounds)
        rows.append(("log_flops_per_batch, ms/call (128×64 MLP)", "plain forward", ours * 1e3, anchor * 1e3))
        rows.append(("  … recount=True (traced every call), ms/call", "plain forward", traced * 1e3, anchor * 1e3))
        root = _big_run(tmp, points)
        ours, anchor = bench_readback(root, rounds)
        rows.append((f"load + metric(), ms ({points:,} points)", "pandas.read_parquet", ours * 1e3, anchor * 1e3))
        ours, anchor = bench_crate(root, tmp, rounds)
        rows.append(("crate export, ms (10 model versions)", "shutil.make_archive", ours * 1e3, anchor * 1e3))
        ours, anchor = bench_source(tmp, rounds)
        rows.append(("log_source_code(yprov_wf/), ms", "shutil.copytree", ours * 1e3, anchor * 1e3))
    print(f"{'figure':48} {'ours':>10} {'anchor':>10}  {'ratio':>6}  anchor")
    for name, anchor_name, ours, anchor in rows:
        print(f"{name:48} {ours:10.2f} {anchor:10.2f}  {anchor / ours:6.2f}  {anchor_name}")


if __name__ == "__main__":
    main()
