"""The digits pipeline as a Prefect flow with provenance: load → split and scale → train (one nested
PyTorch ML run per learning rate, in parallel) → evaluate → summarise.

Run it with one command from the repository root (the first Prefect start on a machine creates
Prefect's database, which takes about half a minute):

    .venv/bin/python example_workflows/prefect_digits/flow.py [--save-dir prov] [--epochs 5]

The only provenance-specific line is the import of ``flow`` and ``task`` from ``prefect_yprov``;
the training code itself is the plain example's (``example_workflows/plain_digits/pipeline.py``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Quiet, local, first-start-safe Prefect settings (each can be overridden from the environment).
os.environ.setdefault("PREFECT_HOME", str(REPO / "build" / "prefect-home"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)  # Prefect's database goes here

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from prefect import unmapped  # noqa: E402
from prefect_yprov import flow, task  # noqa: E402  (instead of: from prefect import flow, task)
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import yprov_wf as yp  # noqa: E402


def _plain_pipeline():
    """The plain example's module: its train() and evaluate() are reused here unchanged."""
    spec = importlib.util.spec_from_file_location("plain_digits_pipeline",
                                                  REPO / "example_workflows" / "plain_digits" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


pipeline = _plain_pipeline()
NAMESPACE = pipeline.NAMESPACE


@task
def load() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled 8x8 digits images (no download) and their labels."""
    digits = load_digits()
    return digits.data, digits.target


@task
def split_and_scale(images: np.ndarray, labels: np.ndarray, work_dir: str, seed: int) -> str:
    """Scale pixels to [0, 1], split 75/25 stratified, and save the arrays the training reads."""
    x = (images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, labels, test_size=0.25, random_state=seed,
                                                        stratify=labels)
    out = Path(work_dir) / "digits_split.npz"
    np.savez(out, x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test)
    yp.current_task().log_output(out, name="split")  # the file, with its sha256
    return str(out)


@task(retries=1)
def train(split: str, lr: float, epochs: int, seed: int) -> str:
    """The plain example's training: a nested ML run with params, per-step loss, per-epoch validation
    accuracy, system metrics and a model version per epoch."""
    yp.current_task().log_input(Path(split), name="split")
    model_path = Path(split).with_name(f"mlp-lr{lr}.pt")
    pipeline.train(Path(split), model_path, lr, epochs, seed)
    yp.current_task().log_output(model_path, name="model")
    return str(model_path)


@task
def evaluate(split: str, model_path: str) -> float:
    """Test accuracy of one trained model (a small ML run of its own)."""
    yp.current_task().log_input(Path(model_path), name="model")
    return pipeline.evaluate(Path(split), Path(model_path))


@task
def summarise(lrs: list[float], accuracies: list[float], models: list[str]) -> dict:
    """The best learning rate, its test accuracy and its model file."""
    best = int(np.argmax(accuracies))
    return {"best_lr": lrs[best], "test_accuracy": accuracies[best], "model": models[best]}


@flow(name="prefect-digits", namespace=NAMESPACE, system_metrics_interval=1.0, energy=True)
def digits_flow(work_dir: str = "build/prefect_digits", lrs: tuple[float, ...] = (0.01, 0.003),
                epochs: int = 5, seed: int = 0) -> dict:
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    images, labels = load()
    split = split_and_scale(images, labels, work_dir, seed)
    models = train.map(unmapped(split), lr=list(lrs), epochs=epochs, seed=seed)  # one task run per lr, in parallel
    accuracies = evaluate.map(unmapped(split), models)
    summary = summarise(list(lrs), accuracies, models)
    run = yp.current_workflow()
    return {**summary, "provenance": str(run.dir.root) if run is not None else None}


def report(summary: dict) -> None:
    """Print the tasks with their status, the best validation accuracy, and where the provenance went."""
    from yprov_wf.prov.reading import read_task_file

    root = Path(summary["provenance"])
    tasks = sorted((read_task_file(p) for p in (root / "tasks").glob("*.json")), key=lambda t: t.started)
    print("tasks:")
    best = None
    for t in tasks:
        extra = " (cache hit)" if t.attributes.get("cacheHit") else ""
        print(f"  {t.name:<16} attempt {t.attempt}  {t.status}{extra}")
        for run in t.runs:
            for s in run.series:
                if s.key == "accuracy" and s.context == "validation" and (best is None or s.maximum > best[0]):
                    best = (s.maximum, t.name, run.run_id)
    if best is not None:
        print(f"best validation accuracy: {best[0]:.3f} (run {best[2]})")
    print(f"best learning rate: {summary['best_lr']}  test accuracy: {summary['test_accuracy']:.3f}")
    print(f"provenance: {root}  (workflow.json + one bundle per task in tasks/)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save-dir", type=Path, default=Path("prov"), help="provenance folder (default: prov)")
    parser.add_argument("--work-dir", default="build/prefect_digits", help="data and model files")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    configured = digits_flow.with_options(save_dir=args.save_dir)
    summary = configured(work_dir=args.work_dir, epochs=args.epochs, seed=args.seed)
    report(summary)
    return summary


if __name__ == "__main__":
    main()
