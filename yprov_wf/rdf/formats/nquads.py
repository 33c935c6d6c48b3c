"""N-Quads: one quad a line, full IRIs; the format to stream into any store."""

from __future__ import annotations

import pyoxigraph

from yprov_wf.rdf.formats import RdfFormat


def _write(quads, stream, prefixes) -> None:
    pyoxigraph.serialize(quads, stream, pyoxigraph.RdfFormat.N_QUADS)


FORMAT = RdfFormat("nquads", ".nq", "application/n-quads", True, _write)
