"""Agents: who ran a workflow (the OS user, replaced or turned off by the user) and the software that acted,
in PROV-JSON (read back by prov and by yprov-wf), in `yprov-wf show` and in the HTML report."""

from __future__ import annotations

import getpass
import platform

import pytest
from prov.model import ProvDocument

import yprov_wf as yp
from tests.conftest import NS, bundle_of, load, only_run_dir, relations, value
from yprov_wf.cli import main
from yprov_wf.recording.agents import USER_ENV
from yprov_wf.recording.records import AgentRecord


def _workflow(save_dir, **options):
    with yp.workflow("agents", namespace=NS, save_dir=save_dir, **options), yp.task("train"):
        with yp.start_run(NS, "mlp"):
            yp.log_metric("loss", 0.5)
    return only_run_dir(save_dir)


def _agents(scope: dict) -> dict[str, dict]:
    return {ident: {k: value(x) for k, x in attrs.items()} for ident, attrs in scope.get("agent", {}).items()}


def test_the_os_user_and_the_software_are_agents_of_every_activity(save_dir, monkeypatch):
    monkeypatch.delenv(USER_ENV, raising=False)
    root = _workflow(save_dir)
    wf = load(root / "workflow.json")
    agents = _agents(wf)
    roles = {a["ywf:agentRole"]: (ident, a) for ident, a in agents.items()}
    assert set(roles) == {"person", "recorder", "engine"}
    person, attrs = roles["person"]
    assert person == f"user:person/{getpass.getuser()}" and attrs["prov:type"] == "prov:Person"
    assert roles["recorder"][1]["ywf:softwareVersion"] == yp.__version__
    assert roles["engine"][1]["prov:label"] == f"python {platform.python_version()}"
    (w,) = [i for i, a in wf["activity"].items() if value(a["prov:type"]) == "ywf:WorkflowRun"]
    assert {r["prov:agent"] for r in relations(wf, "wasAssociatedWith") if r["prov:activity"] == w} == set(agents)
    delegations = {(r["prov:delegate"], r["prov:responsible"]) for r in relations(wf, "actedOnBehalfOf")}
    assert delegations == {(roles[r][0], person) for r in ("recorder", "engine")}
    (task_file,) = (root / "tasks").glob("*.json")
    bundle = bundle_of(task_file)
    assert _agents(bundle) == agents  # the bundle is self-contained: the same agents, declared again
    associated: dict[str, set[str]] = {}
    for r in relations(bundle, "wasAssociatedWith"):
        associated.setdefault(r["prov:activity"], set()).add(agents[r["prov:agent"]]["ywf:agentRole"])
    kinds = {i: value(a["prov:type"]) for i, a in bundle["activity"].items()}
    assert {kinds[a]: roles for a, roles in associated.items()} == {
        "ywf:TaskRun": {"person", "recorder", "engine"}, "ywf:MLRun": {"person", "recorder"}}
    ProvDocument.deserialize(source=str(task_file), format="json")  # prov reads it


def test_user_replaces_the_person_and_an_iri_becomes_its_identifier(save_dir, monkeypatch):
    monkeypatch.delenv(USER_ENV, raising=False)
    root = _workflow(save_dir, user="https://orcid.org/0000-0002-1825-0097")
    bundle = bundle_of(next((root / "tasks").glob("*.json")))
    people = {i: a for i, a in _agents(bundle).items() if a["ywf:agentRole"] == "person"}
    assert list(people) == ["person:0000-0002-1825-0097"]
    assert bundle["prefix"]["person"] == "https://orcid.org/"
    assert yp.load(root)[0].agents[0] == AgentRecord("person", "https://orcid.org/0000-0002-1825-0097")


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_person_can_be_turned_off(save_dir, monkeypatch, how):
    if how == "option":
        monkeypatch.setenv(USER_ENV, "someone")
        root = _workflow(save_dir, user=False)
    else:
        monkeypatch.setenv(USER_ENV, "none")
        root = _workflow(save_dir)
    wf = load(root / "workflow.json")
    assert {a["ywf:agentRole"] for a in _agents(wf).values()} == {"recorder", "engine"}
    assert "actedOnBehalfOf" not in wf
    text = (root / "workflow.json").read_text() + next((root / "tasks").glob("*.json")).read_text()
    assert getpass.getuser() not in {a.get("ywf:userName") for a in _agents(wf).values()}
    assert "someone" not in text


def test_the_env_var_names_the_person_and_a_standalone_run_takes_user(tmp_path, monkeypatch):
    monkeypatch.setenv(USER_ENV, "alice")
    monkeypatch.chdir(tmp_path)
    with yp.start_run(NS, "solo", provenance_save_dir="a"):
        pass
    with yp.start_run(NS, "solo", provenance_save_dir="b", user="bob"):
        pass
    assert [a.name for a in yp.load(tmp_path / "a")[0].agents if a.role == "person"] == ["alice"]
    assert [a.name for a in yp.load(tmp_path / "b")[0].agents if a.role == "person"] == ["bob"]


@pytest.mark.parametrize("bad, error", [(42, TypeError), ("", ValueError), ("two\nlines", ValueError)])
def test_a_bad_user_is_refused_naming_it(bad, error, save_dir):
    with pytest.raises(error, match="user"):
        yp.workflow("x", namespace=NS, save_dir=save_dir, user=bad)


def test_a_launcher_in_the_environment_is_an_agent_of_the_task(save_dir, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv(USER_ENV, "carol")
    root = _workflow(save_dir)
    (task,) = yp.load(root)[0].tasks
    assert AgentRecord("launcher", "slurm", None, "4242.0") in task.agents
    ident = "user:" + "workflow/" + root.name + "/agent/slurm-4242.0"
    assert ident in _agents(bundle_of(next((root / "tasks").glob("*.json"))))


def test_show_and_the_report_name_the_agents(save_dir, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(USER_ENV, "dave")
    _workflow(save_dir, engine="python", engine_version="9.9")
    assert main(["show", str(save_dir)]) == 0
    out = capsys.readouterr().out
    assert "agents: by dave · yprov-wf " in out and "python 9.9" in out
    from yprov_wf.viz.report import write_report

    report = tmp_path / "report.html"
    write_report([save_dir], report)
    html = report.read_text()
    assert "<h4>Agents</h4>" in html and "<td>dave</td>" in html and "<td>9.9</td>" in html
