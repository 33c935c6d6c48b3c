"""Energy totals from the real codecarbon offline tracker (in fresh processes, with the network cut),
rolled up from tasks to the workflow; and the environment captured once per workflow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import yprov_wf as yp
from tests.conftest import NS, REPO, bundle_of, by_type, load, only_run_dir, run_python
from yprov_wf.collectors.energy_fields import rollup
from yprov_wf.environment import _head_commit, _platform, environment_variables, installed_packages
from yprov_wf.prov.reading import literal

ENERGY_RUN = """
import json, socket, time
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:])[:200])
    raise OSError("network disabled by the test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = refuse
import codecarbon
starts = []
original_start = codecarbon.OfflineEmissionsTracker.start
def counted(self):
    starts.append(1)
    return original_start(self)
codecarbon.OfflineEmissionsTracker.start = counted
import yprov_wf as yp
from yprov_wf.collectors.energy import energy_meter

with yp.workflow("energy", namespace="https://example.org/", save_dir="prov"):  # energy on from the env
    assert energy_meter().wait(300), energy_meter().unavailable
    for i in range(3):
        with yp.task(f"t{i}"):
            with yp.start_run("https://example.org/", "r"):
                time.sleep(0.3)
                yp.log_carbon_metrics("training", 0)
                time.sleep(0.2)
                yp.log_carbon_metrics("training", 1)
with yp.start_run("https://example.org/", "standalone", provenance_save_dir="prov2", energy=True):
    time.sleep(0.2)
print("RESULT " + json.dumps({"attempts": attempts, "starts": len(starts)}))
"""


@pytest.fixture(scope="module")
def energy_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("energy")
    result = run_python(ENERGY_RUN, cwd, env={"YPROV_WF_ENERGY": "1", "YPROV_WF_ENERGY_COUNTRY": "FRA"},
                        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return cwd, json.loads(line[7:])


def _attrs(record: dict) -> dict:
    return {k: literal(v) for k, v in record.items()}


def test_the_tracker_starts_once_per_process_and_never_calls_the_network(energy_run):
    _, result = energy_run
    assert result["attempts"] == []
    assert result["starts"] == 1, "one tracker for 4 tasks in 2 workflow runs"


def test_every_task_carries_its_energy_and_the_workflow_their_sum(energy_run):
    cwd, _ = energy_run
    root = only_run_dir(cwd / "prov")
    tasks = []
    for f in (root / "tasks").glob("*.json"):
        (task,) = by_type(bundle_of(f), "TaskRun").values()
        tasks.append(_attrs(task))
    assert len(tasks) == 3
    for t in tasks:
        assert t["ywf:energyKWh"] > 0 and t["ywf:emissionsKgCO2eq"] > 0
        assert t["ywf:energyCountry"] == "FRA" and t["ywf:energyTool"].startswith("codecarbon ")
        assert t["ywf:durationSeconds"] >= 0.5
        assert 0.4 <= t["ywf:energyMeasuredSeconds"] <= t["ywf:durationSeconds"] + 0.01
        parts = t["ywf:cpuEnergyKWh"] + t["ywf:gpuEnergyKWh"] + t["ywf:ramEnergyKWh"]
        assert parts == pytest.approx(t["ywf:energyKWh"], rel=1e-6)
    (wf,) = by_type(load(root / "workflow.json"), "WorkflowRun").values()
    wf = _attrs(wf)
    assert wf["ywf:energyTaskCount"] == 3
    for key in ("ywf:energyKWh", "ywf:emissionsKgCO2eq", "ywf:ramEnergyKWh"):
        assert wf[key] == pytest.approx(sum(t[key] for t in tasks), rel=1e-9)
    assert wf["ywf:taskDurationSeconds"] == pytest.approx(sum(t["ywf:durationSeconds"] for t in tasks))
    assert wf["ywf:durationSeconds"] >= wf["ywf:taskDurationSeconds"] - 0.01


def test_log_carbon_metrics_records_energy_emissions_and_power(energy_run):
    cwd, _ = energy_run
    f = next((only_run_dir(cwd / "prov") / "tasks").glob("*.json"))
    series = {literal(s["ywf:key"]): _attrs(s) for s in by_type(bundle_of(f), "MetricSeries").values()}
    assert {"energy_kwh", "emissions_kg", "cpu_power_w", "ram_power_w", "cpu_energy_kwh"} <= set(series)
    assert not any(k.startswith("gpu") for k in series), "no GPU: no GPU energy series"
    energy = series["energy_kwh"]
    assert energy["ywf:count"] == 2 and energy["ywf:last"] > energy["ywf:first"] >= 0
    assert series["ram_power_w"]["ywf:last"] > 0


def test_a_standalone_run_gets_energy_totals_too(energy_run):
    cwd, _ = energy_run
    f = next((only_run_dir(cwd / "prov2") / "tasks").glob("*.json"))
    (task,) = by_type(bundle_of(f), "TaskRun").values()
    assert literal(task["ywf:energyKWh"]) > 0
    (wf,) = by_type(load(next((cwd / "prov2").glob("*/*/workflow.json"))), "WorkflowRun").values()
    assert literal(wf["ywf:energyKWh"]) == literal(task["ywf:energyKWh"])


def test_energy_is_off_unless_asked(save_dir, monkeypatch):
    monkeypatch.delenv("YPROV_WF_ENERGY", raising=False)
    with yp.workflow("quiet", namespace=NS, save_dir=save_dir):
        with yp.task("t"):
            pass
    text = (only_run_dir(save_dir) / "workflow.json").read_text()
    assert "energyKWh" not in text and "durationSeconds" not in text


def test_rollup_sums_only_measured_tasks():
    tasks = [{"energyKWh": 1.0, "emissionsKgCO2eq": 0.5, "cpuEnergyKWh": 0.7, "ramEnergyKWh": 0.3,
              "gpuEnergyKWh": 0.0, "durationSeconds": 2.0},
             {"energyKWh": 2.0, "emissionsKgCO2eq": 1.0, "durationSeconds": 3.0},
             {"energyUnavailable": "the energy tracker was still starting", "durationSeconds": 9.0}]
    out = rollup(tasks, started=100.0, ended=110.0)
    assert out["energyKWh"] == 3.0 and out["emissionsKgCO2eq"] == 1.5 and out["cpuEnergyKWh"] == 0.7
    assert out["taskDurationSeconds"] == 5.0 and out["energyTaskCount"] == 2 and out["durationSeconds"] == 10.0
    assert rollup([{"durationSeconds": 1.0}], 0.0, 1.0) == {}


# -- environment --------------------------------------------------------------------------------------


def _workflow_attrs(save_dir: Path) -> dict:
    (wf,) = by_type(load(only_run_dir(save_dir) / "workflow.json"), "WorkflowRun").values()
    return _attrs(wf)


def test_environment_is_recorded_on_the_workflow_activity(save_dir):
    import importlib.metadata
    import os

    with yp.workflow("env", namespace=NS, save_dir=save_dir):
        with yp.task("t"):
            pass
    wf = _workflow_attrs(save_dir)
    assert wf["ywf:cpuCount"] == os.cpu_count() and wf["ywf:cpuModel"]
    assert wf["ywf:pythonVersion"] == ".".join(map(str, sys.version_info[:3]))
    assert wf["ywf:os"] and wf["ywf:host"]
    packages = json.loads(wf["ywf:packages"])
    assert packages["yprov-wf"] == yp.__version__
    assert packages["psutil"] == importlib.metadata.version("psutil")
    assert "ywf:gpuModels" not in wf, "no GPU here"


def test_installed_packages_agree_with_importlib_metadata():
    import importlib.metadata

    found = installed_packages()
    for name in ("numpy", "pyarrow", "prov", "codecarbon", "nvidia-ml-py"):
        assert found[name] == importlib.metadata.version(name), name


def test_egg_info_folders_and_files_are_read_without_importlib_metadata(tmp_path, monkeypatch):
    (tmp_path / "old_pkg.egg-info").mkdir()
    (tmp_path / "old_pkg.egg-info" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: Old_Pkg\nVersion: 0.3\n\n"
                                                           "Version: not a header\n")
    (tmp_path / "flat-1.0-py3.11.egg-info").write_text("Metadata-Version: 1.0\nName: flat\nVersion: 1.0\n")
    (tmp_path / "broken.egg-info").mkdir()  # no PKG-INFO: skipped
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert installed_packages() == {"old-pkg": "0.3", "flat": "1.0"}


def test_platform_string_matches_the_standard_library_without_a_subprocess(monkeypatch):
    import platform

    expected = platform.platform(terse=True)
    monkeypatch.setattr(platform, "_uname_cache", None)  # forget the processor that platform() just read
    monkeypatch.setattr(subprocess, "Popen", None)  # any subprocess would fail now
    assert _platform() == expected


def test_head_commit_is_read_from_git_directly_even_in_a_worktree():
    expected = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert _head_commit(REPO / ".git") == expected


def test_git_commit_and_dirty_state_of_the_scripts_repository(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text("import yprov_wf as yp\nwith yp.workflow('g', namespace='https://example.org/', "
                      "save_dir='prov'):\n    pass\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    def record() -> dict:
        out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"  # a fresh folder per run
        out.mkdir()
        result = subprocess.run([sys.executable, str(script)], cwd=out, capture_output=True, text=True,
                                env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=120)
        assert result.returncode == 0, result.stderr
        return _workflow_attrs(out / "prov")

    wf = record()
    assert wf["ywf:gitCommit"] == head and wf["ywf:gitDirty"] is False
    assert wf["ywf:gitRepository"] == str(repo.resolve())
    script.write_text(script.read_text() + "# edited\n")
    assert record()["ywf:gitDirty"] is True


def test_chosen_variables_are_captured_and_credentials_redacted(monkeypatch):
    monkeypatch.setenv("MY_SESSION_ID", "abc")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("DB_PASSWD", "pw")
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    monkeypatch.setenv("SLURM_API_KEY", "k")
    got = environment_variables(["MY_SESSION_ID", "GITHUB_TOKEN", "DB_PASSWD", "PLAIN_SETTING", "SLURM_*", "UNSET_X"])
    assert got == {"env_MY_SESSION_ID": "***", "env_GITHUB_TOKEN": "***", "env_DB_PASSWD": "***",
                   "env_PLAIN_SETTING": "visible", "env_SLURM_API_KEY": "***", "env_SLURM_JOB_NAME": "train"}
    got = environment_variables(["MY_SESSION_ID", "PLAIN_SETTING"], allow=["MY_SESSION_*"], deny=["PLAIN_*"])
    assert got == {"env_MY_SESSION_ID": "abc", "env_PLAIN_SETTING": "***"}


def test_workflow_env_options_reach_the_file_and_secrets_do_not(tmp_path):
    secret = "s3cr3t-COOKIE-987"
    code = """
import yprov_wf as yp
with yp.workflow("w", namespace="https://example.org/", save_dir="prov", env_vars=["APP_*"],
                 env_allow=["APP_SESSION_NAME"], env_deny=["APP_HOST"]):
    pass
"""
    env = {"APP_COOKIE": secret, "APP_SESSION_NAME": "nightly", "APP_HOST": "db.internal", "APP_MODE": "fast"}
    result = run_python(code, tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    text = (only_run_dir(tmp_path / "prov") / "workflow.json").read_text()
    assert secret not in text and "db.internal" not in text
    wf = _workflow_attrs(tmp_path / "prov")
    assert wf["ywf:env_APP_COOKIE"] == "***" and wf["ywf:env_APP_HOST"] == "***"
    assert wf["ywf:env_APP_SESSION_NAME"] == "nightly" and wf["ywf:env_APP_MODE"] == "fast"


def test_without_codecarbon_energy_degrades_with_one_warning_and_says_why(tmp_path):
    code = """
import sys, warnings
sys.modules["codecarbon"] = None  # as if the 'energy' extra were not installed
import yprov_wf as yp
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    with yp.workflow("w", namespace="https://example.org/", save_dir="prov", energy=True):
        with yp.task("t"):
            with yp.start_run("https://example.org/", "r"):
                for step in range(3):
                    yp.log_carbon_metrics("training", step)
                yp.log_metric("loss", 0.5)
print("WARNINGS", sum(issubclass(w.category, yp.ProvenanceWarning) for w in seen))
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "WARNINGS 1" in result.stdout
    f = next((only_run_dir(tmp_path / "prov") / "tasks").glob("*.json"))
    bundle = bundle_of(f)
    (task,) = by_type(bundle, "TaskRun").values()
    assert "codecarbon is not installed" in task["ywf:energyUnavailable"]
    keys = {literal(s["ywf:key"]) for s in by_type(bundle, "MetricSeries").values()}
    assert keys == {"loss"}, "no energy series, not zeros"
