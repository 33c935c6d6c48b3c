"""N-Quads: one quad a line, full IRIs; the format to stream into any store."""

from __future__ import annotations

from yprov_wf.rdf.formats import RdfFormat


def _write(dataset, stream) -> None:
    stream.write(dataset.nquads())


FORMAT = RdfFormat("nquads", ".nq", "application/n-quads", True, _write)
