"""Read-back API (yp.load): every kind of record comes back from the files alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import yprov_wf as yp
from tests.conftest import NS, only_run_dir, run_python
from yprov_wf.layout import sha256_file


def record_everything(base: Path) -> Path:
    """A workflow of two tasks whose ML run logs every kind of record; returns the workflow run folder."""
    data = base / "data.pt"
    script = base / "train_script.py"
    script.write_text("print('training')\n")
    notes = base / "notes.txt"
    notes.write_text("hello\n")
    with yp.workflow("everything", namespace=NS, save_dir=base / "prov", params={"seed": 7}) as wf:
        with yp.task("prepare", outputs=[data]):
            torch.save(torch.arange(12.0).reshape(3, 4), data)
        with yp.task("train", inputs=[data], params={"lr": 0.5}) as t:
            t.log_output(42, name="answer")
            model = torch.nn.Linear(4, 2)
            with yp.start_run(NS, experiment_name="linear"):
                yp.log_param("epochs", 2)
                yp.log_params({"optimizer": "sgd", "momentum": 0.9})
                yp.log_dataset(torch.load(data), "features", yp.Context.TRAINING)
                for epoch in range(2):
                    yp.log_metric("loss", 1.0 / (epoch + 1), context=yp.Context.TRAINING, step=epoch)
                    yp.log_metric("acc", 0.5 + epoch / 4, context=yp.Context.VALIDATION, step=epoch)
                    yp.log_flops_per_batch("flops", model, torch.zeros(3, 4), yp.Context.TRAINING, step=epoch)
                    yp.save_model_version(model, "linear", yp.Context.TRAINING, step=epoch)
                yp.log_flops_per_epoch("flops_epoch", context=yp.Context.TRAINING, step=1, batch_label="flops")
                yp.log_model(model, "final")
                yp.log_artifact(notes)
                yp.log_artifact(notes, is_input=True, name="input-notes.txt")
                yp.log_source_code(script)
                yp.log_execution_command()
    return wf.dir.root


@pytest.fixture(scope="module")
def everything(tmp_path_factory) -> Path:
    return record_everything(tmp_path_factory.mktemp("everything"))


def test_load_lists_workflows_tasks_and_runs(everything):
    runs = yp.load(everything.parent.parent)
    assert len(runs) == 1
    wf = runs[0]
    assert isinstance(wf, yp.WorkflowRun) and wf.name == "everything" and wf.status == "completed"
    assert wf.params == {"seed": 7} and wf.root == everything
    assert [t.name for t in wf.tasks] == ["prepare", "train"]
    assert [r.experiment for r in wf.runs] == ["linear"]
    assert wf.run("linear") is wf.runs[0] and wf.task("train").runs[0].id == wf.runs[0].id
    train = wf.task("train")
    assert train.params == {"lr": 0.5} and train.status == "completed"
    assert [f.path for f in train.inputs] == [str(everything.parent.parent.parent / "data.pt")]
    assert [f.name for f in train.outputs] == ["answer"]
    # the same run is found from the workflow's folder and from the run folder itself
    assert yp.load(everything)[0].id == wf.id == yp.load(everything.parent)[0].id


def test_run_params_and_metric_series(everything):
    run = yp.load(everything)[0].runs[0]
    assert isinstance(run, yp.MLRun) and run.status == "completed"
    assert run.params == {"epochs": 2, "optimizer": "sgd", "momentum": 0.9}
    loss = run.metric("loss", "training")
    assert isinstance(loss, pd.DataFrame)
    assert list(loss["step"]) == [0, 1] and list(loss["value"]) == [1.0, 0.5]
    assert str(loss["timestamp"].dt.tz) == "UTC"
    acc = run.metric("acc")
    assert list(acc["context"]) == ["validation", "validation"] and list(acc["value"]) == [0.5, 0.75]
    all_points = run.metrics()
    assert set(all_points["key"]) == {"loss", "acc", "flops", "flops_epoch"}
    assert len(all_points) == 2 + 2 + 2 + 1
    assert run.metric("flops_epoch", "training")["value"].tolist() == [2 * (2 * 3 * 4 * 2.0)]  # two batches of 3×4 through Linear(4, 2)
    assert {(s.key, s.context): s.count for s in run.series}[("loss", "training")] == 2
    with pytest.raises(KeyError, match="no metric 'nope'.*loss@training"):
        run.metric("nope")
    with pytest.raises(KeyError, match="'loss' in context 'validation'"):
        run.metric("loss", "validation")


def test_model_versions_models_artifacts_datasets(everything):
    run = yp.load(everything)[0].runs[0]
    versions = run.model_versions
    assert [(v.model_name, v.version, v.step, v.context) for v in versions] == [
        ("linear", 1, 0, "training"), ("linear", 2, 1, "training")]
    for v in versions:
        assert sha256_file(run.path(v.path)) == v.sha256
    (final,) = run.models
    assert final.label == "final" and sha256_file(run.path(final.path)) == final.sha256
    arts = {a.name: a for a in run.artifacts}
    assert set(arts) == {"notes.txt", "input-notes.txt"} and arts["input-notes.txt"].is_input
    assert run.path(arts["notes.txt"].path).read_text() == "hello\n"
    (ds,) = run.datasets
    assert ds.label == "features" and ds.samples == 3 and ds.context == "training"
    (src,) = run.sources
    assert src.name == "train_script.py" and run.path(src.path).read_text() == "print('training')\n"
    assert run.command is not None and run.command.executable == sys.executable
    with pytest.raises(ValueError, match="escapes"):
        run.path("../../outside")


def test_live_run_metrics_come_from_the_log(tmp_path):
    code = (
        "import os, yprov_wf as yp\n"
        f"yp.start_run({NS!r}, 'live', provenance_save_dir='prov', save_after_n_logs=1)\n"
        "for i in range(3): yp.log_metric('loss', float(i), context='training')\n"
        "os._exit(0)\n"  # killed: no end_run, no task file
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    (wf,) = yp.load(tmp_path / "prov")
    run = wf.runs[0]
    assert run.status == "running"
    assert run.metric("loss")["value"].tolist() == [0.0, 1.0, 2.0]


def test_load_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing-folder"):
        yp.load(tmp_path / "missing-folder")
    assert yp.load(tmp_path) == []


def test_notebook_style_without_this_library(everything):
    """The metric file is plain Parquet: pandas reads it without yprov_wf."""
    run = yp.load(everything)[0].runs[0]
    path = run.path(run.record.metrics_file.path)
    out = subprocess.run([sys.executable, "-c", f"import pandas; print(len(pandas.read_parquet({str(path)!r})))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"
    assert only_run_dir(everything.parent.parent) == everything
