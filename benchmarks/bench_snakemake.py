"""Snakemake integration costs, each next to its anchor measured in the same run.

1. Wrapper overhead per job: what ``with job(snakemake):`` adds to one job process — importing
   snakemake_yprov in a fresh interpreter, then opening and closing the job's task bundle (2 input and
   1 output files, joined to an open workflow run as with ``--logger yprov``, and standalone as without
   it). Anchor: the 50 ms budget per job.
2. The logger plugin on a 30-job shell-only workflow: ``snakemake -c 2 --forceall`` wall time with and
   without ``--logger yprov``, alternating, in the same run. Anchor: plain ``snakemake``.

Run from the repo root: ``.venv/bin/python benchmarks/bench_snakemake.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NS = "https://example.org/bench/"
BUDGET_MS = 50.0

# One job process: import, then open/close the job bundle N times with a snakemake-like object.
_JOB_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import snakemake_yprov
import_s = time.perf_counter() - t0
from types import SimpleNamespace
import yprov_wf as yp
from snakemake_yprov import job
mode, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sm = SimpleNamespace(rule="train", input=[work + "/a.txt", work + "/b.txt"], output=[work + "/out.txt"],
                     log=[], params=SimpleNamespace(items=lambda: [("lr", 0.1)]),
                     wildcards=SimpleNamespace(items=lambda: [("seed", "1")]), threads=1,
                     resources=SimpleNamespace(items=lambda: [("mem_mb", 100)]), config={})
times = []
owner = yp.WorkflowScope("bench", namespace="%s", save_dir=work + "/prov", engine="snakemake").open() \\
    if mode == "joined" else None
if owner is not None:
    import os
    os.environ.update(owner.environment)
for i in range(n):
    t0 = time.perf_counter()
    with job(sm, namespace="%s", save_dir=work + "/prov"):
        open(work + "/out.txt", "w").write(str(i))
    times.append(time.perf_counter() - t0)
if owner is not None:
    owner.close()
print("BENCH_RESULT " + json.dumps({"import_s": import_s, "first_s": times[0], "later_s": times[1:]}))
""" % (NS, NS)

_EMPTY = "import json; print('BENCH_RESULT ' + json.dumps({}))"


def _python(code: str, *args: str) -> tuple[dict, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations")])}
    env.pop("YPROV_WF_RUN_DIR", None)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t0
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT "))
    return json.loads(line.removeprefix("BENCH_RESULT ")), wall


def bench_wrapper(repeats: int, per_process: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "a.txt").write_bytes(os.urandom(1 << 16))
        (work / "b.txt").write_bytes(os.urandom(1 << 10))
        empty = [_python(_EMPTY)[1] for _ in range(repeats)]
        for mode in ("joined", "standalone"):
            imports, firsts, laters, walls = [], [], [], []
            for _ in range(repeats):
                r, wall = _python(_JOB_PROBE, mode, str(per_process), str(work))
                imports.append(r["import_s"])
                firsts.append(r["first_s"])
                laters.extend(r["later_s"])
                walls.append(wall)
            results[mode] = {
                "import_ms": 1000 * statistics.median(imports),
                "first_job_ms": 1000 * statistics.median(firsts),
                "later_job_ms": 1000 * statistics.median(laters),
                "process_extra_ms": 1000 * (statistics.median(walls) - statistics.median(empty)),
            }
            results[mode]["per_job_ms"] = results[mode]["import_ms"] + results[mode]["first_job_ms"]
    return results


_RULES = """
N = {n}
rule all:
    input: expand("b_{{i}}.txt", i=range(N // 2))
rule a:
    output: "a_{{i}}.txt"
    shell: "echo {{wildcards.i}} > {{output}}"
rule b:
    input: "a_{{i}}.txt"
    output: "b_{{i}}.txt"
    shell: "cat {{input}} {{input}} > {{output}}"
"""


def bench_plugin(repeats: int, jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(tmp)
        (wd / "Snakefile").write_text(_RULES.format(n=jobs))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations")])}
        env.pop("YPROV_WF_RUN_DIR", None)
        base = [sys.executable, "-m", "snakemake", "-c", "2", "--forceall", "-q", "all"]
        plugin = ["--logger", "yprov", "--logger-yprov-namespace", NS, "--logger-yprov-save-dir", str(wd / "prov")]
        subprocess.run(base, cwd=wd, env=env, capture_output=True, check=True)  # warm the caches
        plain_s, with_s = [], []
        for _ in range(repeats):
            for args, sink in ((base, plain_s), (base + plugin, with_s)):
                t0 = time.perf_counter()
                subprocess.run(args, cwd=wd, env=env, capture_output=True, check=True)
                sink.append(time.perf_counter() - t0)
        runs = sorted((wd / "prov").glob("*/*/tasks"))
        tasks = len(list(runs[-1].glob("*.json"))) if runs else 0
    return {"plain_s": statistics.median(plain_s), "plugin_s": statistics.median(with_s),
            "plain_all_s": plain_s, "plugin_all_s": with_s, "tasks_recorded": tasks, "jobs": jobs + 1}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--json", type=Path, help="save every figure here")
    args = p.parse_args(argv)
    repeats = 2 if args.quick else 5
    wrapper = bench_wrapper(repeats, per_process=5 if args.quick else 20)
    plugin = bench_plugin(2 if args.quick else 5, jobs=30)

    print("Wrapper overhead per job (job(snakemake) in a fresh job process), medians")
    print(f"{'mode':<12}{'import ms':>11}{'1st job ms':>12}{'later ms':>10}{'per job ms':>12}{'budget ms':>11}"
          f"{'ratio':>8}")
    for mode, r in wrapper.items():
        print(f"{mode:<12}{r['import_ms']:>11.1f}{r['first_job_ms']:>12.1f}{r['later_job_ms']:>10.2f}"
              f"{r['per_job_ms']:>12.1f}{BUDGET_MS:>11.0f}{r['per_job_ms'] / BUDGET_MS:>8.2f}")
    print("  (per job = import + first open/close in the process; ratio = per job / budget, ≤ 1 meets it)")
    ratio = plugin["plugin_s"] / plugin["plain_s"]
    print(f"\nLogger plugin, {plugin['jobs']}-job shell-only workflow, snakemake -c 2 --forceall, median of "
          f"{len(plugin['plain_all_s'])}")
    print(f"{'plain snakemake s':>18}{'--logger yprov s':>18}{'ratio':>8}{'added':>9}{'bundles':>9}")
    print(f"{plugin['plain_s']:>18.2f}{plugin['plugin_s']:>18.2f}{ratio:>8.3f}{100 * (ratio - 1):>8.1f}%"
          f"{plugin['tasks_recorded']:>9}")
    result = {"wrapper": wrapper, "plugin": {**plugin, "ratio": ratio}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
