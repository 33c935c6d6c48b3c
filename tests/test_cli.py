"""The `yprov-wf` command: show, merge, validate, recover; bad input is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import prov
import pytest

import yprov_wf as yp
from tests.conftest import NS, REPO, only_run_dir
from yprov_wf.cli import main


@pytest.fixture
def workflow_run(save_dir, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("x")
    with yp.workflow("cli", namespace=NS, save_dir=save_dir):
        with yp.task("prepare", outputs=[data]):
            pass
        with yp.task("train", inputs=[data]), yp.start_run(NS, "mlp"):
            for i in range(5):
                yp.log_metric("loss", 1.0 / (i + 1), context=yp.Context.TRAINING)
            yp.log_artifact(data)
    return only_run_dir(save_dir)


def test_show_prints_the_tree_with_statuses_and_last_metrics(workflow_run, capsys):
    assert main(["show", str(workflow_run.parent.parent)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("cli  ") and "completed" in out
    assert "├── prepare" in out and "└── train" in out and "run mlp-" in out
    assert "loss@training=0.2" in out


def test_merge_writes_one_document_with_every_bundle(workflow_run, tmp_path):
    out = tmp_path / "merged.json"
    assert main(["merge", str(workflow_run), "-o", str(out)]) == 0
    doc = prov.read(str(out), format="json")
    assert len(doc.bundles) == 2
    wf = json.loads((workflow_run / "workflow.json").read_text())
    assert set(wf["activity"]) <= set(json.loads(out.read_text())["activity"])


def test_validate_passes_then_finds_tampering(workflow_run, capsys):
    assert main(["validate", str(workflow_run)]) == 0
    assert capsys.readouterr().out.strip() == "valid"
    artifact = next((workflow_run / "artifacts").rglob("data.txt"))
    artifact.write_text("tampered")
    (workflow_run / "metrics").joinpath(next((workflow_run / "metrics").iterdir()).name).unlink()
    assert main(["validate", str(workflow_run)]) == 1
    out = capsys.readouterr().out
    assert "sha256 of artifacts/" in out and "missing" in out and "2 finding(s)" in out


def test_validate_reports_unparsable_and_escaping_locations(workflow_run, capsys):
    task_file = next((workflow_run / "tasks").glob("train-*.json"))
    doc = json.loads(task_file.read_text())
    bundle = next(iter(doc["bundle"].values()))
    bundle["entity"]["user:evil"] = {"ywf:path": "../../../../etc/passwd", "ywf:sha256": "0" * 64}
    task_file.write_text(json.dumps(doc))
    (workflow_run / "tasks" / "broken.json").write_text("{not json")
    assert main(["validate", str(workflow_run)]) == 1
    out = capsys.readouterr().out
    assert "escapes the provenance folder" in out and "does not parse" in out


@pytest.mark.parametrize("argv", [
    ["show", "/nonexistent/dir"],
    ["merge", "/nonexistent/dir", "-o", "x.json"],
    ["validate", "/nonexistent"],
    ["bogus"],
    [],
    ["merge", "."],  # missing -o
])
def test_bad_input_is_one_line_and_exit_2(argv, tmp_path):
    result = subprocess.run([sys.executable, "-m", "yprov_wf.cli", *argv], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("yprov-wf: error:")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_merge_of_a_folder_with_no_workflow_is_exit_2(tmp_path, capsys):
    assert main(["merge", str(tmp_path), "-o", str(tmp_path / "m.json")]) == 2
    assert "no workflow run found" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = REPO / ".venv" / "bin" / "yprov-wf"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"yprov-wf {yp.__version__}"
