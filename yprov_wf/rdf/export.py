"""``export``: PROV-JSON files → one RDF dataset (deduplicated quads) → a file in a chosen format."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from yprov_wf.layout import atomic_write
from yprov_wf.rdf import formats
from yprov_wf.rdf.mapping import Quad, document_quads, top_level_graph, user_namespaces
from yprov_wf.rdf.sources import read_sources
from yprov_wf.rdf.terms import OUTPUT_PREFIXES


@dataclass
class RdfDataset:
    """The quads of every PROV-JSON file read, each once (as N-Quads terms), and the prefixes to print them with."""

    quads: list[Quad]
    prefixes: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    #: the graphs of the documents' top-level records (``<workflow run IRI>/bundle``), a subset of ``graphs``
    workflow_graphs: list[str] = field(default_factory=list)

    @property
    def graphs(self) -> list[str]:
        """The IRIs of the named graphs (one per task bundle, one for each workflow run's own records), in first-seen
        order. Nothing is in the default graph."""
        return [g[1:-1] for g in dict.fromkeys(q[3] for q in self.quads) if g]

    def nquads(self) -> bytes:
        """The dataset as N-Quads text."""
        return "".join(f"{s} {p} {o} {g} .\n" if g else f"{s} {p} {o} .\n"
                       for s, p, o, g in self.quads).encode("utf-8")

    def skolemized(self) -> RdfDataset:
        """The same dataset with each blank node replaced by a skolem IRI (RDF 1.1, section 3.5).

        Labels are content hashes, so the IRIs are stable: loading or uploading a run twice adds nothing, even
        where a store or server renames blank nodes on every load. They go under ``/.well-known/genid/`` of the
        authority of the first subject IRI (the user's namespace).
        """
        base = _skolem_base(self.quads)

        def skolem(term: str) -> str:
            return f"<{base}{term[2:]}>" if term[0] == "_" else term

        quads = [(skolem(s), p, skolem(o), g) if s[0] == "_" or o[0] == "_" else (s, p, o, g)
                 for s, p, o, g in self.quads]
        return RdfDataset(quads, self.prefixes, self.files, self.workflow_graphs)

    def oxigraph_quads(self) -> Iterator[object]:
        """The quads as pyoxigraph ``Quad`` objects (blank node labels kept)."""
        import pyoxigraph

        return pyoxigraph.parse(self.nquads(), format=pyoxigraph.RdfFormat.N_QUADS)


def _skolem_base(quads: list[Quad]) -> str:
    from urllib.parse import urlsplit

    for s, _, _, _ in quads:
        if s[0] == "<":
            parts = urlsplit(s[1:-1])
            if parts.netloc:
                return f"{parts.scheme}://{parts.netloc}/.well-known/genid/yprov-wf-"
    return "urn:yprov-wf:genid:"


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
    tops: list[str] = []
    for source in read_sources(Path(path)):
        files.append(source.path)
        for prefix, uri in user_namespaces(source.doc).items():
            prefixes.setdefault(prefix, uri)
        quads.update(dict.fromkeys(document_quads(source.doc, str(source.path))))
        top = top_level_graph(source.doc)
        if top and top[1:-1] not in tops:
            tops.append(top[1:-1])
    return RdfDataset(list(quads), prefixes, files, tops)


def serialize(dataset: RdfDataset, format: str = "trig") -> bytes:
    """The dataset in ``format`` (trig, nquads, jsonld, turtle) as bytes."""
    fmt = formats.get(format)
    buffer = io.BytesIO()
    fmt.write(dataset, buffer)
    return buffer.getvalue()


def export(path: Path | str, output: Path | str | None = None, format: str = "trig") -> ExportResult:
    """Export the PROV-JSON under ``path`` as PROV-O in ``format``; written atomically to ``output`` if given.

    Each task bundle is a named graph; the workflow, its tasks and its collection are in the named graph
    ``<workflow run IRI>/bundle`` (nothing is in the default graph). Turtle cannot
    hold named graphs: the export then merges them and warns (:class:`NamedGraphsFlattened`).
    """
    formats.get(format)  # an unknown format fails before any file is read
    dataset = to_dataset(Path(path))
    data = serialize(dataset, format)
    if output is not None:
        atomic_write(Path(output), data)
    return ExportResult(Path(output) if output is not None else None, format, len(dataset.quads),
                        len(dataset.graphs), None if output is not None else data)
