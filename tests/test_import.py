"""`import yprov_wf` stays light: no torch, numpy, pyarrow, prov or rdflib until they are needed."""

from __future__ import annotations

from tests.conftest import run_python


def test_import_loads_no_heavy_library(tmp_path):
    code = ("import sys, yprov_wf; heavy = ['torch', 'numpy', 'pyarrow', 'prov', 'rdflib', 'pandas', 'prefect',"
            " 'snakemake']; print([m for m in heavy if m in sys.modules])")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
