"""Crash safety in real subprocesses: an exception, an exit without end_run, and SIGKILL + recover."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd

from tests.conftest import REPO, bundle_of, by_type, load, only_run_dir, run_python
from yprov_wf.cli import main as cli


def _statuses(root, task_name=""):
    """(run, task, workflow) activity attributes of the (first) task named ``task_name``."""
    b = bundle_of(next((root / "tasks").glob(f"{task_name}*.json")))
    (run,) = by_type(b, "MLRun").values()
    (task,) = by_type(b, "TaskRun").values()
    (wf,) = by_type(load(root / "workflow.json"), "WorkflowRun").values()
    return run, task, wf


def test_uncaught_exception_without_end_run_is_recorded_as_failed(tmp_path):
    code = """
import yprov_wf as yp
yp.start_run("https://example.org/", "crashy", provenance_save_dir="prov")
yp.log_param("lr", 0.1)
yp.log_metric("loss", 0.5)
raise RuntimeError("training diverged")
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 1 and "training diverged" in result.stderr
    run, task, wf = _statuses(only_run_dir(tmp_path / "prov"))
    assert run["ywf:status"] == task["ywf:status"] == wf["ywf:status"] == "failed"
    assert "RuntimeError: training diverged" in run["ywf:error"]


def test_exit_without_end_run_is_closed_as_interrupted(tmp_path):
    code = """
import yprov_wf as yp
yp.start_run("https://example.org/", "forgetful", provenance_save_dir="prov")
for i in range(250):
    yp.log_metric("loss", 1.0 / (i + 1))
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    root = only_run_dir(tmp_path / "prov")
    run, task, wf = _statuses(root)
    assert run["ywf:status"] == task["ywf:status"] == wf["ywf:status"] == "interrupted"
    df = pd.read_parquet(next(root.glob("metrics/*.parquet")))
    assert len(df) == 250, "the unflushed tail is flushed at exit"


def test_sigkill_then_recover_keeps_everything_flushed(tmp_path):
    code = """
import sys, time, torch, yprov_wf as yp
with yp.workflow("killed", namespace="https://example.org/", save_dir="prov"):
    with yp.task("done"):
        pass
    with yp.task("train"):
        yp.start_run("https://example.org/", "victim", save_after_n_logs=100)
        yp.log_param("lr", 0.1)
        yp.save_model_version(torch.nn.Linear(2, 2), "net", step=0)
        for i in range(1050):
            yp.log_metric("loss", float(i), step=i)
        print("ready", flush=True)
        time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    root = only_run_dir(tmp_path / "prov")
    assert not (root / "workflow.json").exists()
    assert cli(["validate", str(root)]) == 1, "an unrecovered run is a finding"

    assert cli(["recover", str(tmp_path / "prov")]) == 0
    run, task, wf = _statuses(root, "train-")
    assert run["ywf:status"] == task["ywf:status"] == wf["ywf:status"] == "crashed"
    b = bundle_of(next((root / "tasks").glob("train-*.json")))
    assert [a["ywf:key"] for a in by_type(b, "Parameter").values()] == ["lr"]
    assert len(by_type(b, "ModelVersion")) == 1
    df = pd.read_parquet(next(root.glob("metrics/*.parquet")))
    assert df.step.tolist() == list(range(1000)), "every flushed point survives; the unflushed 50 are lost"
    done = bundle_of(next((root / "tasks").glob("done-*.json")))
    assert next(iter(by_type(done, "TaskRun").values()))["ywf:status"] == "completed"
    assert len(by_type(load(root / "workflow.json"), "TaskRun")) == 2
    assert cli(["validate", str(root)]) == 0
    assert cli(["recover", str(root)]) == 0, "recovering twice is harmless"


def test_recover_leaves_a_live_process_alone(tmp_path):
    code = """
import time, yprov_wf as yp
yp.start_run("https://example.org/", "alive", provenance_save_dir="prov")
print("ready", flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    try:
        assert proc.stdout.readline().strip() == "ready"
        from yprov_wf.recording.recover import recover

        report = recover(tmp_path / "prov")
        assert len(report.still_running) == 1 and not report.recovered_tasks
        assert not list((tmp_path / "prov").rglob("tasks/*.json"))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    time.sleep(0.1)
