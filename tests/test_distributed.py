"""Distributed training: one bundle per rank, linked in one collection, under real torchrun (gloo, CPU)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import yprov_wf as yp
from tests.conftest import NS, REPO, bundle_of, by_type, load, only_run_dir
from yprov_wf import distributed
from yprov_wf.cli import main as cli

TRAIN = REPO / "example_workflows" / "ddp_digits" / "train.py"


def _torchrun(cwd, *args, env=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(TRAIN),
           "--epochs", "1", "--save-dir", "prov", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=400,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                               **(env or {})})


def _rank_tasks(root):
    out = {}
    for f in root.glob("tasks/*.json"):
        b = bundle_of(f)
        (task,) = by_type(b, "TaskRun").values()
        out[int(task["ywf:rank"]["$"])] = b
    return out


def test_two_ranks_started_seconds_apart_share_one_workflow_run(tmp_path):
    result = _torchrun(tmp_path, "--start-delay", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    root = only_run_dir(tmp_path / "prov")
    ranks = _rank_tasks(root)
    assert set(ranks) == {0, 1}
    for rank, b in ranks.items():
        (run,) = by_type(b, "MLRun").values()
        assert int(run["ywf:rank"]["$"]) == rank and int(run["ywf:worldSize"]["$"]) == 2
        assert run["ywf:device"] == "cpu" and run["ywf:status"] == "completed"
        (dataset,) = by_type(b, "Dataset").values()
        assert int(dataset["ywf:samples"]["$"]) == 1797
    assert by_type(ranks[0], "MetricSeries") and not by_type(ranks[1], "MetricSeries"), \
        "collect_all_processes=False keeps metrics on rank 0; rank 1's participation is still recorded"
    wf = load(root / "workflow.json")
    assert len(by_type(wf, "TaskRun")) == 2 and len(wf["hadMember"]) == 2
    assert cli(["validate", str(root)]) == 0
    df = pd.read_parquet(next(root.glob("metrics/*.parquet")))
    assert set(df.key) == {"loss"}


def test_a_killed_rank_shows_as_missing_then_crashed_after_recover(tmp_path):
    result = _torchrun(tmp_path, "--die-rank", "1", env={"YPROV_WF_RANK_WAIT": "1"})
    assert result.returncode != 0, "torchrun reports the dead worker"
    root = only_run_dir(tmp_path / "prov")
    wf = load(root / "workflow.json")
    status = {int(a["ywf:rank"]["$"]): a["ywf:status"] for a in by_type(wf, "TaskRun").values()}
    assert status == {0: "completed", 1: "missing"}
    assert set(_rank_tasks(root)) == {0}, "the surviving rank's bundle is intact"

    assert cli(["recover", str(root)]) == 0
    wf = load(root / "workflow.json")
    status = {int(a["ywf:rank"]["$"]): a["ywf:status"] for a in by_type(wf, "TaskRun").values()}
    assert status == {0: "completed", 1: "crashed"}
    assert len(wf["hadMember"]) == 2
    assert cli(["validate", str(root)]) == 0


def test_rank_detection_order(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID",
                 "SLURM_JOB_ID", distributed.GROUP_ENV):
        monkeypatch.delenv(name, raising=False)
    assert distributed.detect() == distributed.RankInfo(0, 1, 0, None)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    slurm = distributed.detect()
    assert (slurm.rank, slurm.world_size) == (3, 8) and slurm.group
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    torchrun = distributed.detect()
    assert (torchrun.rank, torchrun.world_size) == (1, 2) and torchrun.group != slurm.group
    assert distributed.detect(rank=0, world_size=4).rank == 0
    with pytest.raises(ValueError, match="rank 5"):
        distributed.detect(rank=5, world_size=4)


def test_ranks_launched_by_a_task_are_started_by_it(save_dir, tmp_path):
    child = """
import yprov_wf as yp
yp.start_run("https://example.org/test/", "rank-run", rank=1, world_size=2)
yp.log_metric("loss", 1.0)
yp.end_run()
"""
    from tests.conftest import run_python

    with yp.workflow("launch", namespace=NS, save_dir=save_dir), yp.task("launcher") as launcher:
        result = run_python(child, tmp_path, env={**launcher.environment, "YPROV_WF_GROUP_ID": "g1"})
        assert result.returncode == 0, result.stderr
    root = only_run_dir(save_dir)
    rank_bundle = bundle_of(next(root.glob("tasks/rank-run-*.json")))
    (task_id,) = by_type(rank_bundle, "TaskRun")
    starter = {r["prov:activity"]: r["prov:starter"] for r in rank_bundle["wasStartedBy"].values()}[task_id]
    assert starter == f"user:task/{launcher.record.task_id}"
    status = sorted((a["ywf:name"], a["ywf:status"]) for a in by_type(load(root / "workflow.json"), "TaskRun").values())
    assert status == [("launcher", "completed"), ("rank-run", "completed"), ("rank-run", "missing")], \
        "rank 0 of the group never ran: shown as missing"


def test_ddp_inside_a_snakemake_rule_nests_the_ranks_under_the_job(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("YPROV_WF_")}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "integrations")]), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "example_workflows" / "ddp_digits" / "Snakefile"),
         "--directory", str(tmp_path), "-c", "2", "--logger", "yprov", "--config", "epochs=1",
         "--logger-yprov-namespace", NS],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    root = only_run_dir(tmp_path / "prov")
    wf = load(root / "workflow.json")
    tasks = by_type(wf, "TaskRun")
    (job_id,) = [i for i, a in tasks.items() if a["ywf:name"] == "ddp_train"]
    ranks = {i: a for i, a in tasks.items() if "ywf:rank" in a}
    assert sorted(int(a["ywf:rank"]["$"]) for a in ranks.values()) == [0, 1]
    starters = {r["prov:activity"]: r["prov:starter"] for r in wf["wasStartedBy"].values()}
    assert all(starters[i] == job_id for i in ranks), "each rank's task was started by the Snakemake job"
    assert len(wf["hadMember"]) == 3 and cli(["validate", str(root)]) == 0
