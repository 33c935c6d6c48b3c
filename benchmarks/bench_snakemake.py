"""Snakemake integration costs, each next to its anchor measured in the same run.

1. Wrapper overhead per job: what ``with job(snakemake):`` adds to one job process — importing
   snakemake_yprov in a fresh interpreter that has loaded what Snakemake's job preamble loads, then
   opening and closing the job's task bundle (2 input and 1 output files) around an empty body and a
   0.3 s body, joined to an open workflow run (``--logger yprov``) and standalone (without it).
   Anchor: the 50 ms budget per job.
2. The logger plugin on a 40-job shell-only workflow: ``snakemake -c 2 --forceall`` wall and CPU time with
   and without ``--logger yprov``, in rounds that also run plain Snakemake a second time as a control (what
   noise alone makes of identical runs), each round in another order; the spread of the per-round ratios is
   reported (the target: <= 5% wall and <= 5% CPU). Anchor: plain ``snakemake``.

Run from the repo root: ``.venv/bin/python benchmarks/bench_snakemake.py [--quick] [--only wrapper|plugin]
[--pairs N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NS = "https://example.org/bench/"
BUDGET_MS = 50.0

# One job process: Snakemake's job preamble imports (as every script:/run: job does), then the timed part:
# importing snakemake_yprov and opening/closing the job bundle around a body of BODY seconds (sleep, the
# way a job waits on I/O or native code), N times.
_JOB_PROBE = """
import json, os, sys, time
import snakemake.iocontainers, snakemake.script  # what a job process has loaded anyway
mode, n, work, ns, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
t0 = time.perf_counter()
import yprov_wf  # what a job that logs an ML run imports anyway
core_s = time.perf_counter() - t0
t0 = time.perf_counter()
import snakemake_yprov
import_s = time.perf_counter() - t0
from types import SimpleNamespace
import yprov_wf as yp
from snakemake_yprov import job
sm = SimpleNamespace(rule="train", input=[work + "/a.txt", work + "/b.txt"], output=[work + "/out.txt"],
                     log=[], params=SimpleNamespace(items=lambda: [("lr", 0.1)]),
                     wildcards=SimpleNamespace(items=lambda: [("seed", "1")]), threads=1,
                     resources=SimpleNamespace(items=lambda: [("mem_mb", 100)]), config={})
owner = None
if mode == "joined":
    from pathlib import Path
    from snakemake_yprov import rendezvous
    owner = yp.WorkflowScope("bench", namespace=ns, save_dir=work + "/prov", engine="snakemake").open()
    os.environ.update(owner.environment)  # what the logger plugin does, with its pointer file
    rendezvous.write_pointer(owner.dir.root.resolve(), "bench", Path(work), name="bench", namespace=owner.namespace,
                             run_id=owner.run_id)
    os.chdir(work)
times = []
for i in range(n):
    t0 = time.perf_counter()
    with job(sm, namespace=ns, save_dir=work + "/prov"):
        time.sleep(body)
        open(work + "/out.txt", "w").write(str(i))
    times.append(time.perf_counter() - t0 - body)
if owner is not None:
    owner.close()
print("BENCH_RESULT " + json.dumps({"core_s": core_s, "import_s": import_s, "first_s": times[0], "later_s": times[1:]}))
"""

def _env() -> dict[str, str]:
    """The children's environment: this checkout first on the path, no workflow run inherited, and bytecode
    caching on as for a user (with ``PYTHONDONTWRITEBYTECODE`` set, every process would compile each module
    that has no ``.pyc`` yet from source: a cost of the machine, not of either side)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations")])}
    env.pop("YPROV_WF_RUN_DIR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _python(code: str, *args: str) -> tuple[dict, float]:
    env = _env()
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
        for mode, body in (("joined", 0.0), ("standalone", 0.0), ("joined", 0.3), ("standalone", 0.3)):
            cores, imports, firsts, laters, walls = [], [], [], [], []
            for _ in range(repeats):
                r, wall = _python(_JOB_PROBE, mode, str(per_process), str(work), NS, str(body))
                imports.append(r["import_s"])
                cores.append(r["core_s"])
                firsts.append(r["first_s"])
                laters.extend(r["later_s"])
                walls.append(wall)
            results[f"{mode}, body {body:g} s"] = {
                "yprov_wf_import_ms": 1000 * statistics.median(cores),
                "import_ms": 1000 * statistics.median(imports),
                "first_job_ms": 1000 * statistics.median(firsts),
                "later_job_ms": 1000 * statistics.median(laters),
            }
            r = results[f"{mode}, body {body:g} s"]
            r["per_job_ms"] = r["import_ms"] + r["first_job_ms"]
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
    """``repeats`` rounds of three runs: plain, ``--logger yprov``, and plain again as a control (an A/A
    comparison: what the machine's noise alone makes of two identical runs). Each round starts the three in
    another order, so that no arm is always the one that runs first (or after another one)."""
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(tmp)
        (wd / "Snakefile").write_text(_RULES.format(n=jobs))
        env = _env()
        base = [sys.executable, "-m", "snakemake", "-c", "2", "--forceall", "-q", "all"]
        plugin = ["--logger", "yprov", "--logger-yprov-namespace", NS, "--logger-yprov-save-dir", str(wd / "prov")]
        arms = {"plain": base, "plugin": base + plugin, "control": base}
        for args in (base, base + plugin):  # warm the caches: the file system's, and each side's .pyc files
            subprocess.run(args, cwd=wd, env=env, capture_output=True, check=True)
        wall: dict[str, list[float]] = {arm: [] for arm in arms}
        cpu: dict[str, list[float]] = {arm: [] for arm in arms}
        names = list(arms)
        for r in range(repeats):
            for arm in names[r % 3:] + names[:r % 3]:
                c0 = _children_cpu()
                t0 = time.perf_counter()
                subprocess.run(arms[arm], cwd=wd, env=env, capture_output=True, check=True)
                wall[arm].append(time.perf_counter() - t0)
                cpu[arm].append(_children_cpu() - c0)
        runs = sorted((wd / "prov").glob("*/*/tasks"))
        tasks = len(list(runs[-1].glob("*.json"))) if runs else 0
    out = {"tasks_recorded": tasks, "jobs": jobs + 1, "rounds": repeats}
    for arm in arms:
        out[f"{arm}_s"], out[f"{arm}_min_s"] = statistics.median(wall[arm]), min(wall[arm])
        out[f"{arm}_cpu_s"] = statistics.median(cpu[arm])
        out[f"{arm}_all_s"], out[f"{arm}_all_cpu_s"] = wall[arm], cpu[arm]
    for arm in ("plugin", "control"):
        out[f"{arm}_pair_ratios"] = [w / p for p, w in zip(wall["plain"], wall[arm])]
        out[f"{arm}_pair_cpu_ratios"] = [w / p for p, w in zip(cpu["plain"], cpu[arm])]
    # against both plain runs of the round: every run counts, and neither plain run is singled out
    out["pooled_ratios"] = [w / ((p + c) / 2) for p, w, c in zip(wall["plain"], wall["plugin"], wall["control"])]
    out["pooled_cpu_ratios"] = [w / ((p + c) / 2) for p, w, c in zip(cpu["plain"], cpu["plugin"], cpu["control"])]
    return out


def _spread(ratios: list[float]) -> str:
    """min / quartiles / max of per-pair ratios, as added percent."""
    qs = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    return " ".join(f"{100 * (r - 1):+.1f}%" for r in (min(ratios), *qs, max(ratios)))


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process: Snakemake and its jobs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--json", type=Path, help="save every figure here")
    p.add_argument("--only", choices=("wrapper", "plugin"), help="run one of the two benchmarks")
    p.add_argument("--pairs", type=int, help="rounds of plain / --logger yprov / plain (default 11, --quick 3)")
    args = p.parse_args(argv)
    repeats = 2 if args.quick else 5
    result: dict = {}
    if args.only != "plugin":
        result["wrapper"] = _report_wrapper(bench_wrapper(repeats, per_process=5 if args.quick else 20))
    if args.only != "wrapper":
        pairs = args.pairs or (3 if args.quick else 11)
        result["plugin"] = _report_plugin(bench_plugin(pairs, jobs=40))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


def _report_wrapper(wrapper: dict) -> dict:

    print("Wrapper overhead per job (job(snakemake) in a fresh job process), medians")
    print(f"{'mode':<26}{'yprov_wf import':>16}{'import ms':>11}{'1st job ms':>12}{'later ms':>10}{'per job ms':>12}{'budget ms':>11}"
          f"{'ratio':>8}")
    for mode, r in wrapper.items():
        print(f"{mode:<26}{r['yprov_wf_import_ms']:>16.1f}{r['import_ms']:>11.1f}{r['first_job_ms']:>12.1f}{r['later_job_ms']:>10.2f}"
              f"{r['per_job_ms']:>12.1f}{BUDGET_MS:>11.0f}{r['per_job_ms'] / BUDGET_MS:>8.2f}")
    print("  (per job = import of snakemake_yprov + first open/close in the job process, beyond the body; later =\n"
          "   a further job in the same process; ratio = per job / budget, <= 1 meets it. yprov_wf's own import is\n"
          "   listed apart: a job that logs an ML run pays it with or without the wrapper)")
    return wrapper


def _report_plugin(plugin: dict) -> dict:
    print(f"\nLogger plugin, {plugin['jobs']}-job shell-only workflow, snakemake -c 2 --forceall, "
          f"{plugin['rounds']} rounds of plain / --logger yprov / plain again (the control), in rotating order")
    print(f"{'':<14}{'plain':>8}{'yprov':>8}{'added':>9}{'control':>9}{'added':>9}")
    figures = {}
    for label, key in (("wall median s", "_s"), ("wall min s", "_min_s"), ("cpu median s", "_cpu_s")):
        base = plugin[f"plain{key}"]
        added, noise = plugin[f"plugin{key}"] / base - 1, plugin[f"control{key}"] / base - 1
        figures[key] = added
        print(f"{label:<14}{base:>8.2f}{plugin[f'plugin{key}']:>8.2f}{100 * added:>8.1f}%"
              f"{plugin[f'control{key}']:>9.2f}{100 * noise:>8.1f}%")
    for label, wall, cpu in (("yprov / plain", "plugin_pair_ratios", "plugin_pair_cpu_ratios"),
                             ("control / plain", "control_pair_ratios", "control_pair_cpu_ratios"),
                             ("yprov / both", "pooled_ratios", "pooled_cpu_ratios")):
        print(f"{label:<16} per round, added min q1 median q3 max: wall {_spread(plugin[wall])}")
        print(f"{'':<16}{'':>36}  cpu {_spread(plugin[cpu])}")
    print("  (cpu: CPU seconds of Snakemake and its jobs, less noisy than wall time on a shared machine; the\n"
          "   control is plain Snakemake again: its 'added' is what noise alone gives, the floor for any figure;\n"
          "   yprov / both: against the mean of the round's two plain runs)")
    return {**plugin, "ratio": 1 + figures["_s"], "ratio_min": 1 + figures["_min_s"], "ratio_cpu": 1 + figures["_cpu_s"]}


if __name__ == "__main__":
    main()
