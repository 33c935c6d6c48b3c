"""PROV-O export: every format read back by rdflib, named graphs, both relation forms, typed literals, absolute
IRIs, the shipped vocabulary, the round trip through prov, the CLI and its bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import rdflib
from rdf_workflows import NS, make_pipeline
from rdflib import RDF, XSD, Literal, URIRef

from yprov_wf import rdf
from yprov_wf.prov.merge import merge
from yprov_wf.rdf.mapping import MappingError, document_quads

PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
YWF = rdflib.Namespace("https://w3id.org/yprov-wf/ns#")
RDFLIB_FORMATS = {"trig": "trig", "nquads": "nquads", "jsonld": "json-ld", "turtle": "turtle"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    return make_pipeline(tmp_path_factory.mktemp("rdf"))


@pytest.fixture(scope="module")
def run_dir(pipeline: Path) -> Path:
    (run,) = list(pipeline.glob("pipe/*"))
    return run


@pytest.fixture(scope="module")
def dataset(pipeline: Path) -> rdflib.Dataset:
    """The TriG export parsed by rdflib (the reference parser)."""
    data = rdf.export(pipeline, format="trig").data
    ds = rdflib.Dataset()
    ds.parse(data=data, format="trig")
    return ds


def named_graphs(ds: rdflib.Dataset) -> dict[str, rdflib.Graph]:
    return {str(g.identifier): g for g in ds.graphs() if len(g) and isinstance(g.identifier, URIRef)
            and g.identifier != rdflib.graph.DATASET_DEFAULT_GRAPH_ID}


def default_graph(ds: rdflib.Dataset) -> rdflib.Graph:
    return ds.graph(rdflib.graph.DATASET_DEFAULT_GRAPH_ID)


@pytest.mark.parametrize("fmt", ["trig", "nquads", "jsonld"])
def test_graph_formats_keep_one_named_graph_per_task_bundle(pipeline: Path, run_dir: Path, tmp_path: Path, fmt):
    out = tmp_path / f"prov.{fmt}"
    result = rdf.export(pipeline, out, fmt)
    ds = rdflib.Dataset()
    ds.parse(out, format=RDFLIB_FORMATS[fmt])
    task_files = sorted((run_dir / "tasks").glob("*.json"))
    assert len(task_files) == 4 and result.graphs == 4 + 1
    graphs = named_graphs(ds)
    bundles = {next(iter(json.loads(f.read_text())["bundle"])) for f in task_files}
    workflow_graph = {g for g in graphs if "/workflow/" in g}
    assert set(graphs) - workflow_graph == {NS + b.removeprefix("user:") for b in bundles}
    assert sum(len(g) for g in ds.graphs()) == result.quads
    assert not len(default_graph(ds))  # nothing depends on a store's default graph
    # the workflow and its collection are in the workflow run's own graph, each bundle is an entity member of it
    (name,) = workflow_graph
    top = graphs[name]
    (wf,) = top.subjects(RDF.type, YWF.WorkflowRun)
    assert name == f"{wf}/bundle"  # the documented, stable name
    (coll,) = top.subjects(RDF.type, YWF.TaskCollection)
    assert (coll, PROV.wasGeneratedBy, wf) in top
    for g in set(graphs) - workflow_graph:
        assert (URIRef(g), RDF.type, PROV.Bundle) in top and (URIRef(g), RDF.type, PROV.Bundle) in graphs[g]
        assert (coll, PROV.hadMember, URIRef(g)) in top
        assert (URIRef(g), PROV.wasGeneratedBy, None) in top
        assert not list(graphs[g].subjects(RDF.type, YWF.WorkflowRun))


def test_turtle_flattens_named_graphs_with_a_warning(pipeline: Path, tmp_path: Path):
    out = tmp_path / "prov.ttl"
    with pytest.warns(rdf.NamedGraphsFlattened, match=r"turtle cannot hold named graphs: the 5 named graph"):
        rdf.export(pipeline, out, "turtle")
    g = rdflib.Graph()
    g.parse(out, format="turtle")
    ds = rdflib.Dataset()
    ds.parse(data=rdf.export(pipeline, format="nquads").data, format="nquads")
    assert len(g) == len({t for ctx in ds.graphs() for t in ctx})  # every triple, once
    assert len(list(g.subjects(RDF.type, YWF.MLRun))) == 3


def test_relations_in_direct_and_qualified_form(dataset: rdflib.Dataset):
    runs = [(g, r) for g in named_graphs(dataset).values() for r in g.subjects(RDF.type, YWF.MLRun)]
    assert len(runs) == 3
    for g, run in runs:
        params = [p for p in g.objects(run, PROV.used) if (p, RDF.type, YWF.Parameter) in g]
        usages = list(g.objects(run, PROV.qualifiedUsage))
        if (run, YWF.experiment, Literal("mlp")) in g:
            assert len(params) == 3
        assert len(usages) == len(list(g.objects(run, PROV.used)))
        for u in usages:
            assert (u, RDF.type, PROV.Usage) in g
            entity = g.value(u, PROV.entity)
            assert (run, PROV.used, entity) in g
            assert g.value(u, PROV.atTime).datatype == XSD.dateTime
        generated = list(g.subjects(PROV.wasGeneratedBy, run))
        assert any((e, RDF.type, YWF.MetricSeries) in g for e in generated)
        for e in generated:
            q = g.value(e, PROV.qualifiedGeneration)
            assert (q, RDF.type, PROV.Generation) in g and (q, PROV.activity, run) in g
        # the run was started by its task: prov:wasInfluencedBy directly, prov:qualifiedStart with hadActivity
        (task,) = g.objects(run, PROV.wasInfluencedBy)
        assert (task, RDF.type, YWF.TaskRun) in g
        start = g.value(run, PROV.qualifiedStart)
        assert (start, PROV.hadActivity, task) in g and (start, RDF.type, PROV.Start) in g
        assert not list(g.objects(run, PROV.wasStartedBy))  # its range is prov:Entity: never an activity there


def test_model_versions_are_revisions_in_both_forms(dataset: rdflib.Dataset):
    g = next(g for g in named_graphs(dataset).values() if list(g.subjects(RDF.type, YWF.ModelVersion)))
    versions = {int(g.value(v, YWF.version)): v for v in g.subjects(RDF.type, YWF.ModelVersion)}
    assert sorted(versions) == [1, 2]
    assert (versions[2], PROV.wasRevisionOf, versions[1]) in g
    assert (versions[2], PROV.wasDerivedFrom, versions[1]) in g
    q = g.value(versions[2], PROV.qualifiedRevision)
    assert (q, RDF.type, PROV.Revision) in g and (q, PROV.entity, versions[1]) in g


def test_typed_literals_and_absolute_iris(dataset: rdflib.Dataset):
    all_triples = [t for g in dataset.graphs() for t in g]
    for s, p, o in all_triples:
        for term in (s, p, o):
            if isinstance(term, URIRef):
                assert "://" in term, term
    literals = {p: o for _, p, o in all_triples if isinstance(o, Literal)}
    assert literals[PROV.startedAtTime].datatype == XSD.dateTime
    assert literals[YWF["count"]].datatype == XSD.int
    assert literals[YWF.last].datatype == XSD.double
    assert literals[YWF.collectAllProcesses].datatype == XSD.boolean
    lr = next(o for s, p, o in all_triples if p == PROV.value and isinstance(o.toPython(), float))
    assert lr.datatype == XSD.double
    # prov:type values are classes (rdf:type), never literals
    assert not [o for _, p, o in all_triples if p == RDF.type and isinstance(o, Literal)]


def test_every_ywf_term_of_a_real_export_is_in_the_shipped_vocabulary(dataset: rdflib.Dataset):
    vocab = rdflib.Graph()
    vocab.parse(rdf.VOCABULARY, format="turtle")
    defined = {str(s) for s in vocab.subjects(RDF.type, None)}
    used = {str(t) for g in dataset.graphs() for triple in g for t in triple
            if isinstance(t, URIRef) and str(t).startswith(str(YWF))
            and not str(t).startswith(str(YWF) + "env_")}  # env_<NAME>: open by design (docs/rdf.md)
    assert used and used <= defined, sorted(used - defined)
    owl = rdflib.Namespace("http://www.w3.org/2002/07/owl#")
    for term in defined - {str(YWF)}:
        assert (URIRef(term), rdflib.RDFS.comment, None) in vocab, term
    classes = {str(s) for s in vocab.subjects(RDF.type, owl.Class)}
    assert {str(YWF[c]) for c in ("WorkflowRun", "TaskRun", "MLRun", "TaskCollection", "Parameter")} <= classes


def test_vocabulary_ships_as_package_data():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"yprov_wf.rdf" = ["*.ttl"]' in pyproject
    assert rdf.VOCABULARY.is_file() and rdf.VOCABULARY.parent.name == "rdf"


def _records(bundle) -> set:
    return set(bundle.get_records())


def _implied(record, originals: set) -> bool:
    """A read-back record that the export's direct form implies: an unqualified used/wasGeneratedBy/
    wasDerivedFrom duplicating a qualified one, or wasInfluencedBy for a wasStartedBy's starter."""
    from prov.model import ProvDerivation, ProvGeneration, ProvInfluence, ProvStart, ProvUsage

    if record.identifier is not None or record.extra_attributes:
        return False
    args = [v for _, v in record.formal_attributes]
    if isinstance(record, ProvInfluence):
        return any(isinstance(o, ProvStart) and [v for _, v in o.formal_attributes][0] == args[0]
                   and [v for _, v in o.formal_attributes][2] == args[1] for o in originals)
    if isinstance(record, (ProvUsage, ProvGeneration, ProvDerivation)):
        return any(type(o) is type(record) and [v for _, v in o.formal_attributes][:2] == args[:2]
                   for o in originals if o != record)
    return False


def test_trig_read_back_with_prov_equals_the_original_up_to_the_documented_differences(pipeline: Path):
    from prov.model import ProvDocument

    original = ProvDocument.deserialize(content=json.dumps(merge(pipeline)), format="json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # rdflib's, inside prov's reader
        back = ProvDocument.deserialize(content=rdf.export(pipeline, format="trig").data.decode(), format="rdf",
                                        rdf_format="trig")
    back_bundles = {b.identifier: b for b in back.bundles}
    # 4. the workflow's own records come back as a bundle too: the named graph <workflow run IRI>/bundle
    (workflow_graph,) = set(back_bundles) - {b.identifier for b in original.bundles}
    (wf,) = [r.identifier for r in original.get_records() if "WorkflowRun" in str(r.get_asserted_types())]
    assert str(workflow_graph.uri) == f"{wf.uri}/bundle"
    assert not _records(back)  # nothing is in the default graph
    pairs = [(original, back_bundles.pop(workflow_graph))]
    assert {b.identifier for b in original.bundles} == set(back_bundles)
    pairs += [(b, back_bundles[b.identifier]) for b in original.bundles]
    extra_kinds = set()
    for orig, got in pairs:
        o, g = _records(orig), _records(got)
        # 5. each task bundle's graph says that it is a bundle (so a task file exported alone is typed)
        g = {r for r in g if not (not r.is_relation() and r.identifier == getattr(orig, "identifier", None))}
        entities_differ = {r.identifier for r in o ^ g if not r.is_relation()}
        # 1. prov reads the direct prov:wasRevisionOf triple as an attribute of the newer model version
        for ident in entities_differ:
            (before,), (after,) = orig.get_record(ident), got.get_record(ident)
            extra = {(str(k), str(v)) for k, v in after.attributes} - {(str(k), str(v)) for k, v in before.attributes}
            assert extra == {("prov:wasRevisionOf", str(v)) for k, v in after.attributes
                             if str(k) == "prov:wasRevisionOf"} and extra, (ident, extra)
        relations_lost = {r for r in o - g if r.is_relation()}
        assert not relations_lost, relations_lost  # nothing is lost
        # 2. every other extra record is the direct form of a relation that the original holds qualified
        for r in {r for r in g - o if r.is_relation()}:
            assert _implied(r, o), r
            extra_kinds.add(type(r).__name__)
    assert extra_kinds == {"ProvUsage", "ProvGeneration", "ProvDerivation", "ProvInfluence"}


def test_exporting_twice_gives_the_same_bytes(pipeline: Path):
    assert rdf.export(pipeline, format="nquads").data == rdf.export(pipeline, format="nquads").data


def test_a_merged_file_exports_like_its_folder(pipeline: Path, tmp_path: Path):
    merged = tmp_path / "merged.json"
    merged.write_text(json.dumps(merge(pipeline)))
    a = set(rdf.export(merged, format="nquads").data.splitlines())
    b = set(rdf.export(pipeline, format="nquads").data.splitlines())
    # merge renames the workflow's blank relation ids apart: only blank node labels may differ
    assert {line for line in a if b"_:" not in line} == {line for line in b if b"_:" not in line}
    assert len(a) == len(b)


@pytest.mark.parametrize(("doc", "message"), [
    ([1, 2], "not a PROV-JSON document"),
    ({"prefix": {"ex": "not an iri"}}, "prefix 'ex' maps to 'not an iri'"),
    ({"entity": {"nope:x": {}}}, "'nope:x' uses an undeclared prefix 'nope'"),
    ({"prefix": {"ex": "https://e.org/"}, "entity": {"ex:a": {"ex:n": [1, {"x": 1}]}}}, "has no string '$'"),
    ({"prefix": {"ex": "https://e.org/"}, "frobnicate": {}}, "unknown PROV-JSON record kind 'frobnicate'"),
    ({"prefix": {"ex": "https://e.org/"}, "used": {"_:u": {"prov:entity": "ex:e"}}}, "used '_:u' has no prov:activity"),
    ({"prefix": {"ex": "https://e.org/"}, "entity": {"ex:a b": {}}}, "is not a valid absolute IRI"),
])
def test_malformed_prov_json_names_the_file_and_the_value(doc, message):
    with pytest.raises(MappingError, match=re.escape(message)) as info:
        list(document_quads(doc, "bad.json"))
    assert str(info.value).startswith("bad.json: ")


def test_literals_are_escaped(tmp_path: Path):
    doc = {"prefix": {"ex": "https://e.org/"},
           "entity": {"ex:a": {"ex:note": 'quote " backslash \\ newline \n end', "ex:n": {"$": "5", "type": "xsd:long"},
                               "ex:t": {"$": "hallo", "lang": "de"}}}}
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    g = rdflib.Dataset()
    g.parse(data=rdf.export(tmp_path / "doc.json", format="nquads").data, format="nquads")
    values = {str(p): o for _, p, o, _ in g.quads()}
    (graph,) = {str(c) for _, _, _, c in g.quads()}  # a document without a workflow run: a graph named by content
    assert re.fullmatch(r"urn:yprov-wf:document:[0-9a-f]{32}", graph)
    assert str(values["https://e.org/note"]) == 'quote " backslash \\ newline \n end'
    assert values["https://e.org/n"].datatype == XSD.long
    assert values["https://e.org/t"].language == "de"


# -- CLI ------------------------------------------------------------------------------------------------------

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yprov_wf.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_cli_export_formats(pipeline: Path, tmp_path: Path):
    ok = cli("export", str(pipeline), "-o", "out.trig", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("wrote out.trig (trig, ") and ok.stdout.rstrip().endswith("5 named graphs)")
    ttl = cli("export", str(pipeline), "-o", "out.ttl", cwd=tmp_path)
    assert ttl.returncode == 0 and "(turtle, " in ttl.stdout
    assert ttl.stderr.strip().startswith("yprov-wf: warning: turtle cannot hold named graphs")
    nq = cli("export", str(pipeline), "--format", "nquads", "-o", "out.txt", cwd=tmp_path)
    assert nq.returncode == 0 and (tmp_path / "out.txt").read_bytes() == rdf.export(pipeline, format="nquads").data
    skolem = cli("export", str(pipeline), "-o", "skolem.nq", "--skolemize", cwd=tmp_path)
    data = (tmp_path / "skolem.nq").read_bytes()
    assert skolem.returncode == 0 and b"_:" not in data and b"/.well-known/genid/yprov-wf-q" in data
    assert data == rdf.to_dataset(pipeline).skolemized().nquads()  # what --store and --endpoint send


@pytest.mark.parametrize(("args", "message"), [
    (("export", "PIPE", "--format", "xml", "-o", "x"), "argument --format: invalid choice: 'xml'"),
    (("export", "PIPE"), "export needs -o FILE, --store PATH or --endpoint URL"),
    (("export", "missing", "-o", "x.trig"), "missing does not exist"),
    (("export", "BAD", "-o", "x.trig"), "bad.json: not valid PROV-JSON"),
    (("export", "BADPREFIX", "-o", "x.trig"), "uses an undeclared prefix 'nope'"),
    (("export", "PIPE", "--endpoint", "ftp://example.org/store"), "is not an http:// or https:// URL"),
    (("export", "PIPE", "--endpoint", "http://u:secret@127.0.0.1:1/store"), "has credentials in it"),
])
def test_cli_export_bad_input_exits_2_with_one_line(pipeline: Path, tmp_path: Path, args, message):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "badprefix.json").write_text(json.dumps({"entity": {"nope:x": {}}}))
    subst = {"PIPE": str(pipeline), "BAD": "bad.json", "BADPREFIX": "badprefix.json"}
    result = cli(*[subst.get(a, a) for a in args], cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("yprov-wf: error: ") and message in lines[0], result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert not (tmp_path / "x.trig").exists()


def test_import_yprov_wf_does_not_import_rdf_libraries():
    code = "import sys, yprov_wf; print([m for m in ('pyoxigraph', 'rdflib', 'yprov_wf.rdf') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_partial_run_without_workflow_json_exports_its_task_bundles(run_dir: Path, tmp_path: Path):
    copy = tmp_path / "pipe" / run_dir.name
    shutil.copytree(run_dir, copy)
    (copy / "workflow.json").unlink()
    result = rdf.export(tmp_path, format="trig")
    ds = rdflib.Dataset()
    ds.parse(data=result.data, format="trig")
    assert result.graphs == 4
    assert not len(default_graph(ds))
    bundles = [g for g in named_graphs(ds).values() if (g.identifier, RDF.type, PROV.Bundle) in g]
    assert len(bundles) == 4  # the bundle-as-entity triples, each in its own graph


def test_distributed_source_and_command_terms_are_in_the_vocabulary(tmp_path, monkeypatch):
    import yprov_wf as yp

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YPROV_WF_GROUP_ID", "vocab")
    monkeypatch.setenv("YPROV_WF_RANK_WAIT", "0")
    (tmp_path / "train.py").write_text("print('hi')\n")
    run = yp.start_run(NS, "ranked", provenance_save_dir="prov", rank=0, world_size=1)
    yp.log_source_code("train.py")
    yp.log_execution_command()
    run.end()
    monkeypatch.setenv("RANK", "0")
    with yp.start_run(NS, "ddp", provenance_save_dir="prov", rank=0, world_size=2):
        yp.log_metric("loss", 1.0)
    ds = rdflib.Dataset()
    for root in sorted(Path("prov").glob("*/*")):
        ds.parse(data=rdf.serialize(rdf.to_dataset(root), "nquads"), format="nquads")
    vocab = rdflib.Graph()
    vocab.parse(rdf.VOCABULARY, format="turtle")
    defined = {str(s) for s in vocab.subjects(RDF.type, None)}
    used = {str(t) for g in ds.graphs() for triple in g for t in triple
            if isinstance(t, URIRef) and str(t).startswith("https://w3id.org/yprov-wf/ns#")
            and not str(t).startswith("https://w3id.org/yprov-wf/ns#env_")}
    assert {"https://w3id.org/yprov-wf/ns#SourceCode", "https://w3id.org/yprov-wf/ns#device",
            "https://w3id.org/yprov-wf/ns#distributedGroup"} <= used
    assert used <= defined, sorted(used - defined)
