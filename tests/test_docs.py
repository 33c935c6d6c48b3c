"""The documentation is executable: every fenced ```python block of docs/*.md (and README.md) runs in a
fresh interpreter whose working directory is a temporary folder, and the commands of docs/cli.md run on
a real workflow run with the exit statuses the page documents.

A block fenced as ```python no-run is shown but not run (and gets no test item): keep those rare.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
if (ROOT / "README.md").is_file():
    DOCS.append(ROOT / "README.md")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fenced_blocks(path: Path) -> list[tuple[int, str, str]]:
    """(first line number, info string, code) of each fenced block of a Markdown file."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start, body = m["fence"], m["info"].strip(), i + 1, []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence[0] * len(fence))
                                      and not lines[i].strip().strip(fence[0])):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        blocks.append((start, info, "\n".join(body) + "\n"))
    return blocks


def python_blocks() -> list:
    params = []
    for path in DOCS:
        for line, info, code in fenced_blocks(path):
            words = info.split()
            if not words or words[0] != "python" or "no-run" in words[1:]:
                continue
            name = f"{path.relative_to(ROOT).as_posix()}:{line}"
            params.append(pytest.param(code, id=name))
    return params


def _env() -> dict[str, str]:
    """The interpreter's environment minus settings that would change what the examples do."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("YPROV_WF_") and k not in ("RANK", "SLURM_PROCID", "WORLD_SIZE", "SLURM_NTASKS")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_python(code: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    script = cwd / "_doc_example.py"
    script.write_text(code, encoding="utf-8")
    try:
        return subprocess.run([sys.executable, script.name], cwd=cwd, env=_env(), capture_output=True, text=True,
                              timeout=timeout)
    finally:
        script.unlink(missing_ok=True)


def test_docs_have_python_examples():
    assert DOCS, "no docs found"
    assert python_blocks(), "no python blocks found in the docs"


@pytest.mark.parametrize("code", python_blocks())
def test_python_example_runs(code: str, tmp_path: Path):
    result = run_python(code, tmp_path)
    assert result.returncode == 0, f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


# -- docs/cli.md ---------------------------------------------------------------------------------------

CLI_DOC = ROOT / "docs" / "cli.md"


def yprov_wf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yprov_wf.cli", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=120)


def documented_commands() -> set[str]:
    """The sub-commands the page shows being run (``$ yprov-wf <command> …`` lines)."""
    text = CLI_DOC.read_text(encoding="utf-8")
    return set(re.findall(r"^\$ yprov-wf (\w+)", text, flags=re.M))


@pytest.fixture
def cli_runs(tmp_path: Path) -> Path:
    """A finished workflow run and a crashed one under tmp_path/prov, made by the page's own example."""
    blocks = [code for _, info, code in fenced_blocks(CLI_DOC) if info.split()[:1] == ["python"]]
    assert blocks, "docs/cli.md has no python example that makes the runs"
    result = run_python(blocks[0], tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_cli_doc_covers_every_command():
    from yprov_wf.cli import commands

    assert set(commands()) <= documented_commands()


def test_cli_commands_and_exit_codes(cli_runs: Path):
    cwd = cli_runs
    ok = yprov_wf("show", "prov", cwd=cwd)
    assert ok.returncode == 0, ok.stderr
    assert "demo" in ok.stdout and "running" in ok.stdout and "loss@training=0.3333" in ok.stdout

    findings = yprov_wf("validate", "prov", cwd=cwd)  # the killed run has no workflow.json yet
    assert findings.returncode == 1, findings.stdout + findings.stderr
    assert "yprov-wf recover" in findings.stdout and "2 finding(s)" in findings.stdout

    recovered = yprov_wf("recover", "prov", cwd=cwd)
    assert recovered.returncode == 0, recovered.stderr
    assert recovered.stdout.startswith("recovered 1 task(s) and 1 workflow run(s)")
    again = yprov_wf("recover", "prov", cwd=cwd)
    assert again.returncode == 0 and again.stdout.startswith("recovered 0 task(s) and 0 workflow run(s)")

    shown = yprov_wf("show", "prov", cwd=cwd)
    assert shown.returncode == 0 and "crashed" in shown.stdout and "running" not in shown.stdout

    valid = yprov_wf("validate", "prov", cwd=cwd)
    assert valid.returncode == 0 and valid.stdout.strip() == "valid", valid.stdout
    task_file = next((cwd / "prov" / "demo").glob("*/tasks/*.json"))
    one = yprov_wf("validate", str(task_file), cwd=cwd)
    assert one.returncode == 0 and one.stdout.strip() == "valid", one.stdout

    merged = yprov_wf("merge", "prov", "-o", "merged.json", cwd=cwd)
    assert merged.returncode == 0 and merged.stdout.strip() == "wrote merged.json (2 bundles)", merged.stdout
    from prov.model import ProvDocument

    doc = ProvDocument.deserialize(source=str(cwd / "merged.json"), format="json")
    assert len(doc.bundles) == 2

    shutil.copytree(cwd / "prov", cwd / "prov-copy")
    parquet = next((cwd / "prov-copy" / "demo").glob("*/metrics/*.parquet"))
    with open(parquet, "ab") as f:
        f.write(b"junk\n")
    tampered = yprov_wf("validate", "prov-copy/demo", cwd=cwd)
    assert tampered.returncode == 1
    assert "does not match the record" in tampered.stdout and "2 finding(s)" in tampered.stdout


@pytest.mark.parametrize("args", [
    ("show", "missing"),
    ("show", "empty"),  # exists, but holds no workflow run
    ("merge", "prov"),  # -o is required
    ("merge", "missing", "-o", "merged.json"),
    ("validate", "missing"),
    ("validate", "empty"),
    ("recover", "missing"),
    ("frobnicate", "prov"),
    (),
])
def test_cli_bad_input_exits_2_with_one_line(args: tuple[str, ...], tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = yprov_wf(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("yprov-wf: error: "), result.stderr
    assert "Traceback" not in result.stderr
