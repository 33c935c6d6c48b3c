"""`yprov-wf crate`: a Workflow Run RO-Crate (Provenance Run Crate), loaded back with the rocrate package and
judged by the RO-Crate validator `roc-validator` (crs4/rocrate-validator), run offline, for a plain-Python
workflow, a standalone run, a Prefect flow and a Snakemake workflow."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate

import yprov_wf as yp
from tests.conftest import NS, REPO, only_run_dir
from tests.test_readback import record_everything
from yprov_wf.cli import main
from yprov_wf.crate import NO_LICENSE, PROFILES, SPDX, write_crate

SCHEMA = "http://schema.org/"
DATA = Path(__file__).parent / "data" / "rocrate"
# The two JSON-LD contexts roc-validator fetches for our crates (the crate's @context), shipped so that the
# suite runs offline; tests/data/rocrate/README.md names where each copy comes from.
CONTEXTS = {"https://w3id.org/ro/crate/1.1/context": DATA / "ro-crate-1.1-context.jsonld",
            "https://w3id.org/ro/terms/workflow-run/context": DATA / "workflow-run-context.json"}
VALIDATED = ("ro-crate-1.1", "workflow-run-crate-0.5", "provenance-run-crate-0.5")


@pytest.fixture(scope="module")
def crate(tmp_path_factory) -> tuple[ROCrate, Path, Path]:
    base = tmp_path_factory.mktemp("crate")
    root = record_everything(base)
    target = base / "run.crate.zip"
    summary = write_crate(root, target, license="CC-BY-4.0")
    assert summary.path == target and summary.files > 0 and summary.warnings == ()
    return ROCrate(target), root, target


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _ids(value) -> list[str]:
    return [x.id for x in _list(value)]


def _types(entity) -> set[str]:
    return set(_list(entity.type))


def _workflow_action(c: ROCrate):
    (action,) = [a for a in _list(c.root_dataset["mentions"]) if a.id.startswith("#run/")]
    return action


# -- the RO-Crate validator, offline ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def validator_cache(tmp_path_factory):
    """An HTTP cache for roc-validator's documented `cache_path` + `offline` settings, holding the shipped
    contexts (stored through requests-cache, the validator's own cache library)."""
    import requests
    import urllib3
    from requests_cache import CachedSession

    class ShippedContexts(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            path = CONTEXTS.get(request.url)
            if path is None:
                raise requests.ConnectionError(f"offline test: no shipped copy of {request.url}")
            raw = urllib3.HTTPResponse(body=io.BytesIO(path.read_bytes()), status=200, preload_content=False,
                                       headers={"Content-Type": "application/ld+json"}, request_url=request.url)
            return requests.adapters.HTTPAdapter().build_response(request, raw)

        def close(self):
            pass

    cache = tmp_path_factory.mktemp("rocv") / "http_cache"
    with CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1) as session:
        session.mount("https://", ShippedContexts())
        for url in CONTEXTS:
            assert session.get(url).json()["@context"]
    yield cache
    from rocrate_validator.utils.document_loader import uninstall_document_loader

    uninstall_document_loader()  # the validator routes rdflib's JSON-LD context loading through its cache


def rocv(crate: Path, profile: str, cache: Path) -> dict[str, set[str]]:
    """roc-validator's findings (REQUIRED and RECOMMENDED), check identifiers by severity."""
    from rocrate_validator import services
    from rocrate_validator.models import ValidationSettings

    result = services.validate(ValidationSettings(rocrate_uri=str(crate), profile_identifier=profile,
                                                  requirement_severity="RECOMMENDED", offline=True,
                                                  cache_path=cache))
    found: dict[str, set[str]] = {"REQUIRED": set(), "RECOMMENDED": set()}
    for issue in result.get_issues():
        found.setdefault(issue.severity.name, set()).add(issue.check.identifier)
    return found


def deliberate_findings() -> set[str]:
    """The recommended checks docs/crate.md lists as left unmet on purpose, each with its reason."""
    text = (REPO / "docs" / "crate.md").read_text()
    section = text.split("## Validator findings left on purpose", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w.-]+_\d+(?:\.\d+)*)` \|", section, re.M))


def assert_valid(crate: Path, cache: Path, profiles=VALIDATED) -> None:
    allowed = deliberate_findings()
    assert len(allowed) >= 5
    for profile in profiles:
        found = rocv(crate, profile, cache)
        assert found["REQUIRED"] == set(), (profile, found["REQUIRED"])
        assert found["RECOMMENDED"] <= allowed, (profile, found["RECOMMENDED"] - allowed)


def test_plain_workflow_crate_passes_the_validator(crate, validator_cache):
    assert_valid(crate[2], validator_cache)


def test_the_offline_validator_does_fail_a_crate_without_license_or_workflow_file(crate, validator_cache,
                                                                                  tmp_path):
    """The control: the same crate with its license and its main workflow's File type removed fails."""
    with zipfile.ZipFile(crate[2]) as z:
        z.extractall(tmp_path / "broken")
    meta_path = tmp_path / "broken" / "ro-crate-metadata.json"
    meta = json.loads(meta_path.read_text())
    entities = {e["@id"]: e for e in meta["@graph"]}
    del entities["./"]["license"]
    main_wf = entities[entities["./"]["mainEntity"]["@id"]]
    main_wf["@type"] = [t for t in main_wf["@type"] if t != "File"]
    meta_path.write_text(json.dumps(meta))
    found = rocv(tmp_path / "broken", "provenance-run-crate-0.5", validator_cache)
    assert {"ro-crate-1.1_8.3", "workflow-ro-crate-1.0_2.1"} <= found["REQUIRED"]


def test_standalone_run_crate_holds_its_script_and_passes_the_validator(tmp_path, validator_cache, capsys):
    """A start_run … end_run script with no workflow around it: the script on its command line is the
    main workflow, copied into the crate."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import yprov_wf as yp
        with yp.start_run("{NS}", "standalone", provenance_save_dir="prov"):
            yp.log_param("lr", 0.1)
            yp.log_metric("loss", 0.5, step=0)
    """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    target = tmp_path / "standalone.zip"
    assert main(["crate", str(only_run_dir(tmp_path / "prov")), "-o", str(target), "--license", "MIT"]) == 0
    assert "warning" not in capsys.readouterr().err
    c = ROCrate(target)
    assert c.root_dataset["license"].id == SPDX + "MIT"
    main_wf = c.mainEntity
    assert main_wf.id == "workflow/train.py"
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow"} <= _types(main_wf)
    with zipfile.ZipFile(target) as z:
        assert z.read("workflow/train.py") == script.read_bytes()
    assert main_wf["sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert_valid(target, validator_cache, ("provenance-run-crate-0.5",))


def test_a_script_started_by_a_relative_path_is_found(tmp_path, capsys):
    """`python pipeline.py` (a relative path, as typed) from a script that then changes folder: the recorded
    main-file path and working folder let the crate find the script without --workflow-file."""
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import yprov_wf as yp
        os.makedirs("elsewhere", exist_ok=True)
        os.chdir("elsewhere")  # the typed 'pipeline.py' no longer resolves from here
        with yp.workflow("relative", namespace="{NS}", save_dir="prov"):
            with yp.task("t"):
                pass
    """))
    done = subprocess.run([sys.executable, "pipeline.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    root = only_run_dir(tmp_path / "elsewhere" / "prov")
    env = yp.load(root)[0].record.environment
    assert env["command"].split()[0] == "pipeline.py" and env["script"] == str(script)
    assert env["workingDirectory"] == str(tmp_path / "elsewhere")
    target = tmp_path / "relative.zip"
    assert main(["crate", str(root), "-o", str(target)]) == 0
    assert "warning" not in capsys.readouterr().err
    c = ROCrate(target)
    assert c.mainEntity.id == "workflow/pipeline.py" and "command line" in c.mainEntity["description"]
    with zipfile.ZipFile(target) as z:
        assert z.read("workflow/pipeline.py") == script.read_bytes()


def test_failed_run_crate_says_so_and_passes_the_validator(tmp_path, validator_cache):
    with pytest.raises(RuntimeError, match="boom"):
        with yp.workflow("failing", namespace=NS, save_dir=tmp_path / "prov") as wf:
            with yp.task("fine"):
                pass
            with yp.task("broken"):
                raise RuntimeError("boom")
    target = tmp_path / "failed.zip"
    write_crate(wf.dir.root, target, workflow_file=__file__)
    c = ROCrate(target)
    action = _workflow_action(c)
    assert action["actionStatus"] == SCHEMA + "FailedActionStatus" and "boom" in action["error"]
    fine, broken = (c.dereference(f"#task/{t.id}") for t in yp.load(wf.dir.root)[0].tasks)
    assert fine["actionStatus"] == SCHEMA + "CompletedActionStatus" and fine.get("error") is None
    assert broken["actionStatus"] == SCHEMA + "FailedActionStatus" and "boom" in broken["error"]
    assert_valid(target, validator_cache, ("provenance-run-crate-0.5",))


# -- Prefect and Snakemake -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prefect_crate(tmp_path_factory) -> tuple[Path, object]:
    """A real Prefect flow (test API server) of two tasks and a nested ML run; the integration records the
    flow's file (this one), which the crate takes as its main workflow."""
    for name, value in {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}.items():
        os.environ.setdefault(name, value)
    from prefect.testing.utilities import prefect_test_harness
    from prefect_yprov import flow, task

    base = tmp_path_factory.mktemp("prefect-crate")

    @task
    def load(n: int) -> list[float]:
        return [float(i) for i in range(n)]

    @task
    def fit(data: list[float], lr: float) -> float:
        with yp.start_run(NS, "fit"):
            yp.log_param("lr", lr)
            yp.log_metric("loss", sum(data) * lr, step=0)
        return sum(data) * lr

    @flow(save_dir=base / "prov", namespace=NS)
    def pipeline(n: int = 4) -> float:
        return fit(load(n), 0.1)

    with prefect_test_harness(server_startup_timeout=120):
        assert pipeline() == pytest.approx(0.6)
    target = base / "flow.zip"
    summary = write_crate(only_run_dir(base / "prov"), target)  # the flow's file is recorded: no workflow_file
    return target, summary


def test_prefect_flow_crate_holds_the_flow_file_and_passes_the_validator(prefect_crate, validator_cache):
    target, summary = prefect_crate
    assert summary.main_workflow == f"workflow/{Path(__file__).name}" and summary.warnings == ()
    c = ROCrate(target)
    assert c.mainEntity["sha256"] == hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    assert "recorded by the Prefect integration" in c.mainEntity["description"]
    assert [s["name"] for s in _list(c.mainEntity["step"])] == ["load", "fit"]
    (organize,) = [e for e in c.contextual_entities if e.type == "OrganizeAction"]
    engine, *others = _list(organize["instrument"])  # the engine first, then yprov-wf
    assert engine["name"] == "prefect" and engine["softwareVersion"]
    assert [o["name"] for o in others] == ["yprov-wf"]
    assert c.root_dataset["license"].id == NO_LICENSE
    assert_valid(target, validator_cache, ("provenance-run-crate-0.5",))


SNAKEFILE = """
rule all:
    input: "b.txt"

rule make_a:
    output: "a.txt"
    shell: "echo a > {output}"

rule make_b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output} && echo b >> {output}"
"""


@pytest.fixture(scope="module")
def snakemake_crate(tmp_path_factory) -> Path:
    """A real Snakemake run (two shell rules) recorded by the logger plugin; the Snakefile is recorded."""
    from tests.test_snakemake import snakemake_cli

    wd = tmp_path_factory.mktemp("snakemake-crate")
    (wd / "Snakefile").write_text(SNAKEFILE)
    done = snakemake_cli(wd, "-c", "1", "--logger", "yprov", "--logger-yprov-save-dir", "prov",
                         "--logger-yprov-namespace", NS, "--logger-yprov-workflow-name", "ab")
    assert done.returncode == 0, done.stderr
    target = wd / "ab.zip"
    assert main(["crate", str(only_run_dir(wd / "prov")), "-o", str(target), "--license",
                 "https://creativecommons.org/licenses/by/4.0/"]) == 0
    return target


def test_snakemake_crate_holds_the_snakefile_and_passes_the_validator(snakemake_crate, validator_cache):
    c = ROCrate(snakemake_crate)
    main_wf = c.mainEntity
    assert main_wf.id == "workflow/Snakefile"
    assert main_wf["programmingLanguage"].id == "https://w3id.org/workflowhub/workflow-ro-crate#snakemake"
    assert main_wf.source.read_text() == SNAKEFILE
    assert sorted(s["name"] for s in _list(main_wf["step"])) == ["all", "make_a", "make_b"]  # rule all is a job
    assert c.root_dataset["license"].id == "https://creativecommons.org/licenses/by/4.0/"
    assert_valid(snakemake_crate, validator_cache, ("provenance-run-crate-0.5",))  # it includes the others


# -- what the crate says ---------------------------------------------------------------------------------
def test_root_profiles_and_main_workflow(crate):
    c, root, _ = crate
    wf = yp.load(root)[0]
    assert {p.id for p in c.root_dataset["conformsTo"]} == set(PROFILES.values())
    assert c.root_dataset["license"].id == SPDX + "CC-BY-4.0"
    main_wf = c.mainEntity
    assert {"File", "ComputationalWorkflow", "SoftwareSourceCode", "HowTo"} <= _types(main_wf)
    (source,) = wf.runs[0].sources
    assert main_wf.id == source.path  # the running script's recorded copy
    assert main_wf["programmingLanguage"]["name"] == "Python"
    assert main_wf["version"] == "sha256:" + source.sha256  # not in a git repository: its digest
    steps = main_wf["step"]
    assert [s["name"] for s in steps] == ["prepare", "train"] and [s["position"] for s in steps] == ["1", "2"]
    action = _workflow_action(c)
    assert action.type == "CreateAction" and action["instrument"].id == main_wf.id
    assert action["actionStatus"] == SCHEMA + "CompletedActionStatus"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", action["startTime"])
    assert action["endTime"] >= action["startTime"]
    seed = [o for o in _list(action["object"]) if o.type == "PropertyValue"]
    assert [(p["name"], p["value"]) for p in seed] == [("seed", 7)]
    assert seed[0]["exampleOfWork"].id in _ids(main_wf["input"])
    (organize,) = [e for e in c.contextual_entities if e.type == "OrganizeAction"]
    assert organize["result"].id == action.id
    engine, *others = _list(organize["instrument"])  # yprov-wf's workflow() scope, then the interpreter
    assert [engine["name"], *(o["name"] for o in others)] == ["yprov-wf", "Python"]
    assert {s.type for s in _list(organize["instrument"])} == {"SoftwareApplication"}
    assert all(s.id.startswith("https://") for s in _list(organize["instrument"]))
    assert len(organize["object"]) == len(wf.tasks) == 2
    assert c.dereference("workflow.json")["about"].id == action.id
    # every action is mentioned by the root; the README is about the crate
    assert set(_ids(c.root_dataset["mentions"])) == {action.id, *(f"#task/{t.id}" for t in wf.tasks),
                                                     *(f"#mlrun/{r.id}" for r in wf.runs)}
    readme = c.dereference("README.md")
    assert readme["encodingFormat"] == "text/markdown" and readme["about"].id == "./"


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
        assert task_action["instrument"].id.startswith(NS)  # software has absolute ids
        bundle = c.dereference(f"tasks/{task.id}.json")
        assert bundle["about"].id == task_action.id
    prepare, train = (c.dereference(f"#task/{t.id}") for t in wf.tasks)
    (data_file,) = _list(prepare["result"])
    assert data_file.id in _ids(train["object"])  # data flow: prepare's output is train's input
    assert data_file["sha256"] == wf.tasks[0].outputs[0].sha256
    assert data_file.source.read_bytes()  # the file travels in the crate
    assert {p["name"]: p["value"] for p in _list(train["object"]) if p.type == "PropertyValue"} == {"lr": 0.5}
    assert [p["name"] for p in _list(train["result"]) if p.type == "PropertyValue"] == ["answer"]


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
            assert re.fullmatch(r"\w+/[\w.+-]+", f["encodingFormat"]), f.id
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


# -- license and workflow file options, bad input ----------------------------------------------------------
@pytest.fixture
def small_run(tmp_path) -> Path:
    with yp.workflow("small", namespace=NS, save_dir=tmp_path / "prov") as wf:
        with yp.task("t", params={"k": 1}):
            pass
    return wf.dir.root


def _actions(c: ROCrate, kind: str = "CreateAction") -> list:
    return [e for e in c.contextual_entities if kind in _types(e)]


def test_the_person_who_ran_it_is_author_and_agent_of_every_action(crate, validator_cache):
    c, root, target = crate
    (person,) = [a for a in yp.load(root)[0].agents if a.role == "person"]
    author = c.root_dataset["author"]
    assert author.id == f"#person-{person.name}" and author.type == "Person" and author["name"] == person.name
    actions = _actions(c)
    assert len(actions) >= 3 and {a["agent"].id for a in actions} == {author.id}  # workflow, task, ML runs
    (organize,) = _actions(c, "OrganizeAction")
    software = {s["name"]: s for s in _list(organize["instrument"])}
    assert software["yprov-wf"]["softwareVersion"] == yp.__version__
    assert software["Python"]["softwareVersion"] == platform.python_version()
    assert "ro-crate-1.1_22.2" not in deliberate_findings() and "process-run-crate-0.5_8.6" not in \
        deliberate_findings()  # so the validator (test above) found an author and agents


def test_an_orcid_is_the_persons_id_and_no_user_means_no_author(tmp_path):
    orcid = "https://orcid.org/0000-0002-1825-0097"  # ORCID's own example iD
    for user, expected in ((orcid, orcid), (False, None)):
        with yp.workflow("who", namespace=NS, save_dir=tmp_path / str(bool(user)) / "prov", user=user) as wf:
            with yp.task("t"):
                with yp.start_run(NS, "e"):
                    yp.log_metric("m", 1.0, step=0)
        target = tmp_path / f"{bool(user)}.zip"
        write_crate(wf.dir.root, target, workflow_file=__file__)
        c = ROCrate(target)
        people = [e for e in c.contextual_entities if e.type == "Person"]
        if expected is None:
            assert people == [] and c.root_dataset.get("author") is None
            assert all(a.get("agent") is None for a in _actions(c))
        else:
            assert [p.id for p in people] == [orcid] and c.root_dataset["author"].id == orcid
            assert {a["agent"].id for a in _actions(c)} == {orcid}


def test_a_launcher_is_an_instrument_of_the_orchestration(tmp_path, monkeypatch, validator_cache):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    with yp.workflow("slurm", namespace=NS, save_dir=tmp_path / "prov") as wf:
        monkeypatch.setenv("TORCHELASTIC_RUN_ID", "77")  # the task's process only (as a torchrun rank's)
        with yp.task("t") as t:
            pass
    target = tmp_path / "s.zip"
    write_crate(wf.dir.root, target, workflow_file=__file__)
    c = ROCrate(target)
    (organize,) = _actions(c, "OrganizeAction")
    (slurm,) = [s for s in _list(organize["instrument"]) if s["name"] == "slurm"]
    assert slurm.id == "https://slurm.schedmd.com/" and "4242.0" in slurm["description"]
    assert "torchrun" not in [s["name"] for s in _list(organize["instrument"])]
    tool, torchrun = _list(c.dereference(f"#task/{t.run_id}")["instrument"])
    assert tool["name"] == "t" and torchrun["name"] == "torchrun" and "77" in torchrun["description"]
    assert_valid(target, validator_cache, ("provenance-run-crate-0.5",))


@pytest.mark.parametrize("given, ident, props", [
    ("Apache-2.0", SPDX + "Apache-2.0", {"identifier": "Apache-2.0"}),
    ("https://example.org/terms", "https://example.org/terms", {}),
    ("Internal use only, ask the lab", "#license", {"description": "Internal use only, ask the lab"}),
    (None, NO_LICENSE, {"name": "No license given"}),
])
def test_license_forms(small_run, tmp_path, given, ident, props):
    target = tmp_path / "l.zip"
    write_crate(small_run, target, license=given)
    license = ROCrate(target).root_dataset["license"]
    assert license.id == ident and all(license[k] == v for k, v in props.items())


def test_no_recorded_workflow_file_warns_and_the_option_fixes_it(small_run, tmp_path, capsys):
    """In-process under pytest nothing names the user's workflow file: the crate says so on stderr."""
    assert main(["crate", str(small_run), "-o", str(tmp_path / "a.zip")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: no file of workflow 'small'") and "--workflow-file" in err
    assert ROCrate(tmp_path / "a.zip").mainEntity.id == "#workflow/small"
    definition = tmp_path / "small_flow.py"
    definition.write_text("# the definition\n")
    summary = write_crate(small_run, tmp_path / "b.zip", workflow_file=definition)
    assert summary.main_workflow == "workflow/small_flow.py" and summary.warnings == ()
    main_wf = ROCrate(tmp_path / "b.zip").mainEntity
    assert "File" in _types(main_wf) and main_wf.source.read_text() == "# the definition\n"
    assert str(definition) in main_wf["description"]


def test_bad_license_and_workflow_file_are_refused(small_run, tmp_path, capsys):
    for args in (["--license", " "], ["--workflow-file", str(tmp_path / "none.py")]):
        assert main(["crate", str(small_run), "-o", str(tmp_path / "x.zip"), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("license" in err or "none.py" in err)
    with pytest.raises(ValueError, match="license must be a non-empty"):
        write_crate(small_run, tmp_path / "x.zip", license="")
    assert not (tmp_path / "x.zip").exists()


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
    assert meta["@context"] == list(CONTEXTS)  # the contexts the offline validator is given
    ids = [e["@id"] for e in meta["@graph"]]
    assert len(ids) == len(set(ids))
    assert not [(e["@id"], k) for e in meta["@graph"] for k, v in e.items() if isinstance(v, list) and len(v) == 1]


def test_recorded_location_escaping_the_folder_is_refused(tmp_path):
    root = record_everything(tmp_path)
    run = yp.load(root)[0].runs[0]
    task_file = root / "tasks" / f"{run.task.task_id}.json"
    task_file.write_text(task_file.read_text().replace(run.model_versions[0].path, "../../../data.pt"))
    with pytest.raises(ValueError, match="escapes the workflow run folder"):
        write_crate(root, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
