"""The digits pipeline in plain Python: prepare → train (a nested ML run) → evaluate.

Uses scikit-learn's bundled digits images (no download) and a small PyTorch MLP. Run it with
``python example_workflows/plain_digits/pipeline.py [--save-dir prov] [--epochs 5]``; it prints where
the provenance went and the tree that ``yprov-wf show`` prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import yprov_wf as yp

NAMESPACE = "https://example.org/digits/"


def prepare(work: Path, seed: int) -> Path:
    """Split and scale the digits images; save the arrays the next tasks read."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=seed,
                                                        stratify=digits.target)
    out = work / "digits_split.npz"
    np.savez(out, x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test)
    return out


def train(split: Path, model_path: Path, lr: float, epochs: int, seed: int) -> None:
    """Train an MLP inside a nested ML run: params, per-step loss, per-epoch validation accuracy,
    a model version per epoch, system metrics, and the final model."""
    torch.manual_seed(seed)
    data = np.load(split)
    train_set = TensorDataset(torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"]).long())
    loader = DataLoader(train_set, batch_size=64, shuffle=True)
    x_val, y_val = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"]).long()
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)

    with yp.start_run(prov_user_namespace=NAMESPACE, experiment_name="mlp"):
        yp.log_params({"lr": lr, "epochs": epochs, "batch_size": 64, "seed": seed, "optimizer": "Adam"})
        yp.log_dataset(loader, "digits_train", yp.Context.TRAINING)
        yp.log_dataset(data["x_test"], "digits_validation", yp.Context.VALIDATION)
        step = 0
        for epoch in range(epochs):
            model.train()
            for xb, yb in loader:
                optimiser.zero_grad()
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                optimiser.step()
                yp.log_metric("loss", loss.item(), context=yp.Context.TRAINING, step=step)
                step += 1
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
            yp.log_metric("accuracy", accuracy, context=yp.Context.VALIDATION, step=epoch)
            yp.log_system_metrics(yp.Context.TRAINING, step=epoch)
            yp.save_model_version(model, "mlp", yp.Context.TRAINING, step=epoch)
        yp.log_current_execution_time("training_time", yp.Context.TRAINING)
        yp.log_model(model, "mlp_final")
    torch.save(model.state_dict(), model_path)


def evaluate(split: Path, model_path: Path) -> float:
    data = np.load(split)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    model.load_state_dict(torch.load(model_path))
    with torch.no_grad():
        pred = model(torch.from_numpy(data["x_test"])).argmax(1).numpy()
    accuracy = float((pred == data["y_test"]).mean())
    with yp.start_run(prov_user_namespace=NAMESPACE, experiment_name="evaluation"):
        yp.log_metric("test_accuracy", accuracy, context=yp.Context.EVALUATION)
    return accuracy


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save-dir", type=Path, default=Path("prov"), help="provenance folder (default: prov)")
    parser.add_argument("--work-dir", type=Path, default=Path("build/plain_digits"), help="data and model files")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    split = args.work_dir / "digits_split.npz"
    model_path = args.work_dir / "mlp.pt"

    with yp.workflow("digits", namespace=NAMESPACE, save_dir=args.save_dir, params={"seed": args.seed}) as wf:
        with yp.task("prepare", outputs=[split], params={"seed": args.seed}):
            prepare(args.work_dir, args.seed)
        with yp.task("train", inputs=[split], outputs=[model_path], params={"lr": args.lr}):
            train(split, model_path, args.lr, args.epochs, args.seed)
        with yp.task("evaluate", inputs=[split, model_path]):
            accuracy = evaluate(split, model_path)
    print(f"test accuracy: {accuracy:.3f}")
    print(f"provenance: {wf.dir.root}")
    return wf.dir.root


if __name__ == "__main__":
    from yprov_wf.cli import main as cli

    root = main()
    cli(["show", str(root)])
