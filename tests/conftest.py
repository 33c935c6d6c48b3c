"""Shared fixtures: a temporary provenance folder and helpers to find what a workflow wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NS = "https://example.org/test/"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def save_dir(tmp_path: Path) -> Path:
    return tmp_path / "prov"


@pytest.fixture(scope="session")
def prefect_api():
    """One real Prefect test API server for the session (the Prefect test modules use it)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def only_run_dir(save_dir: Path) -> Path:
    """The single workflow run folder under a save dir."""
    runs = [p for p in save_dir.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def bundle_of(task_file: Path) -> dict:
    bundles = load(task_file)["bundle"]
    assert len(bundles) == 1
    return next(iter(bundles.values()))


def by_type(scope: dict, type_name: str) -> dict[str, dict]:
    """Records of a PROV-JSON scope whose prov:type is ywf:<type_name>."""
    out = {}
    for kind in ("entity", "activity"):
        for ident, attrs in scope.get(kind, {}).items():
            for a in attrs if isinstance(attrs, list) else [attrs]:
                if f"ywf:{type_name}" in types(a):
                    out[ident] = a
    return out


def types(attrs: dict) -> set[str]:
    t = attrs.get("prov:type", [])
    return {value(x) for x in (t if isinstance(t, list) else [t])}


def relations(scope: dict, kind: str) -> list[dict]:
    out = []
    for rel in scope.get(kind, {}).values():
        out.extend(rel if isinstance(rel, list) else [rel])
    return out


def value(attr):
    return attr["$"] if isinstance(attr, dict) else attr


def run_python(code: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this venv) with the repo importable."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
