"""Tasks in other processes join a workflow run: they write their own bundles, the owner links them."""

from __future__ import annotations

import numpy as np

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, load, only_run_dir, relations, run_python


def test_child_process_tasks_join_through_the_environment(save_dir, tmp_path):
    child = """
import yprov_wf as yp
with yp.task("child-task"):
    with yp.start_run("https://example.org/test/", "child-run"):
        yp.log_metric("loss", 0.25)
"""
    with yp.workflow("multi", namespace=NS, save_dir=save_dir) as wf, yp.task("parent-task"):
        result = run_python(child, tmp_path, env=wf.environment)
        assert result.returncode == 0, result.stderr
    root = only_run_dir(save_dir)
    names = {a["ywf:name"] for a in by_type(load(root / "workflow.json"), "TaskRun").values()}
    assert names == {"parent-task", "child-task"}
    child_bundle = bundle_of(next(root.glob("tasks/child-task-*.json")))
    (task,) = by_type(child_bundle, "TaskRun")
    starters = {r["prov:activity"]: r["prov:starter"] for r in relations(child_bundle, "wasStartedBy")}
    (wf_id,) = by_type(load(root / "workflow.json"), "WorkflowRun")
    assert starters[task] == wf_id
    assert len([p for p in root.rglob("*.json") if p.name == "workflow.json"]) == 1


def test_join_workflow_explicitly(save_dir):
    with yp.workflow("owner", namespace=NS, save_dir=save_dir) as wf:
        participant = yp.join_workflow(wf.dir.root)
        assert (participant.name, participant.run_id, participant.namespace) == ("owner", wf.run_id, NS)
    assert not participant.owner


def test_values_flow_between_tasks_through_the_record_log_output_returned(save_dir):
    with yp.workflow("values", namespace=NS, save_dir=save_dir):
        with yp.task("make") as t:
            made = t.log_output(np.arange(10.0), name="return")
        with yp.task("use") as t:
            t.log_input(made, name="x")
        with yp.task("equal") as t:  # the same bytes, not received from "make": no link (no join on digests)
            t.log_input(np.arange(10.0), name="x")
    wf = load(only_run_dir(save_dir) / "workflow.json")
    tasks = {a["ywf:name"]: i for i, a in by_type(wf, "TaskRun").items()}
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(wf, "wasInformedBy")}
    assert informed == {(tasks["use"], tasks["make"])}
    used = {r["prov:activity"]: r["prov:entity"] for r in relations(wf, "used")}
    generated = {r["prov:activity"]: r["prov:entity"] for r in relations(wf, "wasGeneratedBy")
                 if "/output/" in r["prov:entity"]}
    assert used[tasks["use"]] == generated[tasks["make"]] != used[tasks["equal"]]
    value = by_type(wf, "DataValue")[generated[tasks["make"]]]
    assert "shape=[10]" in value["ywf:description"]
