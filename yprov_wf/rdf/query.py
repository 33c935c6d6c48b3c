"""SPARQL on any target: an Oxigraph store folder, a SPARQL server URL, or provenance files loaded in memory.

Local targets query the union of all graphs as the default graph, so a pattern matches whichever task bundle
(named graph) holds the triple; ``GRAPH ?g { … }`` still names the bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph

from yprov_wf.rdf.errors import SparqlError

_RDF_FILES = {".trig": pyoxigraph.RdfFormat.TRIG, ".nq": pyoxigraph.RdfFormat.N_QUADS,
              ".jsonld": pyoxigraph.RdfFormat.JSON_LD, ".ttl": pyoxigraph.RdfFormat.TURTLE,
              ".nt": pyoxigraph.RdfFormat.N_TRIPLES}


@dataclass
class Table:
    """SELECT results: column names and rows of plain strings (None where a variable is unbound)."""

    columns: list[str]
    rows: list[list[str | None]] = field(default_factory=list)

    def text(self, max_width: int | None = None) -> str:
        """An aligned, tab-free text table with a header line; cells longer than ``max_width`` end in ``…``."""
        def cell(c: str | None) -> str:
            c = "" if c is None else c
            return c if max_width is None or len(c) <= max_width else c[:max_width - 1] + "…"

        cells = [self.columns] + [[cell(c) for c in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)

    def records(self) -> list[dict[str, str | None]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


class Target:
    """Something to run SPARQL on: ``Target.open(path_or_url)``; use as a context manager."""

    def __init__(self, store: pyoxigraph.Store | None = None, endpoint: str | None = None) -> None:
        self.store, self.endpoint = store, endpoint

    @classmethod
    def open(cls, where: str | Path) -> Target:
        """A store folder (opened read-only), an http(s) SPARQL endpoint, an RDF file, or PROV-JSON files."""
        from yprov_wf.rdf.store import is_store

        text = str(where)
        if text.startswith(("http://", "https://")):
            from yprov_wf.rdf.endpoint import check_url

            return cls(endpoint=check_url(text))
        path = Path(where)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if is_store(path):
            return cls(store=pyoxigraph.Store.read_only(str(path)))
        store = pyoxigraph.Store()
        if path.is_file() and path.suffix in _RDF_FILES:
            try:
                store.bulk_load(path=str(path), format=_RDF_FILES[path.suffix])
            except SyntaxError as exc:
                raise ValueError(f"{path}: not valid {path.suffix[1:]} ({exc})") from None
        else:
            from yprov_wf.rdf.export import to_dataset

            store.bulk_load(to_dataset(path).skolemized().nquads(), format=pyoxigraph.RdfFormat.N_QUADS)
        return cls(store=store)

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store = None

    def select(self, sparql: str) -> Table:
        """Run a SELECT query; SparqlError when it is not valid SPARQL or not a SELECT."""
        result = self.run(sparql)
        if not isinstance(result, Table):
            raise SparqlError("expected a SELECT query")
        return result

    def run(self, sparql: str) -> Table | bool | list[str]:
        """Run any query: a Table (SELECT), a bool (ASK) or N-Triples lines (CONSTRUCT, DESCRIBE)."""
        if self.endpoint is not None:
            from yprov_wf.rdf import endpoint

            return _from_json(endpoint.query(self.endpoint, sparql))
        assert self.store is not None
        try:
            result = self.store.query(sparql, use_default_graph_as_union=True)
        except SyntaxError as exc:
            raise SparqlError(f"invalid SPARQL: {' '.join(str(exc).split())}") from None
        except OSError as exc:
            raise SparqlError(f"the query failed: {exc}") from None
        if isinstance(result, pyoxigraph.QueryBoolean):
            return bool(result)
        if isinstance(result, pyoxigraph.QuerySolutions):
            columns = [v.value for v in result.variables]
            return Table(columns, [[_text(s[c]) for c in columns] for s in result])
        return [str(t) + " ." for t in result]


def _text(term: Any) -> str | None:
    if term is None:
        return None
    if isinstance(term, pyoxigraph.BlankNode):
        return f"_:{term.value}"
    return str(term.value)


def _from_json(result: Any) -> Table | bool | list[str]:
    if isinstance(result, list):
        return [str(t) + " ." for t in result]
    if "boolean" in result:
        return bool(result["boolean"])
    columns = result.get("head", {}).get("vars", [])
    rows = []
    for binding in result.get("results", {}).get("bindings", []):
        row = []
        for c in columns:
            cell = binding.get(c)
            row.append(None if cell is None else (f"_:{cell['value']}" if cell.get("type") == "bnode"
                                                   else cell["value"]))
        rows.append(row)
    return Table(columns, rows)


def to_json(result: Table | bool | list[str]) -> str:
    """A query result as JSON: a list of row objects, a boolean, or a list of N-Triples lines."""
    if isinstance(result, Table):
        return json.dumps(result.records(), indent=1)
    return json.dumps(result, indent=1)
