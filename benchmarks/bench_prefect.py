"""Added cost per task of prefect_yprov against plain Prefect, measured in the same run.

The same 100-task flow (a chain: each task gets the previous task's result, so data flow is recorded
too) is run with ``prefect.flow``/``prefect.task`` and with ``prefect_yprov.flow``/``task``, alternating,
several times (the order inside each pair alternates); the added cost per task is the median over
pairs of (ours − plain) / 100. A second flow runs the 100 tasks with ``.map`` on the thread pool.
Because end-to-end flow times carry Prefect's own noise (its API server, event backlog), the time
spent inside prefect_yprov's recording steps is also timed directly (opening and closing each task's
bundle, digesting results, and the flow's workflow.json) and reported per task, and so is the CPU time this
process (not Prefect's server) spent on each flow. Before each timed flow the ephemeral API server (a
child process) is left to finish the previous flows' event backlog: a busy server answers retryable
errors, and the client's back-off (2, 4, 8 s sleeps) otherwise lands on whichever flow comes next, plain
or ours alike. Flow run heartbeats are off unless ``--heartbeats`` is given: with them (Prefect's default,
every 180 s) a sync flow's wall time is rounded up to the next whole second after it started, since the
flow joins its heartbeat thread, which sleeps in 1 s steps; a plain 100-task flow takes just under 1 s
here, so any added cost reads as 0 or 1 s (0 or 10 ms per task). Run from the repo root:
``.venv/bin/python benchmarks/bench_prefect.py [--repeats 5] [--tasks 100] [--heartbeats]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFECT_HOME", str(REPO / "build" / "prefect-home"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import prefect  # noqa: E402
import prefect_yprov  # noqa: E402
import psutil  # noqa: E402
from prefect_yprov import attempts, flows  # noqa: E402

_spent = [0.0]  # seconds inside prefect_yprov's recording steps (wall clock, summed over threads)
_spent_cpu = [0.0]  # the same in thread CPU time: under .map, threads wait for the GIL inside the steps


def _timing(module, name: str) -> None:
    """Accumulate the time spent in ``module.name`` (looked up at call time by the wrappers)."""
    original = getattr(module, name)

    def timed_step(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            _spent[0] += time.perf_counter() - t0
            _spent_cpu[0] += time.thread_time() - c0

    setattr(module, name, timed_step)


for _module, _name in ((attempts, "begin"), (attempts, "record_result"), (attempts, "on_completion"),
                       (flows, "_open_attempt"), (flows, "_returned"), (flows, "on_final_state")):
    _timing(_module, _name)


def step(x: int) -> int:
    return x + 1


def build(flow_deco, task_deco, n: int, mapped: bool, **flow_options):
    """A flow of ``n`` tasks: a chain of direct calls, or one ``.map`` over ``n`` inputs."""
    t = task_deco(step)

    def chain() -> int:
        x = 0
        for _ in range(n):
            x = t(x)
        return x

    def fan_out() -> int:
        return sum(f.result() for f in t.map(list(range(n))))

    body = fan_out if mapped else chain
    return flow_deco(body, name=f"bench-{'map' if mapped else 'chain'}", **flow_options)


def settle(quiet_share: float = 0.05, window: float = 0.25, limit: float = 20.0) -> None:
    """Wait until this process's children (Prefect's ephemeral API server) use under ``quiet_share`` of
    a core over ``window`` seconds, at most ``limit`` seconds."""
    def children_cpu() -> float:
        total = 0.0
        for child in psutil.Process().children(recursive=True):
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    deadline = time.monotonic() + limit
    before = children_cpu()
    while time.monotonic() < deadline:
        time.sleep(window)
        now = children_cpu()
        if now - before < quiet_share * window:
            return
        before = now


_cpu: list[float] = []  # this process's CPU seconds per timed flow, in the order of the timings


def timed(f) -> float:
    settle()
    t0, c0 = time.perf_counter(), time.process_time()
    f()
    wall = time.perf_counter() - t0
    _cpu.append(time.process_time() - c0)
    return wall


def measure(n: int, repeats: int, mapped: bool,
            save_dir: str) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """(plain flow seconds, our flow seconds, our recording seconds, their CPU seconds, this process's added
    CPU seconds) per repeat."""
    plain = build(prefect.flow, prefect.task, n, mapped)
    ours = build(prefect_yprov.flow, prefect_yprov.task, n, mapped, save_dir=save_dir,
                 namespace="https://example.org/bench/")
    timed(plain), timed(ours)  # warm-up: server start, imports, first-run costs
    plain_s, ours_s, spent_s, cpu_s, added_cpu = [], [], [], [], []
    for i in range(repeats):
        _spent[0] = _spent_cpu[0] = 0.0
        if i % 2:
            ours_s.append(timed(ours))
            plain_s.append(timed(plain))
            added_cpu.append(_cpu[-2] - _cpu[-1])
        else:
            plain_s.append(timed(plain))
            ours_s.append(timed(ours))
            added_cpu.append(_cpu[-1] - _cpu[-2])
        spent_s.append(_spent[0])
        cpu_s.append(_spent_cpu[0])
    return plain_s, ours_s, spent_s, cpu_s, added_cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--heartbeats", action="store_true",
                        help="keep Prefect's flow run heartbeats (wall times then step by whole seconds)")
    args = parser.parse_args(argv)
    if args.heartbeats:
        run(args)
    else:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            run(args)


def run(args: argparse.Namespace) -> None:
    n = args.tasks
    print(f"prefect {prefect.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores; "
          f"{n} tasks per flow, {args.repeats} alternating pairs, medians; flow run heartbeats "
          f"{'on' if args.heartbeats else 'off'}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'flow':<8} {'plain Prefect s':>16} {'prefect_yprov s':>16} {'added ms/task':>14} "
          f"{'added spread':>16} {'ratio':>7} {'recording ms/task':>18} {'rec. spread':>14} {'rec. CPU ms/task':>17} "
          f"{'plain ms/task':>14} {'added proc. CPU ms/task':>24}")
    with tempfile.TemporaryDirectory() as save_dir:
        for mapped in (False, True):
            plain_s, ours_s, spent_s, cpu_s, added_cpu = measure(n, args.repeats, mapped, save_dir)
            pairs = [(o - p) / n * 1000 for o, p in zip(ours_s, plain_s)]
            added = statistics.median(pairs)
            p, o = statistics.median(plain_s), statistics.median(ours_s)
            per_task = [s / n * 1000 for s in spent_s]
            spent = statistics.median(per_task)
            cpu = statistics.median(c / n * 1000 for c in cpu_s)
            print(f"{'map' if mapped else 'chain':<8} {p:>16.3f} {o:>16.3f} {added:>14.2f} "
                  f"{min(pairs):>7.2f}..{max(pairs):<7.2f} {o / p:>7.2f} {spent:>18.2f} "
                  f"{min(per_task):>6.2f}..{max(per_task):<6.2f} {cpu:>17.2f} {p / n * 1000:>14.2f} "
                  f"{statistics.median(added_cpu) / n * 1000:>24.2f}")
    print("target: added cost <= 5 ms per task (median); 'recording' is the time inside prefect_yprov itself; "
          "'added proc. CPU' is this process's CPU, ours minus plain, per task")


if __name__ == "__main__":
    main()
