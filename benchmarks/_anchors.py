"""Anchor environments (yProv4ML, MLflow) and the subprocess workers that measure them.

Each anchor lives in its own virtual environment under ``<repo>/.bench/venvs/<name>``, built with uv.
Nothing of an anchor is imported in a benchmark's main process: every measurement, ours included,
runs in a fresh worker subprocess that prints one ``BENCH_RESULT {json}`` line on stdout.

``python benchmarks/_anchors.py`` builds the venvs and prints the pins;
``python benchmarks/_anchors.py --probe`` redoes the yProv4ML version search in throwaway venvs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import RESULT_TAG

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"
VENVS = BENCH_DIR / "venvs"
TMP_DIR = BENCH_DIR / "tmp"
WHEELS = Path("/opt/wheels")  # local CPU torch wheel; uv ignores pip's find-links, so we pass it
_PY = "3.11"


@dataclass(frozen=True)
class Anchor:
    """A pinned anchor library: what to install, which distribution to report, and why this pin."""

    name: str
    requirements: tuple[str, ...]
    why: str
    env: dict[str, str] = field(default_factory=dict)


YPROV4ML = Anchor(
    name="yprov4ml",
    # xarray is imported by yprov4ml 3.2.4 but not declared; torch pinned to the local CPU wheel
    # (a loose torch spec pulls several GB of CUDA packages).
    requirements=("yprov4ml==3.2.4", "xarray==2026.9.0", "torch==2.13.0"),
    why=(
        "newest PyPI release importable on Python 3.11: 3.2.5-3.2.8 fail with "
        "\"SyntaxError: f-string: expecting '}'\" in yprov4ml/prov2card.py (nested quotes, "
        "Python 3.12+ syntax; no dependency fixes that); 3.2.4 imports once the undeclared "
        "xarray is installed; start_run/log_metric/end_run work (Context is gone: context is "
        "a plain string)"
    ),
)
MLFLOW = Anchor(
    name="mlflow",
    requirements=("mlflow==3.17.2",),
    why=(
        "newest 3.x that resolves: mlflow 3.18.0 requires mlflow-skinny==3.18.0, absent from "
        "PyPI; the file store needs MLFLOW_ALLOW_FILE_STORE=true since it is in maintenance mode"
    ),
    env={
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
    },
)
ANCHORS = {a.name: a for a in (YPROV4ML, MLFLOW)}


@dataclass(frozen=True)
class Target:
    """One library to measure: its name as workers know it, the interpreter, extra environment."""

    lib: str
    python: str
    env: dict[str, str]
    label: str


_SEEN_WARNINGS: set[tuple[str, str]] = set()


class WorkerError(RuntimeError):
    """A worker subprocess failed or printed no result."""


def _uv() -> str:
    """Path to uv; installs it under .bench/uv with pip when it is not on PATH."""
    found = shutil.which("uv")
    if found:
        return found
    target = BENCH_DIR / "uv"
    local = target / "bin" / "uv"
    if not local.exists():
        for python in (sys.executable, shutil.which("python3") or "python3"):
            probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True)
            if probe.returncode == 0:
                cmd = [python, "-m", "pip", "install", "-q", "--target", str(target), "uv"]
                subprocess.run(cmd, check=True)
                break
    if not local.exists():
        raise RuntimeError("uv is not on PATH and could not be installed with pip")
    return str(local)


def _dist_version(python: Path, dist: str) -> str:
    """Installed version of a distribution inside a venv, without importing it."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_venv(venv: Path, requirements: tuple[str, ...]) -> Path:
    """Create (or reuse, when its stamp matches) a Python 3.11 venv holding the requirements."""
    python = venv / "bin" / "python"
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    uv = _uv()
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _ignore_bench_dir()
    subprocess.run([uv, "venv", "-q", "-p", _PY, str(venv)], check=True)
    install = [uv, "pip", "install", "-q", "--python", str(python)]
    if WHEELS.is_dir():
        install += ["--find-links", str(WHEELS)]
    subprocess.run(install + list(requirements), check=True)
    stamp.write_text(wanted)
    return python


def _ignore_bench_dir() -> None:
    """Make .bench ignore itself, so venvs never end up in a commit."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    ignore = BENCH_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")


def ensure_anchor(anchor: Anchor) -> Target:
    """Build the anchor's venv if needed, print the pinned version and why, return its target."""
    print(f"[anchors] preparing {anchor.name} ({', '.join(anchor.requirements)}) ...", flush=True)
    python = build_venv(VENVS / anchor.name, anchor.requirements)
    version = _dist_version(python, anchor.name)
    print(f"[anchors] {anchor.name} {version}: {anchor.why}", flush=True)
    return Target(anchor.name, str(python), dict(anchor.env), f"{anchor.name} {version}")


def ours() -> Target:
    """Our library, run by this interpreter (the project's .venv) with the repo on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return Target("yprov_wf", sys.executable, {"PYTHONPATH": path}, "yprov-wf")


def targets(anchor_names: list[str]) -> list[Target]:
    """Ours first, then each requested anchor whose venv could be built (failures are printed)."""
    found = [ours()]
    for name in anchor_names:
        try:
            found.append(ensure_anchor(ANCHORS[name]))
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            print(f"[anchors] {name}: could not build its venv ({exc}); skipped", flush=True)
    return found


def run_rounds(script: Path, jobs: list[tuple[str, Target, dict[str, Any]]], rounds: int, label: str = "round",
               timeout: float = 3600) -> dict[str, list[Any]]:
    """Run every (name, target, spec) job in a fresh worker once per round, interleaved so that load
    changes hit every job alike; a job that fails is reported and dropped."""
    results: dict[str, list[Any]] = {name: [] for name, _, _ in jobs}
    alive = list(jobs)
    for r in range(rounds):
        for job in list(alive):
            name, target, spec = job
            t0 = time.perf_counter()
            try:
                results[name].append(run_worker(script, target, spec, timeout=timeout))
            except WorkerError as exc:
                print(f"[{label} {r + 1}] {name} FAILED, dropped:\n{exc}", flush=True)
                alive.remove(job)
                continue
            print(f"[{label} {r + 1}/{rounds}] {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return results


def run_worker(script: Path, target: Target, spec: dict[str, Any], timeout: float = 3600) -> Any:
    """Run ``script --worker SPEC`` with the target's interpreter; return its parsed result."""
    payload = json.dumps({**spec, "lib": target.lib})
    return run_python(target, [str(script.resolve()), "--worker", payload], timeout)


def run_python(target: Target, args: list[str], timeout: float = 3600) -> Any:
    """Run the target's interpreter with ``args`` in a scratch cwd under .bench/tmp.

    Returns the JSON of the last ``BENCH_RESULT`` line on stdout.
    """
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    _ignore_bench_dir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(target.env)
    with tempfile.TemporaryDirectory(prefix="run-", dir=TMP_DIR) as cwd:
        cmd = [target.python, *args]
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise WorkerError(f"{target.label} worker exited {proc.returncode}:\n{tail}")
    result = json.loads(lines[-1][len(RESULT_TAG) :])
    for text in result.pop("warnings", []) if isinstance(result, dict) else []:
        if (target.lib, text) not in _SEEN_WARNINGS:
            _SEEN_WARNINGS.add((target.lib, text))
            print(f"[warning from {target.label}] {text}", flush=True)
    return result


_PROBE = """
import os, yprov4ml
d = os.path.join(os.getcwd(), "prov")
yprov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="probe",
                   provenance_save_dir=d, save_after_n_logs=100)
ctx = yprov4ml.Context.TRAINING if hasattr(yprov4ml, "Context") else "training"
for i in range(250):
    yprov4ml.log_metric("loss", 0.5, context=ctx, step=i)
yprov4ml.end_run()
print("OK", sum(len(f) for _, _, f in os.walk(d)), "files")
"""


def probe_yprov4ml(versions: list[str], extras: tuple[str, ...] = ("torch==2.13.0",)) -> None:
    """Try each yProv4ML version (newest first) in a throwaway venv; print how each one fails."""
    for version in versions:
        venv = BENCH_DIR / "probe" / f"yprov4ml-{version}"
        try:
            python = build_venv(venv, (f"yprov4ml=={version}", *extras))
        except subprocess.CalledProcessError as exc:
            print(f"yprov4ml {version}: install failed ({exc})")
            continue
        with tempfile.TemporaryDirectory(dir=BENCH_DIR) as cwd:
            proc = subprocess.run([str(python), "-c", _PROBE], cwd=cwd, capture_output=True, text=True)
        last = (proc.stdout.strip() or proc.stderr.strip()).splitlines()[-1:]
        print(f"yprov4ml {version}: {last[0] if last else proc.returncode}", flush=True)
        shutil.rmtree(venv)


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe", nargs="*", metavar="VERSION", help="probe yprov4ml versions")
    args = parser.parse_args()
    if args.probe is not None:
        probe_yprov4ml(args.probe or ["3.2.8", "3.2.7", "3.2.6", "3.2.5", "3.2.4", "3.2.3"])
        return
    for anchor in ANCHORS.values():
        ensure_anchor(anchor)


if __name__ == "__main__":
    _main()
