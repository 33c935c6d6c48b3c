"""yProv4ML's own example scripts (tests/data/yprov4ml_examples/, each naming its source and what was
changed: the import, offline data, tiny sizes) run with ``import yprov_wf as prov4ml`` and leave valid
provenance that records what each call meant."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, bundle_of, by_type, value
from yprov_wf.cli import main as cli

EXAMPLES = REPO / "tests" / "data" / "yprov4ml_examples"


def _run_example(name: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[Path]]:
    shutil.copy(EXAMPLES / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("YPROV_WF_") and k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    env.update(PYTHONPATH=str(REPO), PYTHONWARNINGS="default", TQDM_DISABLE="1")
    result = subprocess.run([sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p for p in (tmp_path / "prov").glob("*/*") if p.is_dir())
    assert runs, "no provenance written"
    for root in runs:
        assert cli(["validate", str(root)]) == 0, root
    return result, runs


def _bundle(root: Path) -> dict:
    (task_file,) = (root / "tasks").glob("*.json")
    return bundle_of(task_file)


def _by_key(bundle: dict, type_name: str, key: str = "ywf:key") -> dict[str, dict]:
    return {value(a[key]): a for a in by_type(bundle, type_name).values()}


def _namespace(root: Path) -> str:
    return json.loads((root / "workflow.json").read_text())["prefix"]["user"]


def test_usage_pytorch_page_1x_model_first(tmp_path):
    """docs/src/usage_pytorch.md: 1.x model-first calls, carbon and system metrics."""
    result, (root,) = _run_example("usage_pytorch_1x.py", tmp_path)
    assert "'www.example.org' is not an absolute IRI" in result.stderr and _namespace(root) == "https://www.example.org/"
    b = _bundle(root)
    assert set(_by_key(b, "Dataset", "ywf:label")) == {"train_dataset", "val_dataset"}
    assert int(value(_by_key(b, "Dataset", "ywf:label")["train_dataset"]["ywf:samples"])) == 48
    versions = sorted(int(value(a["ywf:version"])) for a in by_type(b, "ModelVersion").values())
    assert versions == [1, 2], "one save_model_version(model, name, context) per epoch"
    assert set(_by_key(b, "Model", "ywf:label")) == {"mnist_model_final"}
    assert {"dataset transformation", "optimizer", "loss_fn"} <= set(_by_key(b, "Parameter"))
    series = _by_key(b, "MetricSeries")
    assert {"Loss", "cpu_usage", "energy_consumed"} <= set(series) or {"Loss", "cpu_usage"} <= set(series)
    assert (root / "graphs").is_dir()


def test_prov4ml_torch_3x_label_first(tmp_path):
    """examples/prov4ml_torch.py: label-first calls, metric-file keywords, custom contexts, an RO-Crate."""
    result, (root,) = _run_example("prov4ml_torch_3x.py", tmp_path)
    assert "metrics_file_type=" in result.stderr, "ZARR: accepted, named in a warning"
    assert "use_compressor" not in result.stderr, "use_compressor=False asks for nothing more: no warning"
    assert "is_input" not in result.stderr, "log_model(..., is_input=False) is what is recorded anyway"
    b = _bundle(root)
    params = _by_key(b, "Parameter")
    assert value(params["loss_fn"]["ywf:context"]) == "training_lod2"
    assert value(params["execution_command"]["prov:value"]).startswith("python /workspace/")
    (task,) = by_type(b, "TaskRun").values()
    assert json.loads(value(task["ywf:contextHierarchy"])) == {"training_lod2": "training",
                                                               "training_lod3": "training_lod2"}
    assert set(_by_key(b, "Dataset", "ywf:label")) == {"train_dataset", "val_dataset"}
    versions = by_type(b, "ModelVersion").values()
    assert sorted(int(value(a["ywf:step"])) for a in versions) == [0, 1]
    assert {value(a["ywf:context"]) for a in versions} == {"models"}
    final = _by_key(b, "Model", "ywf:label")["mnist_model_final"]
    assert json.loads(value(final["ywf:layerDetails"]))[0]["in_features"] == 64
    assert by_type(b, "SourceCode"), "log_source_code(path)"
    with zipfile.ZipFile(root.with_name(root.name + ".crate.zip")) as z:
        assert "ro-crate-metadata.json" in z.namelist()
    import rdflib

    from yprov_wf import rdf

    vocab = rdflib.Graph().parse(rdf.VOCABULARY, format="turtle")
    defined = {str(s) for s in vocab.subjects(rdflib.RDF.type, None)}
    ds = rdflib.Dataset()
    ds.parse(data=rdf.serialize(rdf.to_dataset(root), "nquads"), format="nquads")
    ywf = "https://w3id.org/yprov-wf/ns#"
    used = {str(t) for g in ds.graphs() for triple in g for t in triple
            if isinstance(t, rdflib.URIRef) and str(t).startswith(ywf) and not str(t).startswith(ywf + "env_")}
    assert {ywf + "layerDetails", ywf + "contextHierarchy"} <= used <= defined, sorted(used - defined)


def test_prov4ml_lightning_example(tmp_path):
    """examples/prov4ml_lightning.py: prov4ml.Contexts, tensors to log_metric, label-first versions."""
    _, (root,) = _run_example("prov4ml_lightning.py", tmp_path)
    b = _bundle(root)
    series = {(value(a["ywf:key"]), value(a.get("ywf:context", ""))): a for a in by_type(b, "MetricSeries").values()}
    assert {("MSE", "training"), ("MSE", "validation"), ("MSE", "testing"), ("train_epoch_time", "training")} \
        <= set(series)
    names = {value(a["ywf:modelName"]) for a in by_type(b, "ModelVersion").values()}
    assert names == {"model_version_0", "model_version_1"}
    assert set(_by_key(b, "Dataset", "ywf:label")) == {"train_dataset", "val_dataset", "test_dataset"}
    assert "optimizer" in _by_key(b, "Parameter")


def test_prov4ml_hpc_dask_ranks_without_world_size(tmp_path):
    """examples/prov4ml_hpc.py: Dask jobs that set SLURM_PROCID but no SLURM_NTASKS each record their rank."""
    _, runs = _run_example("prov4ml_hpc.py", tmp_path)
    ranks = []
    for root in runs:
        (run,) = by_type(_bundle(root), "MLRun").values()
        ranks.append(int(value(run["ywf:rank"])))
        assert root.with_name(root.name + ".crate.zip").is_file()
    assert sorted(ranks) == [0, 1]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_each_example_names_its_source(name):
    head = (EXAMPLES / name).read_text().splitlines()[:3]
    assert head[0].startswith("# Source: HPCI-Lab/yProvML,") and "commit" in " ".join(head)
