"""Every documented install mode gives a Snakemake that accepts ``--logger yprov``: pip and uv, editable
and not, each into a throwaway virtualenv, then a real ``snakemake --logger yprov`` run with no
PYTHONPATH. Snakemake finds logger plugins with ``pkgutil.iter_modules()`` (sys.path folders only), which
setuptools' editable import hook alone does not satisfy (see scripts/editable_backend.py).

The throwaway venv installs yprov-wf itself with ``--no-deps``; its dependencies (Snakemake…) come from
this test environment's site-packages through a path entry placed after the venv's own site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO

SNAKEFILE = 'rule a:\n    output: "a.txt"\n    shell: "echo hi > {output}"\n'

MODES = {
    "pip-editable": ["pip", "-e"],
    "pip": ["pip"],
    "uv-editable": ["uv", "-e"],
    "uv": ["uv"],
}


def make_venv(path: Path) -> Path:
    """A venv on this interpreter, that also sees this environment's packages (after its own)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    py = path / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # "zz" sorts last: the venv's own .pth files (the install under test) are processed first
    Path(site, "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def install(py: Path, tool: str, editable: bool) -> None:
    target = ["-e", str(REPO)] if editable else [str(REPO)]
    if tool == "pip":
        # the base interpreter's pip acting on the venv (a venv's own ensurepip brings an old setuptools);
        # no build isolation: setuptools comes from this environment (no index needed)
        base = getattr(sys, "_base_executable", sys.executable)
        if subprocess.run([base, "-m", "pip", "--version"], capture_output=True).returncode != 0:
            pytest.fail(f"no pip for {base}: this install mode cannot be checked")
        cmd = [base, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-build-isolation", *target]
    else:
        uv = shutil.which("uv")
        if uv is None:  # scripts/setup.sh installs uv with the base interpreter's pip when it is missing
            pytest.fail("uv is not installed (scripts/setup.sh installs it): this install mode cannot be checked")
        cmd = [uv, "pip", "install", "-q", "--python", str(py), "--no-deps", *target]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("mode", MODES)
def test_each_install_mode_gives_a_working_logger_plugin(tmp_path, mode):
    tool, *flags = MODES[mode]
    py = make_venv(tmp_path / "venv")
    install(py, tool, editable=bool(flags))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("YPROV_WF_")}
    where = subprocess.run([str(py), "-c", "import snakemake_logger_plugin_yprov as m; print(m.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    # the plugin imported is the one this install provides: the checkout (editable) or the venv's copy
    expected = REPO / "integrations" if flags else tmp_path / "venv"
    assert Path(where).is_relative_to(expected), where
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    proc = subprocess.run([str(py), "-m", "snakemake", "-c1", "--logger", "yprov", "--logger-yprov-namespace",
                           "https://example.org/install/"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "invalid choice" not in proc.stderr
    (run,) = (work / "prov").glob("*/*/workflow.json")
    assert len(list((run.parent / "tasks").glob("*.json"))) == 1
