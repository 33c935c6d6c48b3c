"""SPARQL on any target: an Oxigraph store folder, a SPARQL server URL, or provenance files loaded in memory.

Local targets query the union of all graphs as the default graph, so a pattern matches whichever task bundle
(named graph) holds the triple; ``GRAPH ?g { … }`` still names the bundle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyoxigraph

from yprov_wf.rdf.errors import SparqlError
from yprov_wf.rdf.terms import XSD

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
    """Something to run SPARQL on: ``Target.open(path_or_url)``; use as a context manager.

    ``runner`` makes any other engine a target: a function from SPARQL text to SPARQL 1.1 JSON results (a dict),
    or for CONSTRUCT a list of pyoxigraph triples, e.g. one that runs Jena's ``tdb2.tdbquery``.
    """

    def __init__(self, store: pyoxigraph.Store | None = None, endpoint: str | None = None,
                 runner: Callable[[str], Any] | None = None, timeout: float | None = None) -> None:
        self.store, self.endpoint, self.runner, self.timeout = store, endpoint, runner, timeout

    @classmethod
    def open(cls, where: str | Path, timeout: float | None = None) -> Target:
        """A store folder (opened read-only), an http(s) SPARQL endpoint, a Jena TDB2 folder (``yprov_wf.rdf.tdb2``),
        an RDF file, or PROV-JSON files."""
        from yprov_wf.rdf.store import is_store

        text = str(where)
        if text.startswith(("http://", "https://")):
            from yprov_wf.rdf.endpoint import check_url

            return cls(endpoint=check_url(text), timeout=timeout)
        path = Path(where)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if is_store(path):
            return cls(store=pyoxigraph.Store.read_only(str(path)))
        from yprov_wf.rdf import tdb2

        if tdb2.is_tdb2(path):
            return cls(runner=tdb2.runner(path))
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

    def triples(self, sparql: str) -> list[tuple[str, str, str | None]]:
        """Run a CONSTRUCT query: (subject, predicate, object) texts, the objects printed as ``literal_text`` does.

        The ready queries fetch numbers this way: every store writes a graph result with the number's full
        precision (Virtuoso's SELECT results keep 6 digits of a double, its Turtle keeps them all).
        """
        result = self._answer(sparql)
        if not isinstance(result, list):
            raise SparqlError("expected a CONSTRUCT query")
        return [(_text(t.subject) or "", _text(t.predicate) or "", _text(t.object)) for t in result]

    def run(self, sparql: str) -> Table | bool | list[str]:
        """Run any query: a Table (SELECT), a bool (ASK) or N-Triples lines (CONSTRUCT, DESCRIBE)."""
        result = self._answer(sparql)
        if isinstance(result, list):
            return [str(t) + " ." for t in result]
        return result

    def _answer(self, sparql: str) -> Table | bool | list[Any]:
        """A Table, a bool, or pyoxigraph triples."""
        if self.runner is not None:
            return _from_json(self.runner(sparql))
        if self.endpoint is not None:
            from yprov_wf.rdf import endpoint

            options = {} if self.timeout is None else {"timeout": self.timeout}
            return _from_json(endpoint.query(self.endpoint, sparql, **options))
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
        return list(result)


def _text(term: Any) -> str | None:
    if term is None:
        return None
    if isinstance(term, pyoxigraph.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, pyoxigraph.Literal):
        return literal_text(term.value, term.datatype.value)
    return str(term.value)


_INTEGERS = frozenset(XSD + t for t in ("integer", "int", "long", "short", "byte", "nonNegativeInteger",
                                        "positiveInteger", "nonPositiveInteger", "negativeInteger", "unsignedLong",
                                        "unsignedInt", "unsignedShort", "unsignedByte"))
_DATETIME = re.compile(r"(-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def literal_text(value: str, datatype: str | None) -> str:
    """A literal's text from its value and type, the same whichever store printed it.

    Booleans are ``true``/``false`` (Virtuoso prints 1/0); doubles, floats and decimals are the shortest text
    that reads back as the same double (Python's ``repr``: Oxigraph prints ``0.30000000000000004``, Virtuoso's
    Turtle ``0.30000000000000004441``, as a decimal), or ``NaN``, ``INF``, ``-INF``; integers lose ``+`` and
    leading zeros; a dateTime with a time zone is in UTC with ``Z``, its fraction without trailing zeros.
    Anything that does not parse is left as it is. (Virtuoso's SELECT results keep only 6 digits of a double:
    no client can restore them, so the ready queries fetch numbers with CONSTRUCT.)
    """
    if datatype is None or datatype == XSD + "string":
        return value
    try:
        if datatype == XSD + "boolean":
            return {"1": "true", "true": "true", "0": "false", "false": "false"}.get(value.strip(), value)
        if datatype in (XSD + "double", XSD + "float", XSD + "decimal"):
            number = float(value)
            if number != number:
                return "NaN"
            if number in (float("inf"), float("-inf")):
                return "INF" if number > 0 else "-INF"
            return repr(number)
        if datatype in _INTEGERS:
            return str(int(value))
        if datatype == XSD + "dateTime":
            return _datetime_text(value)
    except (ValueError, OverflowError):
        return value
    return value


def _datetime_text(value: str) -> str:
    found = _DATETIME.fullmatch(value.strip())
    if found is None:
        return value
    base, fraction, zone = found.groups()
    fraction = (fraction or "").rstrip("0")
    if zone and zone != "Z":
        moment = datetime.fromisoformat(base + zone).astimezone(timezone.utc)
        base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return base + (f".{fraction}" if fraction else "") + ("Z" if zone else "")


def _from_json(result: Any) -> Table | bool | list[Any]:
    if isinstance(result, list):
        return result
    if "boolean" in result:
        return bool(result["boolean"])
    columns = result.get("head", {}).get("vars", [])
    rows = []
    for binding in result.get("results", {}).get("bindings", []):
        row = []
        for c in columns:
            cell = binding.get(c)
            if cell is None:
                row.append(None)
            elif cell.get("type") == "bnode":
                row.append(f"_:{cell['value']}")
            elif cell.get("type") in ("literal", "typed-literal"):
                row.append(literal_text(cell["value"], cell.get("datatype")))
            else:
                row.append(cell["value"])
        rows.append(row)
    return Table(columns, rows)


def to_json(result: Table | bool | list[str]) -> str:
    """A query result as JSON: a list of row objects, a boolean, or a list of N-Triples lines."""
    if isinstance(result, Table):
        return json.dumps(result.records(), indent=1)
    return json.dumps(result, indent=1)
