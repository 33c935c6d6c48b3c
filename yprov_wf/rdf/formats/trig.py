"""TriG: the default graph plus one named graph per task bundle, with prefixes."""

from __future__ import annotations

import pyoxigraph

from yprov_wf.rdf.formats import RdfFormat


def _write(quads, stream, prefixes) -> None:
    pyoxigraph.serialize(quads, stream, pyoxigraph.RdfFormat.TRIG, prefixes=prefixes)


FORMAT = RdfFormat("trig", ".trig", "application/trig", True, _write)
