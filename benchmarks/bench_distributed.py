"""Scale of distributed provenance: N ranks, each with a realistic bundle written through the real
writer (params, metric series with a Parquet file, model versions, a dataset), then merge + validate
(+ export to the store when the RDF exporter is installed). Prints seconds and peak RSS for 8, 64, 512.

    .venv/bin/python benchmarks/bench_distributed.py [--ranks 8 64 512]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _write_ranks(save_dir: Path, ranks: int) -> Path:
    """Every rank as its own process would write it: a participant workflow scope, one task, one run."""
    import numpy as np

    import yprov_wf as yp

    os.environ["YPROV_WF_RANK_WAIT"] = "0"
    group = f"bench{ranks}"
    for rank in [*range(1, ranks), 0]:  # rank 0 owns the workflow run and closes last
        os.environ["YPROV_WF_GROUP_ID"] = group
        run = yp.start_run(
            "https://example.org/bench/",
            "ddp",
            provenance_save_dir=save_dir,
            rank=rank,
            world_size=ranks,
            collect_all_processes=True,
        )
        yp.log_params({"lr": 0.01, "batch_size": 64, "epochs": 3, "world_size": ranks, "seed": rank})
        yp.log_dataset(np.zeros((1797 // ranks + 1, 64), np.float32), "shard")
        for step in range(300):
            yp.log_metric("loss", 1.0 / (step + 1), yp.Context.TRAINING, step)
            if step % 100 == 0:
                yp.log_metric("accuracy", step / 300, yp.Context.VALIDATION, step)
                yp.save_model_version({"w": np.full(64, step, np.float32)}, "mlp", yp.Context.TRAINING, step)
        run.end()
    return next(save_dir.glob("ddp/*"))


def _measure(ranks: int) -> dict[str, float]:
    code = f"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / "benchmarks")!r})
from bench_distributed import _write_ranks
from yprov_wf.prov.merge import merge
from yprov_wf.prov.validate import validate
root = _write_ranks(Path(sys.argv[1]), {ranks})
out = {{}}
t = time.perf_counter(); doc = merge(root); out["merge_s"] = time.perf_counter() - t
t = time.perf_counter(); findings = validate(root); out["validate_s"] = time.perf_counter() - t
assert not findings, findings[:3]
try:
    from yprov_wf import rdf
except ImportError:
    out["export_s"] = None
else:
    t = time.perf_counter(); rdf.load(root, Path(sys.argv[1]) / "store"); out["export_s"] = time.perf_counter() - t
out["bundles"] = len(doc["bundle"])
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[8, 64, 512])
    args = parser.parse_args()
    print(f"{'ranks':>6} {'merge s':>8} {'validate s':>10} {'export s':>9} {'total s':>8} {'peak RSS MB':>11}")
    for n in args.ranks:
        r = _measure(n)
        export = r["export_s"]
        total = r["merge_s"] + r["validate_s"] + (export or 0)
        print(
            f"{n:>6} {r['merge_s']:>8.2f} {r['validate_s']:>10.2f} "
            f"{'n/a' if export is None else f'{export:.2f}':>9} {total:>8.2f} {r['peak_rss_mb']:>11.0f}"
        )
    print("target (issue 8): 512 ranks merge + validate + export <= 30 s and <= 2 GB")


if __name__ == "__main__":
    main()
