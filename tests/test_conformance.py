"""PROV-O conformance and the ywf: vocabulary, judged by others' artefacts on real runs (plain Python, Prefect,
Snakemake, a distributed step): every triple's predicate against the W3C PROV-O ontology's domains and ranges
(tests/data/prov-o.ttl, from https://github.com/w3c/ns, file prov-o.ttl, = https://www.w3.org/ns/prov-o),
every ywf: term declared with the kind and range it is written with, and an OWL 2 RL closure (owlrl) with no
inconsistency. Also: the agents (person, yprov-wf, the engine) on every workflow, task and ML-run activity."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

for _name, _value in {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                      "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}.items():
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402
import rdflib  # noqa: E402
from rdf_workflows import NS, make_pipeline  # noqa: E402
from rdflib import OWL, RDF, RDFS, XSD, BNode, Literal, URIRef  # noqa: E402
from rdflib.collection import Collection  # noqa: E402

import yprov_wf as yp  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from yprov_wf import rdf  # noqa: E402

PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
YWF = rdflib.Namespace("https://w3id.org/yprov-wf/ns#")
PROV_O = Path(__file__).parent / "data" / "prov-o.ttl"
#: xsd datatypes a literal may carry for a declared range (xsd:int and xsd:long are xsd:integers)
_COMPATIBLE = {XSD.integer: {XSD.integer, XSD.int, XSD.long, XSD.short, XSD.byte, XSD.nonNegativeInteger},
               XSD.string: {XSD.string, None}, RDFS.Literal: None}

PREFECT_FLOW = '''
import prefect_yprov as pyp
import yprov_wf as yp

NS = "{ns}"
calls = []

@pyp.task(retries=1)
def flaky(x: int) -> int:
    calls.append(x)
    if len(calls) == 1:
        raise RuntimeError("first attempt fails")
    return x + 1

@pyp.task
def train(x: int) -> float:
    with yp.start_run(NS, "mlp"):
        yp.log_param("lr", 0.1)
        yp.log_metric("loss", 0.5 / x, yp.Context.TRAINING, step=0)
    return 0.5 / x

@pyp.task
def batches(n: int):
    yield from range(n)

@pyp.task
def stage() -> int:
    return 1

@stage.on_rollback
def unstage(txn):
    pass

@pyp.task
def check() -> None:
    raise ValueError("the check fails, the transaction rolls back")

@pyp.flow(save_dir="{save_dir}", namespace=NS)
def pipeline(n: int = 2) -> float:
    from prefect.transactions import transaction

    list(batches(n))
    try:  # Prefect's transactions doc example: a failing task rolls the staged one back
        with transaction():
            stage()
            check()
    except ValueError:
        pass
    return train(flaky(n))
'''

SNAKEFILE = """
from snakemake_yprov import job
import yprov_wf as yp

rule all:
    input: "model.txt"

rule prepare:
    output: "data.txt"
    log: "logs/prepare.log"
    shell: "seq 1 5 > {{output}} 2> {{log}}"

rule train:
    input: "data.txt"
    output: "model.txt"
    run:
        with job(snakemake):
            with yp.start_run("{ns}", "train"):
                yp.log_metric("loss", 0.25, context=yp.Context.TRAINING, step=0)
            with open(output[0], "w") as f:
                f.write("model\\n")
"""


def _plain(root: Path) -> list[Path]:
    return [make_pipeline(root)]


def _distributed(root: Path) -> list[Path]:
    """A ranked run with source code and its command line, then a two-rank step (rank 0 of 2 here)."""
    from pytest import MonkeyPatch

    with MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("YPROV_WF_GROUP_ID", "conformance")
        mp.setenv("YPROV_WF_RANK_WAIT", "0")
        mp.setenv("TORCHELASTIC_RUN_ID", "conformance-run")  # what torchrun sets: a launcher agent
        (root / "train.py").write_text("print('hi')\n")
        run = yp.start_run(NS, "ranked", provenance_save_dir="prov", rank=0, world_size=1)
        yp.log_source_code("train.py")
        yp.log_execution_command()
        run.end()
        mp.setenv("RANK", "0")
        with yp.start_run(NS, "ddp", provenance_save_dir="prov", rank=0, world_size=2):
            yp.log_metric("loss", 1.0)
    return [root / "prov"]


def _prefect(root: Path) -> list[Path]:
    """A flow run with a retried task and an ML run, in a fresh interpreter with a test Prefect server."""
    (root / "flow_def.py").write_text(PREFECT_FLOW.format(ns=NS, save_dir=root / "prov"))
    code = textwrap.dedent("""
        from prefect.testing.utilities import prefect_test_harness
        import flow_def
        with prefect_test_harness(server_startup_timeout=120):
            flow_def.pipeline()
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO), str(REPO / "integrations")])}
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                            timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    return [root / "prov"]


def _snakemake(root: Path) -> list[Path]:
    """A shell job with a log file and a run: job with an ML run, under the logger plugin (CLI)."""
    (root / "Snakefile").write_text(SNAKEFILE.format(ns=NS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("YPROV_WF_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "integrations")])
    result = subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(root), "-c", "1", "--logger",
                             "yprov", "--logger-yprov-save-dir", "prov", "--logger-yprov-namespace", NS,
                             "--config", "samples=5"],  # last: --config takes every argument after it
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [root / "prov"]


SOURCES = {"plain": _plain, "distributed": _distributed, "prefect": _prefect, "snakemake": _snakemake}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, rdflib.Dataset]:
    """{source: its PROV-O export read by rdflib}, one per kind of real run."""
    out = {}
    for name, make in SOURCES.items():
        root = tmp_path_factory.mktemp(name)
        ds = rdflib.Dataset()
        for save_dir in make(root):
            assert list(save_dir.glob("*/*/workflow.json")), f"{name}: no workflow run written"
            ds.parse(data=rdf.export(save_dir, format="nquads").data, format="nquads")
        out[name] = ds
    return out


@pytest.fixture(scope="module")
def ontology() -> rdflib.Graph:
    g = rdflib.Graph()
    g.parse(PROV_O, format="turtle")
    g.parse(rdf.VOCABULARY, format="turtle")
    return g


def _triples(ds: rdflib.Dataset) -> set[tuple]:
    return {(s, p, o) for s, p, o, _ in ds.quads((None, None, None, None))}


def _classes(onto: rdflib.Graph, node) -> set:
    """A class, or the members of an owl:unionOf."""
    union = onto.value(node, OWL.unionOf)
    return set(Collection(onto, union)) if union is not None else {node}


def _supers(onto: rdflib.Graph, cls) -> set:
    return set(onto.transitive_objects(cls, RDFS.subClassOf))


def test_prov_o_and_the_vocabulary_know_every_kind_of_run(exports):
    assert set(exports) == set(SOURCES) and all(len(_triples(ds)) > 50 for ds in exports.values())


def test_every_declared_term_is_documented_and_the_core_classes_are_there():
    vocab = rdflib.Graph()
    vocab.parse(rdf.VOCABULARY, format="turtle")
    defined = {s for s in vocab.subjects(RDF.type, None)} - {URIRef(str(YWF))}
    assert not [t for t in defined if (t, RDFS.comment, None) not in vocab]
    classes = set(vocab.subjects(RDF.type, OWL.Class))
    assert {YWF[c] for c in ("WorkflowRun", "TaskRun", "MLRun", "TaskCollection", "Parameter", "SourceCode")} <= classes


def _violations(triples: set[tuple], ontology: rdflib.Graph) -> list[str]:
    """Triples whose subject is not of its predicate's rdfs:domain, or whose object is not of its rdfs:range
    (classes by asserted rdf:type and rdfs:subClassOf; datatypes by the literal's xsd type)."""
    asserted: dict = {}
    for s, p, o in triples:
        if p == RDF.type:
            asserted.setdefault(s, set()).update(_supers(ontology, o))
    violations = []
    for s, p, o in triples:
        for domain in ontology.objects(p, RDFS.domain):
            allowed = _classes(ontology, domain)
            if not asserted.get(s, set()) & allowed:
                violations.append(f"domain of {p.n3()}: {s.n3()} is not a {sorted(str(c) for c in allowed)}")
        for rng in ontology.objects(p, RDFS.range):
            if (p, RDF.type, OWL.ObjectProperty) in ontology:
                allowed = _classes(ontology, rng)
                if isinstance(o, Literal) or not asserted.get(o, set()) & allowed:
                    violations.append(f"range of {p.n3()}: {o.n3()} is not a {sorted(str(c) for c in allowed)}")
            elif (p, RDF.type, OWL.DatatypeProperty) in ontology:
                ok = _COMPATIBLE.get(rng, {rng})
                if not isinstance(o, Literal) or (ok is not None and o.datatype not in ok):
                    violations.append(f"range of {p.n3()} is {rng.n3()}: {s.n3()} has {o.n3()}")
    return violations


def test_the_domain_and_range_check_finds_what_it_must(ontology):
    """The checker itself: a literal location (what yprov-wf wrote before), an untyped subject, a wrong datatype."""
    e, a = URIRef(NS + "e"), URIRef(NS + "a")
    bad = {(e, RDF.type, PROV.Entity), (e, PROV.atLocation, Literal("tasks/x.json")),
           (a, PROV.startedAtTime, Literal("2026-01-01T00:00:00Z", datatype=XSD.dateTime)),
           (e, YWF.files, Literal("[\"a.py\"]"))}
    found = _violations(bad, ontology)
    assert len(found) == 3, found
    assert any("prov:atLocation" in f or "atLocation" in f for f in found)


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_triple_keeps_the_domains_and_ranges_of_prov_o_and_the_vocabulary(exports, ontology, source):
    violations = _violations(_triples(exports[source]), ontology)
    assert not violations, f"{len(violations)} violation(s):\n" + "\n".join(sorted(set(violations))[:40])


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_ywf_term_is_declared_with_the_kind_it_is_written_as(exports, ontology, source):
    vocab = rdflib.Graph()
    vocab.parse(rdf.VOCABULARY, format="turtle")
    problems, used = [], set()
    for _s, p, o in _triples(exports[source]):
        if str(p).startswith(str(YWF)) and not str(p).startswith(str(YWF) + "env_"):  # env_<NAME>: open by design
            used.add(p)
            if isinstance(o, Literal) and (p, RDF.type, OWL.DatatypeProperty) not in vocab:
                problems.append(f"{p.n3()} is written with literals but not declared an owl:DatatypeProperty")
            if not isinstance(o, Literal) and (p, RDF.type, OWL.ObjectProperty) not in vocab:
                problems.append(f"{p.n3()} is written with resources but not declared an owl:ObjectProperty")
        if p == RDF.type and str(o).startswith(str(YWF)):
            used.add(o)
            if (o, RDF.type, OWL.Class) not in vocab:
                problems.append(f"{o.n3()} is a prov:type but not declared an owl:Class")
    for term in used:
        if (term, RDFS.comment, None) not in vocab:
            problems.append(f"{term.n3()} has no rdfs:comment")
    assert used and not problems, "\n".join(sorted(set(problems)))


def test_the_engines_own_terms_are_checked(exports):
    """The integrations' attributes are among what the two tests above check."""
    used = {p for ds in exports.values() for _, p, _ in _triples(ds)}
    for term in ("runCount", "flowRunId", "flowFile", "taskRunId", "prefectState", "jobKey", "logFiles", "configMd5",
                 "rank", "sha256", "softwareVersion", "path", "yieldedCount", "rolledBack"):
        assert YWF[term] in used, term


def test_locations_are_resources_never_literals(exports):
    for ds in exports.values():
        triples = _triples(ds)
        locations = [o for _, p, o in triples if p == PROV.atLocation]
        assert locations and not [o for o in locations if isinstance(o, Literal)]
        assert all(str(o).startswith("file:///") and (o, RDF.type, PROV.Location) in triples for o in locations)
        assert not [t for t in triples if t[1] == YWF.locationLiteral]


@pytest.mark.parametrize("source", list(SOURCES))
def test_an_owl_rl_closure_finds_no_inconsistency(exports, ontology, source):
    import owlrl

    g = rdflib.Graph()
    for t in _triples(exports[source]) | set(ontology):
        g.add(t)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(g)
    errors = [str(m) for _, _, m in g.triples((None, URIRef("http://www.daml.org/2002/03/agents/agent-ont#error"),
                                                  None))]
    nothing = [str(s) for s in g.subjects(RDF.type, OWL.Nothing) if not isinstance(s, BNode)]
    assert not errors and not nothing, (errors[:10], nothing[:10])


def _union(ds: rdflib.Dataset) -> rdflib.Graph:
    """Every graph of an export in one (what a store's union default graph shows)."""
    g = rdflib.Graph()
    for t in _triples(ds):
        g.add(t)
    return g


def _associated(g: rdflib.Graph, activity_class) -> dict:
    """{activity: {agent role}} for the recorded activities of one class (a missing rank recorded nothing)."""
    out: dict = {}
    for act in set(g.subjects(RDF.type, activity_class)):
        if g.value(act, YWF.status) != Literal("missing"):
            out[act] = {g.value(a, YWF.agentRole).toPython() for a in g.objects(act, PROV.wasAssociatedWith)}
    return out


@pytest.mark.parametrize("source, engine", [("plain", "python"), ("prefect", "prefect"),
                                            ("snakemake", "snakemake")])
def test_every_activity_is_associated_with_the_person_and_the_software(exports, source, engine):
    ds = _union(exports[source])
    for cls, roles in ((YWF.WorkflowRun, {"person", "recorder", "engine"}),
                       (YWF.TaskRun, {"person", "recorder", "engine"}), (YWF.MLRun, {"person", "recorder"})):
        found = _associated(ds, cls)
        assert found, cls
        for act, got in found.items():
            assert roles <= got, (act, got)
    engines = {ds.value(a, YWF.softwareName).toPython(): ds.value(a, YWF.softwareVersion)
               for a in ds.subjects(RDF.type, PROV.SoftwareAgent) if ds.value(a, YWF.agentRole).toPython() == "engine"}
    assert set(engines) == {engine} and engines[engine] is not None
    people = set(ds.subjects(RDF.type, PROV.Person))
    assert len(people) == 1
    for agent in ds.subjects(RDF.type, PROV.SoftwareAgent):
        assert set(ds.objects(agent, PROV.actedOnBehalfOf)) == people


def test_the_launcher_is_an_agent_of_the_ranked_tasks(exports):
    ds = _union(exports["distributed"])
    launchers = {a for a in ds.subjects(YWF.agentRole, Literal("launcher"))}
    assert {ds.value(a, YWF.softwareName).toPython() for a in launchers} == {"torchrun"}
    assert {ds.value(a, YWF.launcherId).toPython() for a in launchers} == {"conformance-run"}
    tasks = _associated(ds, YWF.TaskRun)
    assert len(tasks) == 2 and all("launcher" in roles for roles in tasks.values()), tasks


def test_a_literal_location_of_an_older_file_is_kept_without_breaking_the_range():
    from yprov_wf.rdf.mapping import document_quads

    doc = {"prefix": {"ex": NS}, "entity": {
        "ex:old": {"prov:location": "tasks/x.json"},
        "ex:new": {"prov:location": {"$": "file:///data/x.csv", "type": "xsd:anyURI"}},
        "ex:qn": {"prov:location": {"$": "ex:place", "type": "prov:QUALIFIED_NAME"}}}}
    quads = {(s, p, o) for s, p, o, _ in document_quads(doc)}
    assert (f"<{NS}old>", f"<{YWF}locationLiteral>", '"tasks/x.json"') in quads
    assert (f"<{NS}new>", f"<{PROV}atLocation>", "<file:///data/x.csv>") in quads
    assert (f"<{NS}qn>", f"<{PROV}atLocation>", f"<{NS}place>") in quads
    assert ("<file:///data/x.csv>", f"<{RDF}type>", f"<{PROV}Location>") in quads
    assert not [q for q in quads if q[1] == f"<{PROV}atLocation>" and q[2].startswith('"')]
