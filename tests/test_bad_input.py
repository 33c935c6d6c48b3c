"""Every bad input named in the core issue raises a clear error, or degrades with one warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, only_run_dir, value


def test_non_numeric_metric_raises_type_error_naming_the_key(save_dir):
    with yp.start_run(NS, "bad", provenance_save_dir=save_dir):
        for bad in ("0.5", None, [1.0], torch.ones(3)):
            with pytest.raises(TypeError, match="'loss'"):
                yp.log_metric("loss", bad)
        with pytest.raises(TypeError, match="'loss'.*step"):
            yp.log_metric("loss", 1.0, step="three")
        yp.log_metric("loss", 1.0)  # the store is still consistent after the errors
    df = pd.read_parquet(next(only_run_dir(save_dir).glob("metrics/*.parquet")))
    assert df.value.tolist() == [1.0] and df.step.tolist() == [0]


@pytest.mark.parametrize("key", ["acc/top-1", "loss per batch", "pérdida ☃", "../../escape", "a" * 300])
def test_awkward_metric_keys_are_kept(save_dir, key):
    with yp.start_run(NS, "keys", provenance_save_dir=save_dir) as run:
        for i in range(150):  # past the first flush (yProv4ML crashed on the 100th call)
            yp.log_metric(key, float(i))
    root = run.info.provenance_dir
    df = pd.read_parquet(next(root.glob("metrics/*.parquet")))
    assert set(df.key) == {key} and len(df) == 150
    (series,) = by_type(bundle_of(next(root.glob("tasks/*.json"))), "MetricSeries").values()
    assert series["ywf:key"] == key
    assert all(p.resolve().is_relative_to(save_dir.resolve()) for p in save_dir.rglob("*"))


def test_param_changed_value_raises_equal_value_is_a_no_op(save_dir):
    with yp.start_run(NS, "params", provenance_save_dir=save_dir) as run:
        yp.log_param("lr", 0.1)
        yp.log_param("lr", 0.1)
        with pytest.raises(ValueError, match="'lr'"):
            yp.log_param("lr", 0.2)
    params = by_type(bundle_of(next(run.info.provenance_dir.glob("tasks/*.json"))), "Parameter")
    assert len(params) == 1


def test_non_json_param_is_a_readable_typed_string(save_dir):
    class Scheduler:
        pass

    with yp.start_run(NS, "params", provenance_save_dir=save_dir) as run:
        yp.log_param("scheduler", Scheduler())
        yp.log_param("weights", torch.zeros(3, 4))
        yp.log_param("layers", [64, 32])
        yp.log_param("fn", print)
    params = {a["ywf:key"]: a for a in by_type(
        bundle_of(next(run.info.provenance_dir.glob("tasks/*.json"))), "Parameter").values()}
    for a in params.values():
        assert "0x" not in str(value(a["prov:value"]))
    assert "Scheduler" in value(params["scheduler"]["prov:value"])
    assert value(params["weights"]["prov:value"]) == "torch.Tensor(shape=[3, 4], dtype=torch.float32)"
    assert json.loads(value(params["layers"]["prov:value"])) == [64, 32]
    assert params["weights"]["ywf:valueType"] == "torch.Tensor"


def test_artifact_outside_allowed_folders_or_missing(save_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with yp.start_run(NS, "art", provenance_save_dir=save_dir):
        with pytest.raises(FileNotFoundError, match="nope.txt"):
            yp.log_artifact("nope.txt")
        with pytest.raises(ValueError, match="outside the allowed folders"):
            yp.log_artifact("/etc/hostname")
        with pytest.raises(TypeError):
            yp.log_artifact(42)


def test_artifact_roots_option_allows_a_folder(save_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YPROV_WF_ARTIFACT_ROOTS", "/etc")
    with yp.start_run(NS, "art", provenance_save_dir=save_dir):
        copy = yp.log_artifact("/etc/hostname")
    assert copy.read_bytes() == Path("/etc/hostname").read_bytes()


def test_unwritable_provenance_folder_warns_once_and_training_goes_on(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the folder should be")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with yp.workflow("w", namespace=NS, save_dir=blocker / "prov"), yp.task("train"):
            with yp.start_run(NS, "run"):
                for i in range(1000):
                    yp.log_metric("loss", 1.0 / (i + 1))
                yp.log_param("lr", 0.1)
                yp.save_model_version(torch.nn.Linear(2, 2), "m")
    ours = [w for w in caught if issubclass(w.category, yp.ProvenanceWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "not-a-dir" in str(ours[0].message)


def test_bad_namespace_and_names(save_dir):
    with pytest.raises(ValueError, match="'not an iri' is not an absolute IRI"):  # a bare host is rewritten
        yp.start_run(prov_user_namespace="not an iri", experiment_name="x", provenance_save_dir=save_dir)
    with pytest.raises(ValueError, match="workflow name"):
        yp.workflow("", namespace=NS)
    with pytest.raises(TypeError, match="source_dir must be a folder path, got int"):
        yp.workflow("w", namespace=NS, source_dir=3)
    with pytest.raises(TypeError):
        yp.task(3)
    with pytest.raises(ValueError, match="save_after_n_logs"):
        yp.start_run(NS, "x", provenance_save_dir=save_dir, save_after_n_logs=0)
    assert not save_dir.exists(), "a refused start_run opens nothing"
    with pytest.raises(ValueError, match="context"):
        yp.Context("not a context!")
    with pytest.raises(FileNotFoundError, match="missing.csv"), yp.task("t", inputs=["missing.csv"],
                                                                      save_dir=save_dir):
        pass
    with yp.task("t2", namespace=NS, save_dir=save_dir) as t:
        with pytest.raises(FileNotFoundError, match="data file or folder 'gone.csv' not found"):
            t.log_input("gone.csv")


def test_log_without_a_run_raises(save_dir):
    with pytest.raises(yp.NoActiveRunError):
        yp.log_metric("x", 1.0)
    with pytest.raises(yp.NoActiveRunError):
        yp.log_param("x", 1.0)


def test_nested_start_run_raises(save_dir):
    with yp.start_run(NS, "outer", provenance_save_dir=save_dir):
        with pytest.raises(RuntimeError, match="still active"):
            yp.start_run(NS, "inner", provenance_save_dir=save_dir)


def test_secrets_from_the_environment_never_reach_a_file(tmp_path):
    from tests.conftest import run_python

    secret = "s3cr3t-VALUE-1234"
    code = f"""
import sys, yprov_wf as yp
sys.argv = ["train.py", "--api-token={secret}", "--password", "{secret}", "--lr", "0.1",
            "https://user:{secret}@example.org/data"]
with yp.workflow("w", namespace="https://example.org/", save_dir="prov",
                 env_vars=["MY_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "HOME"]):
    with yp.start_run("https://example.org/", "r"):
        yp.log_metric("x", 1.0)
"""
    result = run_python(code, tmp_path, env={"MY_API_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret})
    assert result.returncode == 0, result.stderr
    files = [p for p in (tmp_path / "prov").rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert secret.encode() not in p.read_bytes(), p
    wf = (only_run_dir(tmp_path / "prov") / "workflow.json").read_text()
    assert "--lr 0.1" in wf and "ywf:env_HOME" in wf and "***" in wf


def test_task_attributes_cannot_replace_built_in_ones():
    with pytest.raises(ValueError, match="'status' is reserved"):
        yp.task("t", attributes={"status": "weird"})
    with pytest.raises(ValueError, match="identifier"):
        yp.task("t", attributes={"not an identifier": 1})
