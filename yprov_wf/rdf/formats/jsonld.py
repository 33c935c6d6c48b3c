"""JSON-LD (expanded, RDF dataset form): named graphs become ``@graph`` objects with their ``@id``."""

from __future__ import annotations

import pyoxigraph

from yprov_wf.rdf.formats import RdfFormat


def _write(quads, stream, prefixes) -> None:
    pyoxigraph.serialize(quads, stream, pyoxigraph.RdfFormat.JSON_LD, prefixes=prefixes)


FORMAT = RdfFormat("jsonld", ".jsonld", "application/ld+json", True, _write)
