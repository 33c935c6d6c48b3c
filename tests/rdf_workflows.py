"""Real workflow runs for the RDF tests: several tasks with data flow, several ML runs, model versions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import yprov_wf as yp

NS = "https://example.org/rdf-test/"


class TinyModel:
    """A picklable stand-in for a model (yprov-wf pickles objects without a torch state_dict)."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights


def make_pipeline(root: Path, lrs: tuple[float, ...] = (0.1, 0.01)) -> Path:
    """prepare (writes a split file) → one train task per learning rate (an ML run each, with params, a
    dataset, loss/accuracy series, two model versions and a final model; the model file is the task output)
    → evaluate (reads the best model file, an ML run with test_accuracy). Returns the save dir."""
    save_dir = root / "prov"
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        Path("raw.csv").write_text("x,y\n1,2\n3,4\n")
        with yp.workflow("pipe", namespace=NS, save_dir=save_dir, params={"seed": 7}):
            with yp.task("prepare", inputs=["raw.csv"]) as t:
                Path("split.npz").write_bytes(b"split-data")
                t.log_param("test_size", 0.25)
                t.log_output("split.npz")
            models = []
            for lr in lrs:
                with yp.task("train", inputs=["split.npz"]) as t:
                    with yp.start_run(NS, "mlp"):
                        yp.log_params({"lr": lr, "epochs": 2, "optimizer": "Adam"})
                        yp.log_dataset(np.arange(20).reshape(10, 2), "digits_train", yp.Context.TRAINING)
                        model = TinyModel([lr])
                        for epoch in range(2):
                            yp.log_metric("loss", lr / (epoch + 1), yp.Context.TRAINING, step=epoch)
                            yp.log_metric("accuracy", 1 - lr / (epoch + 2), yp.Context.VALIDATION, step=epoch)
                            model.weights.append(epoch)
                            yp.save_model_version(model, "mlp", yp.Context.TRAINING, step=epoch)
                        yp.log_model(model, "mlp_final")
                    out = Path(f"model_lr{lr}.bin")
                    out.write_bytes(f"model {lr}".encode())
                    t.log_output(out)
                    models.append(out)
            with yp.task("evaluate", inputs=[models[-1]]):
                with yp.start_run(NS, "evaluation"):
                    yp.log_metric("test_accuracy", 0.97, yp.Context.EVALUATION)
    finally:
        os.chdir(cwd)
    return save_dir
