"""The Turtle-family writer shared by the trig and turtle formats: subjects grouped, prefixes abbreviated.

Written here rather than through pyoxigraph because building one pyoxigraph object per quad costs more than
mapping the whole document; terms arrive already in N-Quads syntax, which Turtle and TriG accept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from yprov_wf.rdf.mapping import Quad
from yprov_wf.rdf.terms import RDF, XSD

_LOCAL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_RDF_TYPE = f"<{RDF}type>"
_QUOTE = '"'
#: a typed literal's xsd datatype (an unescaped quote ends a literal, so this never matches inside one)
_XSD_DATATYPE = re.compile(r'(?<!\\)"\^\^<' + re.escape(XSD) + r'([A-Za-z]+)>')


class _Abbreviator:
    """``<iri>`` → ``prefix:local`` where the local part needs no escaping; literals' datatypes likewise."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        self._namespaces = sorted(((uri, p) for p, uri in prefixes.items()), key=lambda item: -len(item[0]))
        self._cache: dict[str, str] = {_RDF_TYPE: "a"}

    def __call__(self, term: str) -> str:
        found = self._cache.get(term)
        if found is not None:
            return found
        out = term
        if term[0] == "<":
            iri = term[1:-1]
            for uri, prefix in self._namespaces:
                if iri.startswith(uri) and _LOCAL.fullmatch(iri, len(uri)):
                    out = f"{prefix}:{iri[len(uri):]}"
                    break
        if len(self._cache) < 100_000:
            self._cache[term] = out
        return out


def render(quads: Iterable[Quad], prefixes: dict[str, str], named_graphs: bool) -> Iterator[str]:
    """Turtle (``named_graphs=False``: every quad in one graph, duplicates dropped) or TriG text, in pieces."""
    short = _Abbreviator(prefixes)
    xsd = next((p for p, uri in prefixes.items() if uri == XSD), None)
    for prefix, uri in prefixes.items():
        yield f"@prefix {prefix}: <{uri}> .\n"
    graphs: dict[str, dict[str, list[tuple[str, str]]]] = {}
    if named_graphs:  # quads arrive deduplicated
        for s, p, o, g in quads:
            subjects = graphs.get(g)
            if subjects is None:
                subjects = graphs[g] = {}
            pairs = subjects.get(s)
            if pairs is None:
                subjects[s] = [(p, o)]
            else:
                pairs.append((p, o))
    else:
        merged: dict[str, dict[tuple[str, str], None]] = {}
        for s, p, o, _ in quads:
            merged.setdefault(s, {})[(p, o)] = None
        graphs[""] = {s: list(pairs) for s, pairs in merged.items()}
    for graph in sorted(graphs, key=bool):  # the default graph first
        indent = "  " if graph else ""
        yield f"\n{short(graph)} {{\n" if graph else "\n"
        sep = f" ;\n{indent}    "
        block = "".join([f"{indent}{short(subject)} "
                         + sep.join([f"{short(p)} {o if o[0] == _QUOTE else short(o)}" for p, o in pairs]) + " .\n"
                         for subject, pairs in graphs[graph].items()])
        yield _XSD_DATATYPE.sub(rf'"^^{xsd}:\1', block) if xsd else block
        if graph:
            yield "}\n"
