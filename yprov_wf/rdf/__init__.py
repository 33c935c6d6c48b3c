"""PROV-O export of yprov-wf provenance, an embedded Oxigraph store, SPARQL servers and ready queries.

    from yprov_wf import rdf
    rdf.export("prov", "prov.trig")                  # trig | nquads | jsonld | turtle (flattened, with a warning)
    rdf.load("prov", "store")                        # an on-disk Oxigraph store accumulating runs
    rdf.upload("prov", "http://127.0.0.1:7878/store")  # SPARQL 1.1 Graph Store Protocol, named graphs kept
    with rdf.open_target("store") as t:                # or a SPARQL endpoint URL, a Jena TDB2 folder, files
        print(rdf.runs(t, best="accuracy").text())

Nothing goes to the default graph: each task bundle is a named graph, the workflow run's own records are in
``<workflow run IRI>/bundle``; so every store (Oxigraph, Virtuoso, Jena) gives the same answers.

Needs the ``rdf`` extra (pyoxigraph; rdflib and the oxigraph server for tests). Importing ``yprov_wf`` does not
import this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yprov_wf.rdf.endpoint import UploadReport
from yprov_wf.rdf.errors import EndpointError, NamedGraphsFlattened, SparqlError
from yprov_wf.rdf.export import ExportResult, RdfDataset, export, serialize, to_dataset
from yprov_wf.rdf.formats import names as format_names
from yprov_wf.rdf.queries import lineage, runs, uses
from yprov_wf.rdf.query import Table, Target
from yprov_wf.rdf.store import LoadResult, load

VOCABULARY = Path(__file__).with_name("vocabulary.ttl")


def open_target(where: str | Path, timeout: float | None = None) -> Target:
    """What to query: an Oxigraph store folder, an http(s) SPARQL endpoint (``timeout``: seconds per answer),
    an RDF file or PROV-JSON files."""
    return Target.open(where, timeout=timeout)


def query(where: str | Path, sparql: str, timeout: float | None = None) -> Table | bool | list[str]:
    """Run one SPARQL query on ``where`` (see ``open_target``)."""
    with Target.open(where, timeout=timeout) as target:
        return target.run(sparql)


def upload(path: str | Path, endpoint: str, **options: Any) -> UploadReport:
    """Export the PROV-JSON under ``path`` and upload it to a SPARQL 1.1 Graph Store endpoint (see endpoint.upload)."""
    from yprov_wf.rdf import endpoint as _endpoint

    _endpoint.check_url(endpoint)
    return _endpoint.upload(to_dataset(Path(path)), endpoint, **options)


__all__ = [
    "VOCABULARY", "EndpointError", "ExportResult", "LoadResult", "NamedGraphsFlattened", "RdfDataset", "SparqlError",
    "Table", "Target", "UploadReport", "export", "format_names", "lineage", "load", "open_target", "query", "runs",
    "serialize", "to_dataset", "upload", "uses",
]
