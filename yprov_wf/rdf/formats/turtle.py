"""Turtle: one graph only, so the task bundles' named graphs are merged into it, with a warning that says so."""

from __future__ import annotations

import warnings

import pyoxigraph

from yprov_wf.rdf.errors import NamedGraphsFlattened
from yprov_wf.rdf.formats import RdfFormat


def _write(quads, stream, prefixes) -> None:
    graphs = {q.graph_name for q in quads if not isinstance(q.graph_name, pyoxigraph.DefaultGraph)}
    if graphs:
        warnings.warn(NamedGraphsFlattened(
            f"turtle cannot hold named graphs: the {len(graphs)} task bundle graph(s) were merged into one graph "
            "(which bundle a statement came from is lost; use trig, nquads or jsonld to keep it)"), stacklevel=3)
    triples = dict.fromkeys(q.triple for q in quads)
    pyoxigraph.serialize(triples, stream, pyoxigraph.RdfFormat.TURTLE, prefixes=prefixes)


FORMAT = RdfFormat("turtle", ".ttl", "text/turtle", False, _write)
