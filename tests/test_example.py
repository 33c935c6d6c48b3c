"""The plain-Python digits example runs end to end on real data and produces valid provenance."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.conftest import REPO, bundle_of, by_type, load, only_run_dir, relations
from yprov_wf.cli import main as cli


def test_plain_digits_pipeline_end_to_end(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "example_workflows" / "plain_digits" / "pipeline.py"),
         "--save-dir", "prov", "--work-dir", "work", "--epochs", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.8, "a real model trained on the real digits data"
    root = only_run_dir(tmp_path / "prov")
    assert f"provenance: prov/digits/{root.name}" in result.stdout
    assert cli(["validate", str(root)]) == 0
    wf = load(root / "workflow.json")
    tasks = {a["ywf:name"]: i for i, a in by_type(wf, "TaskRun").items()}
    assert set(tasks) == {"prepare", "train", "evaluate"}
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(wf, "wasInformedBy")}
    assert informed == {(tasks["train"], tasks["prepare"]), (tasks["evaluate"], tasks["prepare"]),
                        (tasks["evaluate"], tasks["train"])}
    train = bundle_of(next(root.glob("tasks/train-*.json")))
    assert len(by_type(train, "ModelVersion")) == 2
    datasets = {a["ywf:label"]: a for a in by_type(train, "Dataset").values()}
    assert int(datasets["digits_train"]["ywf:samples"]["$"]) == 1347  # 75% of 1797 digits
    df = pd.read_parquet(next(root.glob("metrics/mlp-*.parquet")))
    assert len(df[df.key == "loss"]) == 2 * 22  # 1347 samples / batch 64 = 22 steps per epoch
    assert len(df[df.key == "accuracy"]) == 2
