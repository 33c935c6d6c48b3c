"""`import yprov_wf` stays light: no torch, numpy, pyarrow, prov or rdflib until they are needed."""

from __future__ import annotations

from tests.conftest import run_python


def test_import_loads_no_heavy_library(tmp_path):
    code = ("import sys, yprov_wf; heavy = ['torch', 'numpy', 'pyarrow', 'prov', 'rdflib', 'pandas', 'prefect',"
            " 'snakemake']; print([m for m in heavy if m in sys.modules])")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_names_are_imported_on_first_use(tmp_path):
    # an engine integration that needs only the recording core (the Snakemake logger plugin) does not pay for
    # the ML API, yProv4ML's names or the read-back model (~20 ms per Snakemake invocation)
    code = ("import sys, yprov_wf, yprov_wf.recording.scopes, snakemake_logger_plugin_yprov.recorder\n"
            "print(sorted(m for m in sys.modules if m in ('yprov_wf.api', 'yprov_wf.readback', 'yprov_wf.compat',"
            " 'yprov_wf.distributed', 'yprov_wf.recording.run')))\n"
            "import yprov_wf as yp\n"
            "print(yp.start_run.__module__, yp.WorkflowRun.__module__, 'yprov_wf.api' in sys.modules)\n")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "yprov_wf.api yprov_wf.readback True"]


def test_recording_a_finished_task_loads_neither_metrics_nor_the_reader(tmp_path):
    # what the Snakemake logger plugin does for each job and at the end: no metric store, no bundle reader,
    # no ML-run records, no distributed-training helpers, no energy meter (energy is off)
    code = ("import sys, time\n"
            "from yprov_wf.recording.scopes import WorkflowScope\n"
            "with WorkflowScope('w', namespace='https://example.org/w/', save_dir='prov') as wf:\n"
            "    now = time.time()\n"
            "    wf.write_finished_task('job', started=now, ended=now, params={'n': 1})\n"
            "print(sorted(m for m in sys.modules if m.startswith(('yprov_wf.metrics', 'yprov_wf.prov.reading',\n"
            "                                                    'yprov_wf.recording.run_records',\n"
            "                                                    'yprov_wf.distributed')) or m == 'yprov_wf.collectors.energy'))\n")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert len(list(tmp_path.glob("prov/w/*/tasks/*.json"))) == 1


def test_every_public_name_resolves_and_type_checkers_see_the_same_names():
    import ast
    import importlib
    from pathlib import Path

    import yprov_wf

    for module, names in yprov_wf._EXPORTS.items():
        if module == "yprov_wf.compat.lightning":
            continue  # needs lightning (tests/test_yprov4ml_compat.py)
        for name in names:
            assert getattr(yprov_wf, name) is getattr(importlib.import_module(module), name), name
    assert set(yprov_wf.__all__) == {"__version__", *(n for names in yprov_wf._EXPORTS.values() for n in names)}
    assert set(yprov_wf.__all__) <= set(dir(yprov_wf))
    # the `if TYPE_CHECKING:` imports name the same modules and names as _EXPORTS
    tree = ast.parse(Path(yprov_wf.__file__).read_text())
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"]
    seen = {(imp.module, alias.name) for imp in block.body for alias in imp.names}
    assert seen == {(m, n) for m, names in yprov_wf._EXPORTS.items() for n in names}
    try:
        yprov_wf.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
