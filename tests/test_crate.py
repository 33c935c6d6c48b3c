"""`yprov-wf crate`: a Workflow Run RO-Crate (Provenance Run Crate), loaded back with the rocrate package."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate

import yprov_wf as yp
from tests.test_readback import record_everything
from yprov_wf.cli import main
from yprov_wf.crate import PROFILES, write_crate

SCHEMA = "http://schema.org/"


@pytest.fixture(scope="module")
def crate(tmp_path_factory) -> tuple[ROCrate, Path, Path]:
    base = tmp_path_factory.mktemp("crate")
    root = record_everything(base)
    target = base / "run.crate.zip"
    summary = write_crate(root, target)
    assert summary.path == target and summary.files > 0
    return ROCrate(target), root, target


def _ids(value) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [x.id for x in items]


def _types(entity) -> set[str]:
    t = entity.type
    return set(t if isinstance(t, list) else [t])


def test_root_profiles_and_main_workflow(crate):
    c, root, _ = crate
    wf = yp.load(root)[0]
    assert {p.id for p in c.root_dataset["conformsTo"]} == {
        PROFILES["Process Run Crate"], PROFILES["Workflow Run Crate"], PROFILES["Provenance Run Crate"]}
    main_wf = c.mainEntity
    assert {"ComputationalWorkflow", "SoftwareSourceCode", "HowTo"} <= _types(main_wf)
    assert main_wf["name"] == "everything"
    steps = main_wf["step"]
    assert [s["name"] for s in steps] == ["prepare", "train"] and [s["position"] for s in steps] == ["1", "2"]
    (action,) = c.root_dataset["mentions"]
    assert action.type == "CreateAction" and action["instrument"].id == main_wf.id
    status = action["actionStatus"]  # an IRI outside the crate comes back as its id
    assert getattr(status, "id", status) == SCHEMA + "CompletedActionStatus"
    assert action["startTime"].startswith("20") and action["endTime"] >= action["startTime"]
    seed = [o for o in action["object"] if o.type == "PropertyValue"]
    assert [(p["name"], p["value"]) for p in seed] == [("seed", 7)]
    assert seed[0]["exampleOfWork"].id in _ids(main_wf["input"])
    (organize,) = [e for e in c.contextual_entities if e.type == "OrganizeAction"]
    assert organize["result"].id == action.id and organize["instrument"].type == "SoftwareApplication"
    assert len(organize["object"]) == len(wf.tasks) == 2
    assert c.dereference("workflow.json")["about"].id == action.id


def test_each_task_is_a_step_execution(crate):
    c, root, _ = crate
    wf = yp.load(root)[0]
    controls = {e["instrument"]["name"]: e for e in c.contextual_entities if e.type == "ControlAction"}
    assert set(controls) == {"prepare", "train"}
    for task in wf.tasks:
        control = controls[task.name]
        step = control["instrument"]
        assert step.type == "HowToStep"
        task_action = c.dereference(f"#task/{task.id}")
        assert task_action.type == "CreateAction" and task_action.id in _ids(control["object"])
        assert task_action["instrument"].id == step["workExample"].id  # the step's tool
        bundle = c.dereference(f"tasks/{task.id}.json")
        assert bundle["about"].id == task_action.id
    prepare, train = (c.dereference(f"#task/{t.id}") for t in wf.tasks)
    (data_file,) = prepare["result"]
    assert data_file.id in _ids(train["object"])  # data flow: prepare's output is train's input
    assert data_file["sha256"] == wf.tasks[0].outputs[0].sha256
    assert data_file.source.read_bytes()  # the file travels in the crate
    assert {p["name"]: p["value"] for p in train["object"] if p.type == "PropertyValue"} == {"lr": 0.5}
    assert [p["name"] for p in train["result"] if p.type == "PropertyValue"] == ["answer"]


def test_ml_run_is_nested_with_its_records(crate):
    c, root, _ = crate
    wf = yp.load(root)[0]
    run = wf.runs[0]
    action = c.dereference(f"#mlrun/{run.id}")
    assert action.type == "CreateAction"
    controls = [e for e in c.contextual_entities if e.type == "ControlAction" and action.id in _ids(e["object"])]
    assert [ctl["instrument"]["name"] for ctl in controls] == ["train"]
    assert action["instrument"]["isPartOf"].id == c.dereference(f"#task/{wf.tasks[1].id}")["instrument"].id
    objects = {o.id: o for o in action["object"]}
    params = {o["name"]: o["value"] for o in objects.values() if o.type == "PropertyValue" and o["name"] != "command"}
    assert params == run.params
    (dataset,) = [o for o in objects.values() if o["name"] == "features"]
    assert "3 samples" in dataset["description"]
    (source,) = [o for o in objects.values() if "SoftwareSourceCode" in _types(o)]
    assert source.source.read_text() == "print('training')\n"
    assert objects[f"#mlrun/{run.id}/command"]["value"].startswith("[")
    results = {r.id: r for r in action["result"]}
    metrics_file = results[run.record.metrics_file.path]
    assert metrics_file["encodingFormat"] == "application/vnd.apache.parquet"
    series = {r["name"]: r for r in results.values() if r.type == "PropertyValue"}
    assert set(series) == {"loss", "acc", "flops", "flops_epoch"} and series["loss"]["value"] == 0.5
    v1, v2 = (results[v.path] for v in run.model_versions)
    assert v2["isBasedOn"].id == v1.id and v1.get("isBasedOn") is None
    assert results[run.models[0].path]["name"] == "model final"
    arts = {a.name: a for a in run.artifacts}
    assert arts["notes.txt"].path in results and arts["input-notes.txt"].path in objects


def test_every_file_has_its_digest_and_is_in_the_zip(crate):
    c, root, target = crate
    files = [e for e in c.data_entities if "File" in _types(e)]
    with zipfile.ZipFile(target) as z:
        names = set(z.namelist())
        for f in files:
            assert f.id in names
            assert hashlib.sha256(z.read(f.id)).hexdigest() == f["sha256"], f.id
            assert int(f["contentSize"]) == len(z.read(f.id))
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk <= {f.id for f in files}  # every provenance file travels
    assert names == {f.id for f in files} | {"ro-crate-metadata.json"}


def test_lightning_style_checkpoint_file_as_model_version(tmp_path, monkeypatch):
    """A model version given as a file (a checkpoint) keeps its suffix and digest through the crate."""
    monkeypatch.chdir(tmp_path)
    Path("epoch=0.ckpt").write_bytes(b"checkpoint bytes")
    with yp.start_run("https://example.org/c/", "ckpt", provenance_save_dir="prov") as run:
        dest = yp.save_model_version("epoch=0.ckpt", "checkpoint", step=3)
    assert dest.name == "v1.ckpt"
    target = tmp_path / "c.zip"
    assert main(["crate", str(run.workflow.dir.root), "-o", str(target)]) == 0
    c = ROCrate(target)
    (version,) = [e for e in c.data_entities if e.id.endswith("v1.ckpt")]
    assert version["sha256"] == hashlib.sha256(b"checkpoint bytes").hexdigest()


def test_bad_targets_leave_nothing(crate, tmp_path, capsys):
    _, root, target = crate
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        write_crate(root, target)
    assert target.read_bytes() == before
    assert main(["crate", str(root), "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert main(["crate", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.zip")]) == 2
    assert main(["crate", str(root), "-o", str(tmp_path / "no-folder" / "x.zip")]) == 2
    assert not (tmp_path / "x.zip").exists()


def test_missing_recorded_file_is_an_error_and_nothing_is_written(tmp_path):
    root = record_everything(tmp_path)
    run = yp.load(root)[0].runs[0]
    run.path(run.model_versions[0].path).unlink()
    target = tmp_path / "broken.zip"
    with pytest.raises(ValueError, match="v1.pt.*is missing"):
        write_crate(root, target)
    assert not target.exists() and not list(tmp_path.glob(".broken.zip*"))


def test_several_workflow_runs_need_one_folder(tmp_path):
    for _ in range(2):
        with yp.workflow("two", namespace="https://example.org/t/", save_dir=tmp_path / "prov"):
            with yp.task("t"):
                pass
    with pytest.raises(ValueError, match="holds 2 workflow runs"):
        write_crate(tmp_path / "prov", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_metadata_is_json_ld_with_the_profile_context(crate):
    _, _, target = crate
    with zipfile.ZipFile(target) as z:
        meta = json.loads(z.read("ro-crate-metadata.json"))
    assert meta["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    assert "https://w3id.org/ro/terms/workflow-run/context" in meta["@context"]
    ids = [e["@id"] for e in meta["@graph"]]
    assert len(ids) == len(set(ids))


def test_recorded_location_escaping_the_folder_is_refused(tmp_path):
    root = record_everything(tmp_path)
    run = yp.load(root)[0].runs[0]
    task_file = root / "tasks" / f"{run.task.task_id}.json"
    task_file.write_text(task_file.read_text().replace(run.model_versions[0].path, "../../../data.pt"))
    with pytest.raises(ValueError, match="escapes the workflow run folder"):
        write_crate(root, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
