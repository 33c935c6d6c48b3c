"""The workflow → task → ML run hierarchy, written as PROV-JSON that `prov` reads, round-trips and
converts to TriG with every bundle as a named graph."""

from __future__ import annotations

import asyncio
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import prov
import pytest
import rdflib
import torch
from prov.model import ProvDocument
from torch.utils.data import DataLoader, Subset, TensorDataset

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, load, only_run_dir, relations, types, value


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _pipeline(tmp_path: Path, save_dir: Path) -> Path:
    raw = tmp_path / "raw.csv"
    raw.write_text("x,y\n1,2\n3,4\n")
    prepared = tmp_path / "prepared.npy"
    with yp.workflow("digits", namespace=NS, save_dir=save_dir, params={"seed": 7}) as wf:
        with yp.task("prepare", inputs=[raw], outputs=[prepared], params={"scale": 0.5}):
            np.save(prepared, np.arange(12, dtype=np.float32).reshape(3, 4))
        with yp.task("train", inputs=[prepared]):
            yp.start_run(prov_user_namespace=NS, experiment_name="mlp")
            yp.log_param("lr", 0.01)
            model = _model()
            for epoch in range(3):
                for step in range(10):
                    yp.log_metric("loss", 1.0 / (1 + step + 10 * epoch), context=yp.Context.TRAINING,
                                  step=step + 10 * epoch)
                yp.log_metric("accuracy", 0.5 + epoch / 10, context=yp.Context.VALIDATION, step=epoch)
                yp.save_model_version(model, "mlp", yp.Context.TRAINING, epoch)
            yp.log_model(model, "mlp_final")
            yp.end_run()
    return wf.dir.root


def test_files_follow_the_design_layout(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    assert root == only_run_dir(save_dir)
    assert root.parent.name == "digits"
    assert (root / "workflow.json").is_file()
    tasks = sorted(p.name for p in (root / "tasks").iterdir())
    assert len(tasks) == 2 and tasks[0].startswith("prepare-") and tasks[1].startswith("train-")
    assert len(list((root / "metrics").glob("*.parquet"))) == 1
    assert not (root / "journal").exists(), "journals are removed once the files are final"
    assert not list(root.rglob("*.ylog")) and not list(root.rglob("*.tmp"))


def test_every_file_loads_round_trips_and_converts_to_trig(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    for f in [root / "workflow.json", *sorted((root / "tasks").glob("*.json"))]:
        doc = prov.read(str(f), format="json")
        again = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
        assert again == doc, f
        trig = doc.serialize(format="rdf", rdf_format="trig")
        ds = rdflib.Dataset()
        ds.parse(data=trig, format="trig")
        named = {str(g.identifier) for g in ds.graphs() if g.identifier != rdflib.graph.DATASET_DEFAULT_GRAPH_ID}
        assert named == {str(b.identifier.uri) for b in doc.bundles}
        if f.parent.name == "tasks":
            assert len(named) == 1


def test_bundles_are_members_of_the_workflow_collection(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    wf = load(root / "workflow.json")
    (coll,) = by_type(wf, "TaskCollection")
    assert "prov:Collection" in types(wf["entity"][coll])
    members = {r["prov:entity"] for r in relations(wf, "hadMember") if r["prov:collection"] == coll}
    task_bundles = {next(iter(load(f)["bundle"])) for f in (root / "tasks").glob("*.json")}
    assert members == task_bundles
    generated = {r["prov:entity"]: r["prov:activity"] for r in relations(wf, "wasGeneratedBy")}
    for bundle_id in members:
        task_id = bundle_id.removesuffix("/bundle")
        assert generated[bundle_id] == task_id
        assert value(wf["entity"][bundle_id]["prov:type"]) == "prov:Bundle"


def test_hierarchy_is_navigable_from_model_file_to_workflow(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    (train_file,) = (root / "tasks").glob("train-*.json")
    b = bundle_of(train_file)
    (final_id, final) = next(iter(by_type(b, "Model").items()))
    assert (root / final["ywf:path"]).is_file()
    gen = {r["prov:entity"]: r["prov:activity"] for r in relations(b, "wasGeneratedBy")}
    starter = {r["prov:activity"]: r["prov:starter"] for r in relations(b, "wasStartedBy")}
    run = gen[final_id]
    task = starter[run]
    workflow = starter[task]
    assert run in by_type(b, "MLRun") and task in by_type(b, "TaskRun")
    assert workflow in by_type(load(root / "workflow.json"), "WorkflowRun")
    # ...and from the run to every metric series it generated
    series = by_type(b, "MetricSeries")
    assert {gen[s] for s in series} == {run}
    assert {value(a["ywf:key"]) for a in series.values()} == {"loss", "accuracy"}


def test_params_are_used_and_outputs_generated(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    (train_file,) = (root / "tasks").glob("train-*.json")
    b = bundle_of(train_file)
    (run_id,) = by_type(b, "MLRun")
    (param_id, param) = next(iter(by_type(b, "Parameter").items()))
    assert value(param["prov:value"]) == "0.01" or value(param["prov:value"]) == 0.01
    assert {"prov:activity": run_id, "prov:entity": param_id}.items() <= next(
        r for r in relations(b, "used") if r["prov:entity"] == param_id).items()
    generated = {r["prov:entity"] for r in relations(b, "wasGeneratedBy") if r["prov:activity"] == run_id}
    assert set(by_type(b, "ModelVersion")) <= generated and param_id not in generated
    wf = load(root / "workflow.json")
    wf_params = by_type(wf, "Parameter")
    assert [value(a["ywf:key"]) for a in wf_params.values()] == ["seed"]


def test_model_versions_are_revisions_with_matching_digests(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    (train_file,) = (root / "tasks").glob("train-*.json")
    b = bundle_of(train_file)
    versions = by_type(b, "ModelVersion")
    assert sorted(int(value(a["ywf:version"])) for a in versions.values()) == [1, 2, 3]
    for attrs in versions.values():
        data = (root / attrs["ywf:path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == attrs["ywf:sha256"]
        assert not Path(attrs["ywf:path"]).is_absolute()
        # the location is an IRI (PROV-O's range prov:Location), the recorded relative path a ywf:path literal
        assert attrs["prov:location"] == {"$": (root / attrs["ywf:path"]).absolute().as_uri(), "type": "xsd:anyURI"}
    revisions = [r for r in relations(b, "wasDerivedFrom") if value(r.get("prov:type", "")) == "prov:Revision"]
    by_version = {int(value(a["ywf:version"])): i for i, a in versions.items()}
    pairs = {(r["prov:generatedEntity"], r["prov:usedEntity"]) for r in revisions}
    assert (by_version[2], by_version[1]) in pairs and (by_version[3], by_version[2]) in pairs
    (final_id,) = by_type(b, "Model")
    assert (final_id, by_version[3]) in pairs, "the final model is a revision of the last version"


def test_model_summary_counts_parameters(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    b = bundle_of(next((root / "tasks").glob("train-*.json")))
    (final,) = by_type(b, "Model").values()
    model = _model()
    assert int(value(final["ywf:parameterCount"])) == sum(p.numel() for p in model.parameters()) == 58
    assert int(value(final["ywf:memoryBytes"])) == 58 * 4
    assert "Linear" in final["ywf:layers"]


def test_data_flow_links_tasks_through_file_digests(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    wf = load(root / "workflow.json")
    tasks = {value(a["ywf:name"]): i for i, a in by_type(wf, "TaskRun").items()}
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(wf, "wasInformedBy")}
    assert informed == {(tasks["train"], tasks["prepare"])}
    files = by_type(wf, "DataFile")
    prepared = (tmp_path / "prepared.npy").read_bytes()
    assert any(a["ywf:sha256"] == hashlib.sha256(prepared).hexdigest() for a in files.values())


def test_metrics_are_a_parquet_file_pandas_reads_in_one_line(tmp_path, save_dir):
    root = _pipeline(tmp_path, save_dir)
    (parquet,) = (root / "metrics").glob("*.parquet")
    df = pd.read_parquet(parquet)
    assert list(df.columns) == ["key", "context", "step", "value", "timestamp"]
    loss = df[df.key == "loss"]
    assert len(loss) == 30 and loss.step.tolist() == list(range(30))
    assert loss.value.iloc[0] == 1.0 and set(loss.context) == {"training"}
    assert str(df.timestamp.dtype).startswith("datetime64")
    b = bundle_of(next((root / "tasks").glob("train-*.json")))
    series = {value(a["ywf:key"]): a for a in by_type(b, "MetricSeries").values()}
    assert int(value(series["loss"]["ywf:count"])) == 30
    assert float(value(series["loss"]["ywf:min"])) == pytest.approx(1 / 30)
    assert float(value(series["accuracy"]["ywf:last"])) == pytest.approx(0.7)
    assert series["loss"]["ywf:sha256"] == hashlib.sha256(parquet.read_bytes()).hexdigest()


def test_nan_and_infinity_are_stored_faithfully(save_dir):
    with yp.start_run(NS, "nan", provenance_save_dir=save_dir) as run:
        for v in (1.0, math.nan, math.inf, -math.inf, 2.0):
            yp.log_metric("x", v)
    root = run.info.provenance_dir
    df = pd.read_parquet(next((root / "metrics").glob("*.parquet")))
    values = df.value.tolist()
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf and values[3] == -math.inf
    (series,) = by_type(bundle_of(next((root / "tasks").glob("*.json"))), "MetricSeries").values()
    assert int(value(series["ywf:nonFiniteCount"])) == 3
    assert float(value(series["ywf:max"])) == 2.0 and int(value(series["ywf:count"])) == 5


def test_standalone_run_is_a_workflow_of_one_task(save_dir):
    yp.start_run(prov_user_namespace=NS, experiment_name="solo", provenance_save_dir=save_dir)
    yp.log_metric("loss", 0.5)
    yp.end_run()
    root = only_run_dir(save_dir)
    assert root.parent.name == "solo"
    (task_file,) = (root / "tasks").glob("*.json")
    wf = load(root / "workflow.json")
    assert len(by_type(wf, "TaskRun")) == 1 and len(by_type(bundle_of(task_file), "MLRun")) == 1


def test_start_run_as_context_manager_records_failure(save_dir):
    with pytest.raises(ZeroDivisionError), yp.start_run(NS, "boom", provenance_save_dir=save_dir):
        yp.log_metric("loss", 1.0)
        1 / 0  # noqa: B018
    b = bundle_of(next((only_run_dir(save_dir) / "tasks").glob("*.json")))
    (run,) = by_type(b, "MLRun").values()
    (task,) = by_type(b, "TaskRun").values()
    assert run["ywf:status"] == task["ywf:status"] == "failed"
    assert "ZeroDivisionError" in run["ywf:error"]


def test_second_run_does_not_inherit_the_first(save_dir):
    with yp.workflow("w", namespace=NS, save_dir=save_dir), yp.task("t"):
        with yp.start_run(NS, "first"):
            yp.log_metric("a", 1.0)
            yp.log_param("p", 1)
        with yp.start_run(NS, "second"):
            yp.log_metric("b", 2.0)
    b = bundle_of(next((only_run_dir(save_dir) / "tasks").glob("*.json")))
    runs = by_type(b, "MLRun")
    assert len(runs) == 2
    gen = {r["prov:entity"]: r["prov:activity"] for r in relations(b, "wasGeneratedBy")}
    keys_by_run = {}
    for ident, a in by_type(b, "MetricSeries").items():
        keys_by_run.setdefault(value(runs[gen[ident]]["ywf:experiment"]), set()).add(a["ywf:key"])
    assert keys_by_run == {"first": {"a"}, "second": {"b"}}
    used = {r["prov:entity"]: r["prov:activity"] for r in relations(b, "used")}
    (param,) = by_type(b, "Parameter")
    assert value(runs[used[param]]["ywf:experiment"]) == "first"


def test_datasets_record_true_sizes(save_dir):
    full = TensorDataset(torch.randn(100, 3), torch.zeros(100))
    subset = Subset(full, list(range(30)))
    array = np.ones((17, 2))
    with yp.start_run(NS, "data", provenance_save_dir=save_dir) as run:
        yp.log_dataset(DataLoader(full, batch_size=32), "loader")
        yp.log_dataset(subset, "subset")
        yp.log_dataset(array, "array")
    b = bundle_of(next((run.info.provenance_dir / "tasks").glob("*.json")))
    ds = {a["ywf:label"]: a for a in by_type(b, "Dataset").values()}
    assert int(value(ds["loader"]["ywf:samples"])) == 100 and int(value(ds["loader"]["ywf:batches"])) == 4
    assert int(value(ds["subset"]["ywf:samples"])) == 30 and int(value(ds["subset"]["ywf:parentSamples"])) == 100
    assert int(value(ds["array"]["ywf:samples"])) == 17
    assert ds["array"]["ywf:sha256"] == hashlib.sha256(array.tobytes()).hexdigest()


def test_artifacts_are_copied_into_the_provenance_folder(tmp_path, save_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.txt").write_text("hello")
    before = set(tmp_path.iterdir())
    with yp.start_run(NS, "art", provenance_save_dir=save_dir) as run:
        copy = yp.log_artifact("report.txt", yp.Context.EVALUATION)
        yp.save_model_version(_model(), "m")
        yp.log_model(_model(), "final")
    assert copy.read_text() == "hello" and copy.is_relative_to(run.info.provenance_dir)
    assert set(tmp_path.iterdir()) - before == {save_dir}, "nothing written to the working directory"
    b = bundle_of(next((run.info.provenance_dir / "tasks").glob("*.json")))
    (art,) = by_type(b, "Artifact").values()
    assert art["ywf:sha256"] == hashlib.sha256(b"hello").hexdigest() and art["ywf:context"] == "evaluation"


def test_decorators_bare_named_and_async(save_dir):
    @yp.task
    def prepare(n: int) -> int:
        return n * 2

    @yp.task(name="score")
    async def score(x: int) -> int:
        with yp.start_run(NS, "async-run"):
            yp.log_metric("x", x)
        return x + 1

    @yp.workflow(namespace=NS, save_dir=save_dir)
    def pipeline() -> int:
        return asyncio.run(score(prepare(3)))

    assert pipeline() == 7
    root = only_run_dir(save_dir)
    assert root.parent.name == "pipeline"
    names = {a["ywf:name"] for a in by_type(load(root / "workflow.json"), "TaskRun").values()}
    assert names == {"prepare", "score"}
    prep = bundle_of(next((root / "tasks").glob("prepare-*.json")))
    (param,) = by_type(prep, "Parameter").values()
    assert param["ywf:key"] == "n" and int(value(param["prov:value"])) == 3


def test_failed_task_records_status_and_error(save_dir):
    with pytest.raises(RuntimeError), yp.workflow("w", namespace=NS, save_dir=save_dir):
        with yp.task("ok"):
            pass
        with yp.task("bad"):
            raise RuntimeError("disk on fire")
    root = only_run_dir(save_dir)
    wf = load(root / "workflow.json")
    status = {a["ywf:name"]: a["ywf:status"] for a in by_type(wf, "TaskRun").values()}
    assert status == {"ok": "completed", "bad": "failed"}
    (w,) = by_type(wf, "WorkflowRun").values()
    assert w["ywf:status"] == "failed" and "disk on fire" in w["ywf:error"]


def test_attributes_set_after_the_close_are_in_the_bundle_and_in_workflow_json(save_dir):
    # an engine's later verdict (Prefect's rolled-back transaction): the bundle is rewritten, and workflow.json,
    # built from the records in memory, says the same as the file
    with yp.workflow("w", namespace=NS, save_dir=save_dir):
        with yp.task("t") as t:
            t.set_attribute("early", 1)
        t.amend(verdict="RolledBack")
        t.set_attribute("later", 2)
    root = only_run_dir(save_dir)
    (bundle,) = (root / "tasks").glob("*.json")
    (in_bundle,) = by_type(bundle_of(bundle), "TaskRun").values()
    (in_workflow,) = by_type(load(root / "workflow.json"), "TaskRun").values()
    for attrs in (in_bundle, in_workflow):
        assert (int(value(attrs["ywf:early"])), attrs["ywf:verdict"], int(value(attrs["ywf:later"]))) == (1, "RolledBack", 2)


def test_retry_attempts_are_separate_activities(save_dir):
    with yp.workflow("w", namespace=NS, save_dir=save_dir):
        for attempt in (1, 2):
            try:
                with yp.task("flaky", attempt=attempt):
                    if attempt == 1:
                        raise ValueError("first try fails")
            except ValueError:
                pass
    wf = load(only_run_dir(save_dir) / "workflow.json")
    tasks = sorted(by_type(wf, "TaskRun").values(), key=lambda a: int(value(a["ywf:attempt"])))
    assert [(int(value(a["ywf:attempt"])), a["ywf:status"]) for a in tasks] == [(1, "failed"), (2, "completed")]


def test_a_task_reported_after_it_ended_is_one_bundle_with_no_journal(tmp_path, save_dir):
    from yprov_wf.layout import digest_path
    from yprov_wf.recording.records import DataRecord

    data = tmp_path / "shards"
    (data / "b").mkdir(parents=True)
    (data / "a.txt").write_text("a")
    (data / "b" / "c.txt").write_text("c")
    gone = DataRecord(path=str(tmp_path / "tmp.bin"), sha256="0" * 64, size=3)  # hashed before it was removed
    with yp.workflow("w", namespace=NS, save_dir=save_dir) as wf:
        rec = wf.write_finished_task("copy", started=100.0, ended=101.5, status="failed", error="exit 3",
                                     inputs=[gone, tmp_path / "shards"], outputs=[data, tmp_path / "missing"],
                                     params={"n": 2}, attributes={"rule": "copy"}, attempt=2)
        assert not (wf.dir.root / "journal" / f"{rec.task_id}.jsonl").exists()
        with pytest.raises(ValueError, match="attempt must be a positive int, got 0"):
            wf.write_finished_task("copy", started=1.0, ended=2.0, attempt=0)
    with pytest.raises(RuntimeError, match="'w' is not open"):
        wf.write_finished_task("late", started=1.0, ended=2.0)
    bundle = bundle_of(wf.dir.task_file(rec.task_id))
    ((tid, task),) = by_type(bundle, "TaskRun").items()
    assert (task["ywf:status"], task["ywf:error"], int(value(task["ywf:attempt"])), task["ywf:rule"]) == (
        "failed", "exit 3", 2, "copy")
    assert (task["prov:startTime"], task["prov:endTime"]) == ("1970-01-01T00:01:40+00:00",
                                                              "1970-01-01T00:01:41.500000+00:00")
    files = by_type(bundle, "DataFile")
    used = {value(files[r["prov:entity"]]["ywf:sha256"]) for r in relations(bundle, "used") if r["prov:entity"] in files}
    made = {value(files[r["prov:entity"]]["ywf:sha256"]) for r in relations(bundle, "wasGeneratedBy")
            if r["prov:entity"] in files}
    assert used == {"0" * 64, digest_path(data)[0]} and made == {digest_path(data)[0]}  # a folder, by its files
    params = {p["ywf:key"]: p["prov:value"] for p in by_type(bundle, "Parameter").values()}
    assert params == {"n": {"$": "2", "type": "xsd:int"}}


def test_metric_value_types(save_dir):
    with yp.start_run(NS, "types", provenance_save_dir=save_dir) as run:
        yp.log_metric("np", np.float32(0.25))
        yp.log_metric("tensor", torch.tensor(0.5))
        yp.log_metric("int", 3)
        yp.log_metrics({"a": 1.0, "b": 2.0}, context="validation", step=4)
    df = pd.read_parquet(next((run.info.provenance_dir / "metrics").glob("*.parquet")))
    got = dict(zip(df.key, df.value))
    assert got == {"np": 0.25, "tensor": 0.5, "int": 3.0, "a": 1.0, "b": 2.0}
    assert set(df[df.key == "a"].context) == {"validation"} and df[df.key == "b"].step.item() == 4


def test_repeated_labels_get_distinct_entities_and_files(tmp_path, save_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("one")
    with yp.start_run(NS, "dups", provenance_save_dir=save_dir) as run:
        yp.log_artifact("a.txt")
        (tmp_path / "a.txt").write_text("two")
        yp.log_artifact("a.txt")
        yp.log_model({"w": 1}, "m")
        yp.log_model({"w": 2}, "m")
    root = run.info.provenance_dir
    b = bundle_of(next(root.glob("tasks/*.json")))
    assert len(by_type(b, "Artifact")) == 2 and len(by_type(b, "Model")) == 2
    from yprov_wf.cli import main as cli

    assert cli(["validate", str(root)]) == 0, "each record's file keeps the digest it was logged with"


def test_keyboard_interrupt_is_interrupted_for_runs_and_scopes(save_dir):
    with pytest.raises(KeyboardInterrupt), yp.start_run(NS, "ctrl-c", provenance_save_dir=save_dir):
        raise KeyboardInterrupt
    b = bundle_of(next(only_run_dir(save_dir).glob("tasks/*.json")))
    assert {a["ywf:status"] for a in [*by_type(b, "MLRun").values(), *by_type(b, "TaskRun").values()]} == {
        "interrupted"}
