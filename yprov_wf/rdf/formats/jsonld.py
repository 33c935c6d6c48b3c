"""JSON-LD (RDF dataset form): named graphs become ``@graph`` objects with their ``@id``."""

from __future__ import annotations

import pyoxigraph

from yprov_wf.rdf.formats import RdfFormat


def _write(dataset, stream) -> None:
    pyoxigraph.serialize(dataset.oxigraph_quads(), stream, pyoxigraph.RdfFormat.JSON_LD, prefixes=dataset.prefixes)


FORMAT = RdfFormat("jsonld", ".jsonld", "application/ld+json", True, _write)
