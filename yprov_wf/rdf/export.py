"""``export``: PROV-JSON files → one RDF dataset (deduplicated quads) → a file in a chosen format."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import DefaultGraph, Quad

from yprov_wf.layout import atomic_write
from yprov_wf.rdf import formats
from yprov_wf.rdf.mapping import document_quads, user_namespaces
from yprov_wf.rdf.sources import read_sources
from yprov_wf.rdf.terms import OUTPUT_PREFIXES


@dataclass
class RdfDataset:
    """The quads of every PROV-JSON file read, each once, and the prefixes to print them with."""

    quads: list[Quad]
    prefixes: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def graphs(self) -> list[str]:
        """The IRIs of the named graphs (one per task bundle), in first-seen order."""
        return list(dict.fromkeys(q.graph_name.value for q in self.quads if not isinstance(q.graph_name, DefaultGraph)))


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: the file, its format, how many triples (quads) and named graphs."""

    output: Path | None
    format: str
    quads: int
    graphs: int
    data: bytes | None = None  # the serialization, when no output file was given


def to_dataset(path: Path) -> RdfDataset:
    """PROV-O quads of a provenance folder, a workflow run, or one PROV-JSON file (merged or not)."""
    quads: dict[Quad, None] = {}
    prefixes = dict(OUTPUT_PREFIXES)
    files = []
    for source in read_sources(Path(path)):
        files.append(source.path)
        for prefix, uri in user_namespaces(source.doc).items():
            prefixes.setdefault(prefix, uri)
        quads.update(dict.fromkeys(document_quads(source.doc, str(source.path))))
    return RdfDataset(list(quads), prefixes, files)


def serialize(dataset: RdfDataset, format: str = "trig") -> bytes:
    """The dataset in ``format`` (trig, nquads, jsonld, turtle) as bytes."""
    fmt = formats.get(format)
    buffer = io.BytesIO()
    fmt.write(dataset.quads, buffer, dataset.prefixes)
    return buffer.getvalue()


def export(path: Path | str, output: Path | str | None = None, format: str = "trig") -> ExportResult:
    """Export the PROV-JSON under ``path`` as PROV-O in ``format``; written atomically to ``output`` if given.

    Each task bundle is a named graph; the workflow and its collection are in the default graph. Turtle cannot
    hold named graphs: the export then merges them and warns (:class:`NamedGraphsFlattened`).
    """
    formats.get(format)  # an unknown format fails before any file is read
    dataset = to_dataset(Path(path))
    data = serialize(dataset, format)
    if output is not None:
        atomic_write(Path(output), data)
    return ExportResult(Path(output) if output is not None else None, format, len(dataset.quads),
                        len(dataset.graphs), None if output is not None else data)
