"""yProv4ML's three API generations on yprov-wf: namespaces, both argument orders (decided by type, an
error when ambiguous), its keywords (acted on, or one warning naming them), its names, millisecond
timestamps, a rank without a world size, and the first system sample's CPU use."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, only_run_dir, value
from yprov_wf.cli import main as cli


def _bundle(save_dir: Path) -> dict:
    (task_file,) = (only_run_dir(save_dir) / "tasks").glob("*.json")
    return bundle_of(task_file)


def _entities(save_dir: Path, type_name: str) -> dict[str, dict]:
    return by_type(_bundle(save_dir), type_name)


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def _valid(save_dir: Path) -> None:
    root = only_run_dir(save_dir)
    assert (root / "workflow.json").is_file()
    assert cli(["validate", str(root)]) == 0


# -- start_run: namespace and experiment name -----------------------------------------------------------
def test_bare_host_namespace_becomes_https_with_one_warning(save_dir):
    with pytest.warns(yp.CompatibilityWarning, match="'www.example.org' is not an absolute IRI") as seen:
        yp.start_run(prov_user_namespace="www.example.org", experiment_name="ns", provenance_save_dir=save_dir)
    yp.end_run()
    assert len([w for w in seen if issubclass(w.category, yp.CompatibilityWarning)]) == 1
    doc = json.loads((only_run_dir(save_dir) / "workflow.json").read_text())
    assert doc["prefix"]["user"] == "https://www.example.org/"


def test_experiment_name_first_and_no_namespace_falls_back_like_workflow(save_dir, monkeypatch):
    monkeypatch.setenv("YPROV_WF_NAMESPACE", "https://fallback.example/")
    run = yp.start_run("exp", provenance_save_dir=save_dir)  # 2.x/3.x: the first argument is the name
    assert run.info.experiment_name == "exp"
    yp.end_run()
    doc = json.loads((only_run_dir(save_dir) / "workflow.json").read_text())
    assert doc["prefix"]["user"] == "https://fallback.example/"
    with yp.workflow("wf", namespace=NS, save_dir=save_dir / "in-wf"), yp.task("t"):
        yp.start_run(experiment_name="inside")  # no namespace: the workflow's
        yp.end_run()
    (wf_dir,) = (save_dir / "in-wf").glob("*/*")
    assert json.loads((wf_dir / "workflow.json").read_text())["prefix"]["user"] == NS


@pytest.mark.parametrize("args", [("exp", NS), (NS, "exp"), ("exp", "www.example.org"), ("www.example.org", "exp")])
def test_both_positional_orders(save_dir, args, recwarn):
    run = yp.start_run(*args, provenance_save_dir=save_dir)
    assert run.info.experiment_name == "exp"
    yp.end_run()


@pytest.mark.parametrize("args", [("a", "b"), (NS, NS), ("exp.final",)])
def test_ambiguous_positional_names_raise(save_dir, args):
    with pytest.raises(TypeError, match="start_run"):
        yp.start_run(*args, provenance_save_dir=save_dir)
    assert not save_dir.exists()


def test_start_run_keywords_acted_on_or_named_in_one_warning(save_dir):
    with pytest.warns(yp.CompatibilityWarning) as seen:
        yp.start_run(NS, "kw", provenance_save_dir=save_dir, disable_codecarbon=True,
                     metrics_file_type=yp.MetricsType.NETCDF, csv_separator=";", use_compressor=yp.CompressorType.ZIP,
                     use_run_id=3, unify_experiments=True)
    yp.end_run()
    (w,) = [w for w in seen if issubclass(w.category, yp.CompatibilityWarning)]
    text = str(w.message)
    for name in ("metrics_file_type", "csv_separator", "use_compressor", "use_run_id", "unify_experiments"):
        assert f"{name}=" in text
    assert "disable_codecarbon" not in text, "acted on: it turns energy tracking off"
    with pytest.raises(TypeError, match="no_such_keyword"):
        yp.start_run(NS, "kw", provenance_save_dir=save_dir, no_such_keyword=1)


def test_keywords_asking_for_what_is_done_anyway_do_not_warn(save_dir):
    yp.start_run(NS, "quiet", provenance_save_dir=save_dir, csv_separator=",", use_compressor=False)
    yp.log_model("final", _model(), is_input=False)
    yp.save_model_version("v", _model(), incremental=True)
    yp.end_run(create_card=False)  # the filterwarnings=error config fails this test on any warning


def test_end_run_crate_ro_crate_writes_the_crate_and_create_card_warns(save_dir, tmp_path, monkeypatch):
    import zipfile

    monkeypatch.chdir(tmp_path)
    Path("train.py").write_text("print('train')\n")
    yp.start_run(NS, "crated", provenance_save_dir=save_dir)
    yp.log_source_code("train.py")  # the crate's main workflow
    yp.log_metric("loss", 1.0)
    with pytest.warns(yp.CompatibilityWarning, match="create_card="):
        yp.end_run(crate_ro_crate=True, create_card=True)
    root = only_run_dir(save_dir)
    with zipfile.ZipFile(root.with_name(root.name + ".crate.zip")) as z:
        meta = json.loads(z.read("ro-crate-metadata.json"))
    workflow = [e for e in meta["@graph"] if "ComputationalWorkflow" in e.get("@type", [])]
    assert workflow and workflow[0]["@id"].endswith("train.py")


def test_crate_ro_crate_says_what_the_crate_lacks_and_inside_an_open_workflow_waits(save_dir):
    yp.start_run(NS, "no-script", provenance_save_dir=save_dir)
    with pytest.warns(yp.ProvenanceWarning, match="no file of workflow 'no-script' was recorded"):
        yp.end_run(crate_ro_crate=True)
    with yp.workflow("open", namespace=NS, save_dir=save_dir / "wf"), yp.task("t"):
        yp.start_run(experiment_name="inner")
        with pytest.warns(yp.ProvenanceWarning, match="has not ended"):
            yp.end_run(crate_ro_crate=True)
    assert not list((save_dir / "wf").glob("*/*.crate.zip"))


# -- dual-order calls -----------------------------------------------------------------------------------
def test_log_model_in_both_orders_and_layers(save_dir):
    yp.start_run(NS, "models", provenance_save_dir=save_dir)
    yp.log_model(_model(), "first")  # 1.0 / yprov-wf
    yp.log_model("second", _model(), log_model_layers=True)  # 2.x / 3.x
    yp.log_model(_model())  # 1.0's default name
    yp.log_model("third", _model(), None, None, True, True)  # 3.x: (name, model, context, source, info, layers)
    yp.log_model(_model(), "fourth", False)  # 1.0: (model, name, log_model_info)
    with pytest.raises(TypeError, match="log_model"):
        yp.log_model("a", "b")
    with pytest.raises(TypeError, match="log_model"):
        yp.log_model(_model(), _model())
    with pytest.raises(TypeError, match="twice"):
        yp.log_model("x", _model(), model_name="y")
    yp.end_run()
    models = {value(a["ywf:label"]): a for a in _entities(save_dir, "Model").values()}
    assert set(models) == {"first", "second", "default", "third", "fourth"}
    assert "ywf:layerDetails" in models["third"] and "ywf:parameterCount" not in models["fourth"]
    layers = json.loads(value(models["second"]["ywf:layerDetails"]))
    assert layers[0] == {"name": "0", "type": "Linear", "parameters": 15, "dtype": "float32", "in_features": 4,
                         "out_features": 3}
    assert "ywf:layerDetails" not in models["first"]
    assert int(value(models["first"]["ywf:trainingMemoryBytes"])) == 23 * 4 + 8 * 23


def test_save_model_version_in_both_orders_and_checkpoint_paths(save_dir, tmp_path):
    ckpt = tmp_path / "epoch1.ckpt"
    ckpt.write_bytes(b"weights")
    yp.start_run(NS, "versions", provenance_save_dir=save_dir)
    m = _model()
    yp.save_model_version(m, "net", yp.Context.TRAINING, 0)  # 1.0
    yp.save_model_version("net", m, yp.Context.MODELS, 1)  # 2.x
    yp.save_model_version("net", m, yp.Context.MODELS, None, 2)  # 3.x: (context, source, step)
    yp.save_model_version(str(ckpt), "net")  # a checkpoint path and a name: the existing file is the model
    yp.save_model_version("net", str(ckpt))
    with pytest.raises(TypeError, match="neither name an existing file"):
        yp.save_model_version("net", "missing.ckpt")
    yp.end_run()
    versions = sorted((int(value(a["ywf:version"])), value(a.get("ywf:step", -1))) for a in
                      _entities(save_dir, "ModelVersion").values())
    assert [v for v, _ in versions] == [1, 2, 3, 4, 5]
    assert [int(s) for _, s in versions[:3]] == [0, 1, 2]


def test_log_dataset_in_both_orders(save_dir, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    ds = torch.utils.data.TensorDataset(torch.zeros(5, 2))
    yp.start_run(NS, "datasets", provenance_save_dir=save_dir)
    yp.log_dataset(ds, "one")  # 1.0
    yp.log_dataset("two", torch.utils.data.DataLoader(ds, batch_size=2))  # 2.x / 3.x
    yp.log_dataset("three", str(data))  # a label and a file: the file is the dataset
    yp.log_dataset(str(data), "four")
    with pytest.raises(TypeError, match="neither name an existing file"):
        yp.log_dataset("a", "b")
    yp.end_run()
    labels = {value(a["ywf:label"]): a for a in _entities(save_dir, "Dataset").values()}
    assert set(labels) == {"one", "two", "three", "four"}
    assert int(value(labels["two"]["ywf:samples"])) == 5


def test_log_artifact_name_first_and_a_file_named_like_the_label(save_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("report.txt").write_text("report")
    yp.start_run(NS, "artifacts", provenance_save_dir=save_dir)
    yp.log_artifact("report.txt", yp.Context.TRAINING, 3)  # 1.0 / yprov-wf: (path, context, step)
    yp.log_artifact("summary", "report.txt", yp.Context.EVALUATION, 4)  # 2.x: (name, path, context, step)
    with pytest.warns(yp.CompatibilityWarning, match="source="):
        yp.log_artifact("summary3", "report.txt", "evaluation", "my-source", 5)  # 3.x: (…, context, source, step)
    yp.log_artifact(artifact_name="kw", artifact_path="report.txt")
    Path("summary").write_text("a file named like the label")
    with pytest.raises(TypeError, match="both name existing files"):
        yp.log_artifact("summary", "report.txt")
    with pytest.raises(FileNotFoundError, match="neither 'nope' nor 'report2.txt'"):
        yp.log_artifact("nope", "report2.txt")
    yp.end_run()
    names = {value(a["ywf:name"]): a for a in _entities(save_dir, "Artifact").values()}
    assert set(names) == {"report.txt", "summary", "summary3", "kw"}
    assert value(names["summary"]["ywf:context"]) == "evaluation" and int(value(names["summary"]["ywf:step"])) == 4
    assert int(value(names["summary3"]["ywf:step"])) == 5
    assert value(names["report.txt"]["ywf:context"]) == "training"


# -- keywords of log_metric / log_param ------------------------------------------------------------------
def test_metric_source_and_param_context_are_recorded(save_dir):
    yp.start_run(NS, "sources", provenance_save_dir=save_dir)
    yp.log_metric("loss", 0.5, yp.Context.TRAINING, 0, source="my-loss")
    yp.log_metric("gpu", 1.0, yp.Context.TRAINING, 0, yp.LoggingItemKind.SYSTEM_METRIC)  # 3.x: 5th is the source
    yp.log_metric("t", 1.0, None, 0, "std.time", 1_764_590_000_000)  # 3.x: (…, step, source, timestamp)
    yp.log_param("lr", 0.1, yp.Context.TRAINING)
    with pytest.warns(yp.CompatibilityWarning, match="is_input="):
        yp.log_param("bs", 3, is_input=True)
    with pytest.warns(yp.CompatibilityWarning, match="source="):
        yp.log_param("wd", 0.0, "training", "config.yaml", False)  # 3.x: (key, value, context, source, is_input)
    yp.end_run()
    series = {value(a["ywf:key"]): a for a in _entities(save_dir, "MetricSeries").values()}
    assert value(series["loss"]["ywf:metricSource"]) == "my-loss"
    assert value(series["gpu"]["ywf:metricSource"]) == "system"
    assert value(series["t"]["ywf:metricSource"]) == "std.time"
    assert value(series["t"]["ywf:firstTime"]).startswith("2025-12-01")
    params = {value(a["ywf:key"]): a for a in _entities(save_dir, "Parameter").values()}
    assert value(params["lr"]["ywf:context"]) == "training" and "ywf:context" not in params["bs"]


# -- missing names ---------------------------------------------------------------------------------------
def test_yprov4ml_names_exist_and_record(save_dir):
    assert yp.Contexts.TRAINING == yp.Context.TRAINING == "training"
    assert (yp.Context.DATASETS, yp.Context.MODELS) == ("datasets", "models")
    assert yp.MetricsType.ZARR.value == "zarr" and yp.CompressorType.NONE.value is None
    with yp.start_run_ctx(prov_user_namespace=NS, experiment_name="names", provenance_save_dir=save_dir) as run:
        yp.log_execution_start_time()
        ctx = yp.create_context("FINETUNE_LOD2", yp.Context.TRAINING)
        assert yp.Context.FINETUNE_LOD2 is ctx
        yp.log_context("FINETUNE_LOD3", yp.Context.FINETUNE_LOD2)
        yp.log_metric("x", 1.0, yp.Context.FINETUNE_LOD3)
        yp.log_execution_command("python", "train.py")
        yp.log_model_memory_footprint(_model(), "net")
        loss = yp.ProvenanceTrackedFunction(torch.nn.MSELoss(), yp.Context.TRAINING)
        loss(torch.zeros(3), torch.ones(3))
        loss(torch.zeros(3), torch.zeros(3))
        assert yp.get_run_dir() == run.info.provenance_dir
        yp.log_execution_end_time()
    assert run.closed
    bundle = _bundle(save_dir)
    (task,) = by_type(bundle, "TaskRun").values()
    assert json.loads(value(task["ywf:contextHierarchy"])) == {"finetune_lod2": "training",
                                                               "finetune_lod3": "finetune_lod2"}
    params = {value(a["ywf:key"]): value(a["prov:value"]) for a in by_type(bundle, "Parameter").values()}
    assert params["execution_command"] == "python train.py"
    assert params["net_total_params"] in (23, "23")
    assert {"execution_start_time", "execution_end_time", "net_total_memory_load_of_model"} <= set(params)
    series = {value(a["ywf:key"]): a for a in by_type(bundle, "MetricSeries").values()}
    assert int(value(series["MSELoss"]["ywf:count"])) == 2
    assert value(series["MSELoss"]["ywf:metricSource"]) == "MSELoss"
    assert value(series["x"]["ywf:context"]) == "finetune_lod3"


def test_log_provenance_documents_ends_the_run(save_dir):
    run = yp.start_run(NS, "docs", provenance_save_dir=save_dir)
    assert yp.log_provenance_documents() == run.info.provenance_dir
    assert run.closed
    _valid(save_dir)


# -- millisecond timestamps ------------------------------------------------------------------------------
MS = 1_764_590_000_000  # 2025-12-01T11:53:20Z in milliseconds


def test_millisecond_timestamps_are_recognised_and_the_run_is_valid(save_dir, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    yp.start_run(NS, "millis", provenance_save_dir=save_dir)
    # yProv4ML passes time.time() * 1000; times inside the run, as validate's PROV-CONSTRAINTS require
    ms = float(math.ceil(time.time() * 1000) + 1)
    seconds = ms / 1000 + 0.001
    moment = datetime.fromtimestamp(ms / 1000 + 0.002, timezone.utc)
    yp.log_metric("loss", 1.0, timestamp=ms)
    yp.log_metric("loss", 2.0, timestamp=seconds)
    yp.log_metric("loss", 3.0, timestamp=moment)
    yp.log_artifact(str(tmp_path / "a.txt"), timestamp=ms)
    yp.save_model_version(_model(), "net", timestamp=ms)
    time.sleep(0.01)
    yp.end_run()
    _valid(save_dir)
    run = yp.load(only_run_dir(save_dir))[0].runs[0]
    times = [t.timestamp() for t in run.metrics()["timestamp"]]
    assert times == pytest.approx([ms / 1000, seconds, moment.timestamp()], abs=1e-3)
    gen = {r["prov:entity"]: r["prov:time"] for r in _bundle(save_dir)["wasGeneratedBy"].values()}
    at_ms = datetime.fromtimestamp(ms / 1000, timezone.utc)
    assert sum(1 for e, t in gen.items() if ("artifact" in e or "/model/" in e)
               and abs(datetime.fromisoformat(t) - at_ms).total_seconds() < 1e-3) == 2


@pytest.mark.parametrize("bad, why", [(MS * 1000, "too large"), (-5, "negative"), (float("nan"), "not finite")])
def test_impossible_timestamps_are_refused_at_the_call_and_the_run_survives(save_dir, tmp_path, bad, why):
    (tmp_path / "a.txt").write_text("a")
    yp.start_run(NS, "bad-times", provenance_save_dir=save_dir)
    yp.log_metric("loss", 1.0)
    with pytest.raises(ValueError, match=why):
        yp.log_metric("loss", 2.0, timestamp=bad)
    with pytest.raises(ValueError, match=f"artifact timestamp .*{why}"):
        yp.log_artifact(str(tmp_path / "a.txt"), timestamp=bad)
    with pytest.raises(ValueError, match=why):
        yp.save_model_version(_model(), "net", timestamp=bad)
    yp.end_run()
    _valid(save_dir)
    assert len(yp.load(only_run_dir(save_dir))[0].runs[0].metrics()) == 1
    assert cli(["recover", str(only_run_dir(save_dir))]) in (0, 2)  # nothing to recover; never a crash


# -- distributed ranks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env", [{}, {"SLURM_PROCID": "1"}, {"RANK": "1"}])
def test_a_rank_without_a_world_size_is_recorded_as_given(save_dir, monkeypatch, env):
    for name in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, v in env.items():
        monkeypatch.setenv(name, v)
    kwargs = {} if env else {"rank": 1}
    yp.start_run(NS, "rank1", provenance_save_dir=save_dir, collect_all_processes=True, **kwargs)
    yp.log_metric("loss", 1.0)
    yp.end_run()
    _valid(save_dir)
    (run,) = by_type(_bundle(save_dir), "MLRun").values()
    assert int(value(run["ywf:rank"])) == 1 and "ywf:worldSize" not in run


# -- system metrics --------------------------------------------------------------------------------------
def test_first_system_sample_reports_the_cpu_use_since_the_run_started(save_dir):
    yp.start_run(NS, "cpu", provenance_save_dir=save_dir)
    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of this process's CPU
        pass
    yp.log_system_metrics()
    yp.end_run()
    first = yp.load(only_run_dir(save_dir))[0].runs[0].metrics().set_index("key")["value"]
    assert first["process_cpu_usage"] > 0 and first["cpu_usage"] > 0


# -- ProvMLLogger (Lightning) ----------------------------------------------------------------------------
def _fit(logger, root: Path) -> None:
    import lightning as L

    from tests.test_lightning import DigitsMlp, _loaders

    train, val, _ = _loaders()
    trainer = L.Trainer(max_epochs=1, logger=[logger], enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=2, default_root_dir=root, accelerator="cpu")
    trainer.fit(DigitsMlp(), train, val)


def test_provml_logger_records_into_the_run_the_user_started(save_dir, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run = yp.start_run(NS, "user-run", provenance_save_dir=save_dir)
        yp.log_param("before_fit", 1)
        logger = yp.ProvMLLogger()
        _fit(logger, tmp_path)
        assert not run.closed, "the user's run is left for their end_run"
        yp.log_metric("after_fit", 1.0)
        yp.end_run()
    assert logger.runs == [run.info]
    bundle = _bundle(save_dir)
    assert len(by_type(bundle, "MLRun")) == 1
    keys = {value(a["ywf:key"]) for a in by_type(bundle, "MetricSeries").values()}
    assert {"train_loss", "after_fit"} <= keys
    assert {"before_fit", "lr", "hidden"} <= {value(a["ywf:key"]) for a in by_type(bundle, "Parameter").values()}


def test_provml_logger_without_a_run_opens_its_own_under_the_default_namespace(tmp_path, monkeypatch):
    import warnings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YPROV_WF_NAMESPACE", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.warns(yp.CompatibilityWarning, match="flush_logs_every_n_steps="):
            logger = yp.ProvMLLogger(name="own", flush_logs_every_n_steps=10, provenance_save_dir="prov")
        _fit(logger, tmp_path)
    (info,) = logger.runs
    assert info.experiment_name == "own"
    _valid(tmp_path / "prov")
