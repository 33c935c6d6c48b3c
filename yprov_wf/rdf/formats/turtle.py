"""Turtle: one graph only, so the task bundles' named graphs are merged into it, with a warning that says so."""

from __future__ import annotations

import warnings

from yprov_wf.rdf.errors import NamedGraphsFlattened
from yprov_wf.rdf.formats import RdfFormat
from yprov_wf.rdf.formats._turtle_syntax import render


def _write(dataset, stream) -> None:
    graphs = dataset.graphs
    if graphs:
        warnings.warn(NamedGraphsFlattened(
            f"turtle cannot hold named graphs: the {len(graphs)} named graph(s) (task bundles, workflow) were merged into one graph "
            "(which bundle a statement came from is lost; use trig, nquads or jsonld to keep it)"), stacklevel=3)
    stream.write("".join(render(dataset.quads, dataset.prefixes, named_graphs=False)).encode("utf-8"))


FORMAT = RdfFormat("turtle", ".ttl", "text/turtle", False, _write)
