"""log_source_code and log_execution_command: copies with digests, git state, redaction, PROV mapping."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, only_run_dir, relations, run_python, value
from yprov_wf.layout import digest_path, sha256_file
from yprov_wf.prov.reading import read_task_file
from yprov_wf.recording.journal import replay_task

GIT = shutil.which("git")


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run([GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with a committed package, an uncommitted change, junk folders and a remote with a token."""
    r = tmp_path / "project"
    (r / "pkg").mkdir(parents=True)
    (r / "pkg" / "model.py").write_text("WIDTH = 1\n")
    (r / "train.py").write_text("print('train')\n")
    _git(r, "init", "-q", "-b", "main")
    _git(r, "remote", "add", "origin", "https://alice:s3cr3t-token@git.example.org/team/project.git")
    _git(r, "add", ".")
    _git(r, "commit", "-q", "-m", "first")
    (r / "pkg" / "model.py").write_text("WIDTH = 2\n")  # uncommitted change
    (r / "pkg" / "__pycache__").mkdir()
    (r / "pkg" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"junk")
    (r / "venv").mkdir()
    (r / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (r / "venv" / "lib.py").write_text("installed = True\n")
    (r / "secret-link").symlink_to("/etc/hostname")
    return r


def _one_run(save_dir: Path):
    return read_task_file(next((only_run_dir(save_dir) / "tasks").glob("*.json"))).runs[0]


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_folder_copy_with_git_state(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    save = repo / "prov"  # the provenance folder inside the copied folder is never copied into itself
    with yp.start_run(NS, "src", provenance_save_dir=save):
        (copy,) = yp.log_source_code(repo)
    copied = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    assert copied == ["pkg/model.py", "train.py"]  # no .git, __pycache__, virtual env, symlink, prov folder
    assert (copy / "pkg" / "model.py").read_text() == "WIDTH = 2\n"
    (src,) = _one_run(save).sources
    assert src.files == 2 and (src.sha256, src.size) == digest_path(copy)
    assert src.git_commit == _git(repo, "rev-parse", "HEAD") and len(src.git_commit) == 40
    assert src.git_branch == "main" and src.git_dirty is True
    assert src.git_remote == "https://***@git.example.org/team/project.git"
    diff = only_run_dir(save) / src.git_diff
    assert "-WIDTH = 1" in diff.read_text() and "+WIDTH = 2" in diff.read_text()
    assert sha256_file(diff) == src.git_diff_sha256
    assert "s3cr3t" not in "".join(p.read_text(errors="replace") for p in save.rglob("*.json"))


def test_running_script_is_copied(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import yprov_wf as yp\n"
        f"with yp.start_run({NS!r}, 'job', provenance_save_dir='prov'):\n"
        "    print(yp.log_source_code()[0])\n"
        "    yp.log_execution_command()\n"
    )
    result = subprocess.run([sys.executable, str(script), "--lr", "0.1", "--api-token", "abc123",
                             "--db=postgres://bob:pw@db.example.org/x"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                                            "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    copy = Path(tmp_path / result.stdout.strip())
    assert copy.read_text() == script.read_text() and copy.is_relative_to(tmp_path / "prov")
    run = _one_run(tmp_path / "prov")
    (src,) = run.sources
    assert src.source == str(script) and src.git_commit is None and src.sha256 == sha256_file(script)
    assert run.command.argv == [str(script), "--lr", "0.1", "--api-token", "***", "--db=postgres://***@db.example.org/x"]
    assert run.command.cwd == str(tmp_path) and run.command.executable == sys.executable
    text = "".join(p.read_text() for p in (tmp_path / "prov").rglob("*.json"))
    assert "abc123" not in text and "bob:pw" not in text


def test_prov_mapping_of_source_and_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("x = 1\n")
    with yp.start_run(NS, "map", provenance_save_dir="prov") as run:
        yp.log_source_code(["a.py"])
        yp.log_execution_command()
    bundle = bundle_of(next((only_run_dir(tmp_path / "prov") / "tasks").glob("*.json")))
    (src_id, src), = by_type(bundle, "SourceCode").items()
    assert value(src["ywf:sha256"]) == sha256_file(tmp_path / "a.py")
    assert value(src["ywf:path"]).startswith(f"artifacts/{run.run_id}/source/")
    used = {(r["prov:activity"], r["prov:entity"]) for r in relations(bundle, "used")}
    (run_id, attrs), = by_type(bundle, "MLRun").items()
    assert (run_id, src_id) in used  # the source code is used by the run
    assert value(attrs["ywf:workingDirectory"]) == str(tmp_path)
    assert value(attrs["ywf:pythonExecutable"]) == sys.executable
    assert value(attrs["ywf:argv"]).startswith("[")


def test_journal_replay_keeps_source_and_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("x = 1\n")
    run = yp.start_run(NS, "journal", provenance_save_dir="prov")
    try:
        yp.log_source_code("a.py")
        yp.log_execution_command()
        task = replay_task(run.workflow.dir.task_journal(run.task.record.task_id))
        (rec,) = task.runs
        assert rec.sources[0].name == "a.py" and rec.command.cwd == str(tmp_path)
    finally:
        yp.end_run()


def test_bad_source_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with yp.start_run(NS, "bad", provenance_save_dir="prov"):
        with pytest.raises(FileNotFoundError, match="no-such-file.py"):
            yp.log_source_code("no-such-file.py")
        with pytest.raises(ValueError, match="interpreter's own files"):
            yp.log_source_code(sysconfig.get_paths()["stdlib"] + "/json")
        with pytest.raises(ValueError, match="outside the allowed folders"):
            yp.log_source_code("/etc/hostname")
        with pytest.raises(ValueError, match="empty list"):
            yp.log_source_code([])
    assert _one_run(tmp_path / "prov").sources == []
    artifacts = only_run_dir(tmp_path / "prov") / "artifacts"
    assert not (artifacts.exists() and any(artifacts.rglob("*")))  # nothing half-copied


def test_no_script_in_an_interactive_session(tmp_path):
    code = (f"import yprov_wf as yp\nyp.start_run({NS!r}, 'i', provenance_save_dir='prov')\n"
            "try:\n    yp.log_source_code()\nexcept FileNotFoundError as e:\n    print('error:', e)\nyp.end_run()\n")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "error: no running script" in result.stdout
