"""TriG: one named graph per task bundle and one for the workflow run's own records, with prefixes."""

from __future__ import annotations

from yprov_wf.rdf.formats import RdfFormat
from yprov_wf.rdf.formats._turtle_syntax import render


def _write(dataset, stream) -> None:
    stream.write("".join(render(dataset.quads, dataset.prefixes, named_graphs=True)).encode("utf-8"))


FORMAT = RdfFormat("trig", ".trig", "application/trig", True, _write)
