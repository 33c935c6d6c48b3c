"""The PROV-JSON builder (yprov_wf/prov/provjson.py) against the `prov` package, the reference reader and
writer: every file a real run writes is read by `prov` and written back by `prov`'s own encoder as the
same JSON, record for record; and the builder's literal forms are `prov`'s."""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prov.model import ProvDocument
from prov.serializers.provjson import ProvJSONEncoder

import yprov_wf as yp
from tests.rdf_workflows import NS, make_pipeline
from yprov_wf.prov.provjson import IRI, PROV, PROV_TYPE, Document, Namespace


def _through_prov(text: str) -> dict:
    """What `prov` writes after reading ``text``, in :func:`_canonical` form."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # prov warns on PROV-JSON it will reject in later releases
        doc = ProvDocument.deserialize(content=text, format="json")
    return _canonical(json.loads(json.dumps(doc, cls=ProvJSONEncoder)))


def _canonical(doc: dict) -> dict:
    """``doc`` with each kind's anonymous relations (``_:idN``, numbered in record order, which `prov`'s
    reader does not keep) as a sorted list of their contents."""
    out = {}
    for kind, records in doc.items():
        if kind == "bundle":
            out[kind] = {ident: _canonical(b) for ident, b in records.items()}
        elif kind != "prefix" and all(ident.startswith("_:") for ident in records):
            out[kind] = sorted(json.dumps(r, sort_keys=True) for r in records.values())
        else:
            out[kind] = records
    return out


def _rich_run(root: Path) -> Path:
    """The RDF tests' pipeline, plus a failed task, an ORCID person, an artifact, source code and a
    model version chain: every kind of record the mapping writes."""
    save_dir = make_pipeline(root)
    (root / "script.py").write_text("print('hi')\n")
    (root / "notes.txt").write_text("notes")
    with pytest.raises(RuntimeError), yp.workflow("rich", namespace=NS, save_dir=save_dir,
                                                  user="https://orcid.org/0000-0002-1825-0097"):
        with yp.task("fit", params={"alpha": 0.5, "big": 2**40, "huge": 2**70, "flag": True}):
            with yp.start_run(NS, "exp"):
                yp.log_artifact(str(root / "notes.txt"))
                yp.log_source_code(str(root / "script.py"))
                yp.log_metric("loss", 0.25, yp.Context.TRAINING, step=0)
        with yp.task("broken"):
            raise RuntimeError("boom")
    return save_dir


def test_every_file_of_real_runs_reads_and_writes_back_the_same_through_prov(tmp_path: Path) -> None:
    save_dir = _rich_run(tmp_path)
    files = sorted(save_dir.glob("*/*/tasks/*.json")) + sorted(save_dir.glob("*/*/workflow.json"))
    assert len(files) >= 8
    kinds: set[str] = set()
    for path in files:
        ours = json.loads(path.read_text())
        assert _through_prov(path.read_text()) == _canonical(ours), path
        for scope in [ours, *ours.get("bundle", {}).values()]:
            kinds |= set(scope) - {"prefix"}
    # each record kind the mapping writes was compared at least once
    assert kinds >= {"entity", "activity", "agent", "used", "wasGeneratedBy", "wasStartedBy", "wasAssociatedWith",
                     "actedOnBehalfOf", "specializationOf", "wasDerivedFrom", "hadMember", "wasInformedBy"}


def test_workflow_json_from_the_records_in_memory_is_the_one_from_the_task_files(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    # the closing process builds workflow.json from the task records it wrote rather than reading them back;
    # `yprov-wf recover` and other processes read the files: both must give the same document, byte for byte
    from yprov_wf.recording import scopes

    closed = []
    write = scopes.write_workflow_file
    monkeypatch.setattr(scopes, "write_workflow_file",
                        lambda wdir, wf, known=None: (closed.append((wdir, wf, dict(known or {}))), write(wdir, wf, known)))
    save_dir = _rich_run(tmp_path / "rich")
    (tmp_path / "in.txt").write_text("in")
    (tmp_path / "out.txt").write_text("out")
    engine = yp.WorkflowScope("engine", namespace=NS, save_dir=save_dir, engine="snakemake").open()
    engine.write_finished_task("a", started=1e9, ended=1e9 + 1.5, inputs=[tmp_path / "in.txt"],
                               outputs=[tmp_path / "out.txt"], params={"n": 3}, attributes={"rule": "a"})
    engine.write_finished_task("b", started=1e9 + 2, ended=1e9 + 3.25, status="failed", error="exit 1",
                               inputs=[tmp_path / "out.txt"], attempt=2)
    engine.close()
    assert len(closed) >= 3 and all(known for _, _, known in closed)
    for wdir, wf, known in closed:
        from_memory = wdir.workflow_file.read_bytes()
        write(wdir, wf)  # every task file read back, as recover does
        assert wdir.workflow_file.read_bytes() == from_memory, wdir.root
        assert set(known) == {p.stem for p in (wdir.root / "tasks").glob("*.json")}


def test_recording_does_not_import_prov(tmp_path: Path) -> None:
    # prov is the reader and validator; writing bundles must not pay for its import (~40 ms per process)
    code = ("import sys, yprov_wf as yp\n"
            f"with yp.workflow('w', namespace={NS!r}, save_dir={str(tmp_path)!r}):\n"
            "    with yp.task('t') as t:\n"
            "        t.log_output(3, name='three', value=True)\n"
            "print(sorted(m for m in sys.modules if m == 'prov' or m.startswith('prov.')))\n")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.glob("w/*/workflow.json"))


@pytest.mark.parametrize("value, expected", [
    (7, {"$": "7", "type": "xsd:int"}),
    (-(2**31), {"$": str(-(2**31)), "type": "xsd:int"}),
    (2**31, {"$": str(2**31), "type": "xsd:long"}),
    (2**63, {"$": str(2**63), "type": "xsd:integer"}),
    (0.1, {"$": "0.1", "type": "xsd:double"}),
    (1e300, {"$": "1e+300", "type": "xsd:double"}),
    (True, True),
    ("text", "text"),
    (datetime(2026, 1, 2, 3, 4, 5, 6, timezone(timedelta(hours=2))),
     {"$": "2026-01-02T03:04:05.000006+02:00", "type": "xsd:dateTime"}),
])
def test_literals_are_written_as_prov_writes_them(value, expected) -> None:
    doc = Document()
    ex = doc.add_namespace("ex", "https://example.org/")
    doc.entity(ex["e"], {ex["v"]: value})
    ours = doc.to_dict()
    assert ours["entity"]["ex:e"]["ex:v"] == expected
    assert _through_prov(doc.to_json()) == _canonical(ours)


def test_qualified_names_iris_and_collections() -> None:
    doc = Document()
    ex = doc.add_namespace("ex", "https://example.org/")
    c = doc.collection(ex["c"], {PROV_TYPE: ex["Kind"]})
    e = doc.entity(ex["e"], {PROV["location"]: IRI("file:///tmp/x")})
    doc.hadMember(c, e)
    doc.wasRevisionOf(e, c)
    ours = doc.to_dict()
    assert ours["entity"]["ex:c"][PROV_TYPE] == [{"$": "ex:Kind", "type": "xsd:QName"},
                                                 {"$": "prov:Collection", "type": "xsd:QName"}]
    assert ours["entity"]["ex:e"]["prov:location"] == {"$": "file:///tmp/x", "type": "xsd:anyURI"}
    assert ours["wasDerivedFrom"]["_:id2"]["prov:type"] == {"$": "prov:Revision", "type": "xsd:QName"}
    assert _through_prov(doc.to_json()) == _canonical(ours)


def test_a_bundle_declares_the_prefixes_it_uses_and_a_taken_prefix_is_renamed() -> None:
    doc = Document()
    ex = doc.add_namespace("ex", "https://example.org/")
    doc.add_namespace("unused", "https://unused.example/")
    b = doc.bundle(ex["b"])
    first = b.add_namespace("person", "https://orcid.org/")
    second = b.add_namespace("person", "https://other.example/people/")
    assert (first.prefix, second.prefix) == ("person", "person_1")
    assert b.add_namespace("again", "https://orcid.org/") is first  # one IRI, one prefix
    b.agent(second["p"])
    b.entity(ex["e"])
    ours = doc.to_dict()
    assert ours["prefix"] == {"ex": "https://example.org/", "unused": "https://unused.example/"}
    assert ours["bundle"]["ex:b"]["prefix"] == {"ex": "https://example.org/", "person": "https://orcid.org/",
                                               "person_1": "https://other.example/people/"}
    assert _through_prov(doc.to_json()) == _canonical(ours)


def test_an_id_described_twice_becomes_a_list_as_in_prov() -> None:
    doc = Document()
    ex = Namespace("ex", "https://example.org/")
    doc.add_namespace(ex.prefix, ex.uri)
    doc.entity(ex["e"], {ex["a"]: "1"})
    doc.entity(ex["e"], {ex["b"]: "2"})
    assert doc.to_dict()["entity"]["ex:e"] == [{"ex:a": "1"}, {"ex:b": "2"}]
    assert _through_prov(doc.to_json()) == _canonical(doc.to_dict())


def test_a_value_of_another_type_is_refused_by_name() -> None:
    doc = Document()
    ex = doc.add_namespace("ex", "https://example.org/")
    with pytest.raises(TypeError, match="got PosixPath"):
        doc.entity(ex["e"], {ex["v"]: Path("x")})


@pytest.mark.parametrize("path", ["/tmp/a b/ü.txt", "/x/./y", "/x/../y", "//net/x", "/a//b", "/tmp/%41",
                                  "/tmp/\udcff.bin", "rel/x.txt", "/", "/a/b/"])
def test_a_paths_file_iri_is_what_pathlib_gives(path: str) -> None:
    from yprov_wf.prov.mapping import location_iri

    root = Path("/root/run")
    assert location_iri(path, root) == (Path(path) if path.startswith("/") else root / path).as_uri()
    assert location_iri("rel/x.txt", None) is None
