"""Pure mapping from PROV-JSON (parsed dicts) to PROV-O quads: no file format, no I/O.

    document records                → named graph <workflow run IRI>/bundle (see top_level_graph); no default graph
    bundle B                        → named graph <B>, with <B> a prov:Entity, prov:Bundle in it
    element attributes              → typed literals (xsd types kept), prov:type → rdf:type, times → xsd:dateTime
    relation used(a, e, t)          → a prov:used e                       (direct)
                                      a prov:qualifiedUsage [a prov:Usage; prov:entity e; prov:atTime t]
    wasStartedBy(a, -, starter, t)  → a prov:wasInfluencedBy starter       (prov:wasStartedBy's range is Entity)
                                      a prov:qualifiedStart [a prov:Start; prov:hadActivity starter; prov:atTime t]

Quads are tuples of four terms already written in N-Quads syntax (``<iri>``, ``_:label``, ``"text"^^<type>``;
the graph is ``""`` for the default graph): building pyoxigraph objects one by one costs ~10x more than the
whole mapping, and every format module turns the N-Quads text into its own syntax in Rust.

Qualified nodes of relations without an identifier are blank nodes whose labels are a hash of their graph and
content, so exporting or loading the same files twice gives the same quads (the store stays a set).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from yprov_wf.rdf.terms import PROV, RDF, RDFS, STANDARD_PREFIXES, XSD, YWF

Quad = tuple[str, str, str, str]  # subject, predicate, object, graph ("" for the default graph), N-Quads syntax

_ELEMENTS = {"entity": "Entity", "activity": "Activity", "agent": "Agent"}
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_NEEDS_ESCAPE = re.compile(r'[\\"\n\r]')
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def literal(text: str, datatype: str | None = None, language: str | None = None) -> str:
    """An N-Quads literal: ``"text"``, ``"text"^^<datatype>`` or ``"text"@lang``."""
    if _NEEDS_ESCAPE.search(text):
        text = text.translate(_ESCAPES)
    if language:
        return f'"{text}"@{language}'
    if datatype is None or datatype == XSD + "string":
        return f'"{text}"'
    return f'"{text}"^^<{datatype}>'


@dataclass(frozen=True)
class _Relation:
    """How one PROV-JSON relation kind maps to PROV-O (attribute names are PROV-JSON's)."""

    subject: str  # the formal attribute that is the subject of every triple
    direct: tuple[tuple[str, str], ...]  # (formal attribute, direct predicate) pairs
    qualified: str | None = None  # prov:qualifiedX predicate; None: PROV-O has no qualified form
    node_class: str = ""  # class of the qualified node
    node: tuple[tuple[str, str], ...] = ()  # (formal attribute, predicate on the qualified node)


_TIME = ("prov:time", "atTime")
RELATIONS: dict[str, _Relation] = {
    "used": _Relation("prov:activity", (("prov:entity", "used"),), "qualifiedUsage", "Usage",
                      (("prov:entity", "entity"), _TIME)),
    "wasGeneratedBy": _Relation("prov:entity", (("prov:activity", "wasGeneratedBy"),), "qualifiedGeneration",
                                "Generation", (("prov:activity", "activity"), _TIME)),
    "wasStartedBy": _Relation("prov:activity", (("prov:trigger", "wasStartedBy"), ("prov:starter", "wasInfluencedBy")),
                              "qualifiedStart", "Start",
                              (("prov:trigger", "entity"), ("prov:starter", "hadActivity"), _TIME)),
    "wasEndedBy": _Relation("prov:activity", (("prov:trigger", "wasEndedBy"), ("prov:ender", "wasInfluencedBy")),
                            "qualifiedEnd", "End", (("prov:trigger", "entity"), ("prov:ender", "hadActivity"), _TIME)),
    "wasInvalidatedBy": _Relation("prov:entity", (("prov:activity", "wasInvalidatedBy"),), "qualifiedInvalidation",
                                  "Invalidation", (("prov:activity", "activity"), _TIME)),
    "wasDerivedFrom": _Relation("prov:generatedEntity", (("prov:usedEntity", "wasDerivedFrom"),),
                                "qualifiedDerivation", "Derivation",
                                (("prov:usedEntity", "entity"), ("prov:activity", "hadActivity"),
                                 ("prov:generation", "hadGeneration"), ("prov:usage", "hadUsage"))),
    "wasInformedBy": _Relation("prov:informed", (("prov:informant", "wasInformedBy"),), "qualifiedCommunication",
                               "Communication", (("prov:informant", "activity"),)),
    "wasAssociatedWith": _Relation("prov:activity", (("prov:agent", "wasAssociatedWith"),), "qualifiedAssociation",
                                   "Association", (("prov:agent", "agent"), ("prov:plan", "hadPlan"))),
    "wasAttributedTo": _Relation("prov:entity", (("prov:agent", "wasAttributedTo"),), "qualifiedAttribution",
                                 "Attribution", (("prov:agent", "agent"),)),
    "actedOnBehalfOf": _Relation("prov:delegate", (("prov:responsible", "actedOnBehalfOf"),), "qualifiedDelegation",
                                 "Delegation", (("prov:responsible", "agent"), ("prov:activity", "hadActivity"))),
    "wasInfluencedBy": _Relation("prov:influencee", (("prov:influencer", "wasInfluencedBy"),), "qualifiedInfluence",
                                 "Influence", (("prov:influencer", "influencer"),)),
    "hadMember": _Relation("prov:collection", (("prov:entity", "hadMember"),)),
    "specializationOf": _Relation("prov:specificEntity", (("prov:generalEntity", "specializationOf"),)),
    "alternateOf": _Relation("prov:alternate1", (("prov:alternate2", "alternateOf"),)),
    "mentionOf": _Relation("prov:specificEntity", (("prov:generalEntity", "mentionOf"), ("prov:bundle", "asInBundle"))),
}

#: Derivation subtypes (a prov:type of a wasDerivedFrom): the extra direct predicate and the node's class.
_DERIVATION_SUBTYPES = {
    PROV + "Revision": ("wasRevisionOf", "qualifiedRevision", "Revision"),
    PROV + "Quotation": ("wasQuotedFrom", "qualifiedQuotation", "Quotation"),
    PROV + "PrimarySource": ("hadPrimarySource", "qualifiedPrimarySource", "PrimarySource"),
}

#: PROV-JSON attribute names with a PROV-O predicate of their own.
_ELEMENT_PREDICATES = {"prov:startTime": PROV + "startedAtTime", "prov:endTime": PROV + "endedAtTime",
                       "prov:location": PROV + "atLocation", "prov:label": RDFS + "label",
                       "prov:value": PROV + "value"}
_NODE_PREDICATES = {"prov:location": PROV + "atLocation", "prov:label": RDFS + "label",
                    "prov:role": PROV + "hadRole", "prov:value": PROV + "value"}
_RDF_TYPE = f"<{RDF}type>"
_YWF_TYPE_LITERAL = f"<{YWF}typeLiteral>"
_BUNDLE_TYPES = (f"<{PROV}Entity>", f"<{PROV}Bundle>")
_DATETIME = XSD + "dateTime"
_TIMES = frozenset(("prov:startTime", "prov:endTime", "prov:time"))
_DEFAULT = ""


_P = {name: f"<{PROV}{name}>" for rel in RELATIONS.values()
      for name in [p for _, p in rel.direct] + [p for _, p in rel.node] + [rel.qualified or "", rel.node_class]
      if name} | {name: f"<{PROV}{name}>" for sub in _DERIVATION_SUBTYPES.values() for name in sub}


class _Prefixes(dict):
    """A scope's prefix → namespace map, with the caches of what was resolved under it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.nodes: dict[str, str] = {}
        self.datatypes: dict[str, str] = {}
        self.predicates: dict[tuple[int, str], str] = {}


class MappingError(ValueError):
    """A PROV-JSON document that cannot be mapped (names the file and the bad value)."""


def document_quads(doc: dict[str, Any], source: str = "<document>") -> Iterator[Quad]:
    """PROV-O quads of one PROV-JSON document: top-level records in their own named graph (``top_level_graph``),
    one named graph a bundle; nothing in the default graph."""
    if not isinstance(doc, dict):
        raise MappingError(f"{source}: not a PROV-JSON document (a JSON object is expected)")
    mapper = _Mapper(source)
    prefixes = mapper.prefixes(doc.get("prefix", {}), STANDARD_PREFIXES)
    yield from mapper.scope(doc, prefixes, top_level_graph(doc, mapper, prefixes))
    bundles = doc.get("bundle", {})
    if not isinstance(bundles, dict):
        raise MappingError(f"{source}: 'bundle' must be an object, got {type(bundles).__name__}")
    for ident, body in bundles.items():
        if not isinstance(body, dict):
            raise MappingError(f"{source}: bundle {ident!r} must be an object")
        graph = mapper.node(ident, prefixes)
        if graph.startswith("_:"):
            raise MappingError(f"{source}: bundle identifier {ident!r} must be an IRI")
        for t in _BUNDLE_TYPES:
            yield (graph, _RDF_TYPE, t, graph)
        yield from mapper.scope(body, mapper.prefixes(body.get("prefix", {}), prefixes), graph)


def top_level_graph(doc: dict[str, Any], mapper: _Mapper | None = None, prefixes: _Prefixes | None = None) -> str:
    """The named graph (``<IRI>``) of a document's top-level records, the workflow-level provenance.

    ``<workflow run IRI>/bundle`` for the document that holds a ``ywf:WorkflowRun`` activity (workflow.json, a
    merged file), so every store answers the same whatever its default graph does; for a foreign document
    without one, ``urn:yprov-wf:document:<hash of its top-level records>``; ``""`` for a document with no
    top-level records (a task file), which then puts nothing in the default graph either.
    """
    mapper = mapper or _Mapper("<document>")
    prefixes = prefixes if prefixes is not None else mapper.prefixes(doc.get("prefix", {}), STANDARD_PREFIXES)
    runs = []
    activities = doc.get("activity")
    for ident, attrs in (activities.items() if isinstance(activities, dict) else ()):
        for part in attrs if isinstance(attrs, list) else [attrs]:
            kinds = part.get("prov:type", []) if isinstance(part, dict) else []
            for kind in kinds if isinstance(kinds, list) else [kinds]:
                text = kind.get("$") if isinstance(kind, dict) else None
                try:
                    if isinstance(text, str) and mapper.node(text, prefixes) == f"<{YWF}WorkflowRun>":
                        runs.append(mapper.node(ident, prefixes))
                except MappingError:
                    continue  # mapping the scope reports it
    named = sorted(r for r in runs if r.startswith("<"))
    if named:
        return f"{named[0][:-1]}/bundle>"
    top = {k: v for k, v in doc.items() if k not in ("prefix", "bundle")}
    if not top:
        return _DEFAULT
    digest = hashlib.blake2b(json.dumps(top, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()
    return f"<urn:yprov-wf:document:{digest}>"


def user_namespaces(doc: dict[str, Any]) -> dict[str, str]:
    """The prefixes a PROV-JSON document declares (top level and in its bundles), for pretty output."""
    found = {k: v for k, v in doc.get("prefix", {}).items() if isinstance(v, str) and k != "default"}
    for body in (doc.get("bundle") or {}).values():
        if isinstance(body, dict):
            found.update((k, v) for k, v in body.get("prefix", {}).items() if isinstance(v, str) and k != "default")
    return found


class _Mapper:
    """Term caches and the per-record mapping; one per source document."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._iris: dict[str, str] = {}

    def prefixes(self, declared: Any, inherited: dict[str, str]) -> _Prefixes:
        if not isinstance(declared, dict):
            raise MappingError(f"{self.source}: 'prefix' must be an object")
        out = _Prefixes(inherited)
        for prefix, uri in declared.items():
            if not isinstance(uri, str) or not _SCHEME.match(uri):
                raise MappingError(f"{self.source}: prefix {prefix!r} maps to {uri!r}, which is not an absolute IRI")
            out[prefix] = uri
        return out

    def iri(self, text: str) -> str:
        """``<text>``, checked once to be an absolute IRI."""
        term = self._iris.get(text)
        if term is None:
            if not _SCHEME.match(text) or _BAD_IRI.search(text):
                raise MappingError(f"{self.source}: {text!r} is not a valid absolute IRI")
            term = self._iris[text] = f"<{text}>"
        return term

    def node(self, qname: Any, prefixes: _Prefixes) -> str:
        """The ``<IRI>`` (or ``_:label`` for ``_:x``) of a PROV-JSON qualified name."""
        found = prefixes.nodes.get(qname) if isinstance(qname, str) else None
        if found is not None:
            return found
        if not isinstance(qname, str) or not qname:
            raise MappingError(f"{self.source}: identifier {qname!r} is not a qualified name")
        prefix, sep, local = qname.partition(":")
        if prefix == "_" and sep:
            node = "_:b" + hashlib.blake2b(f"{self.source}|{qname}".encode(), digest_size=10).hexdigest()
        elif sep and prefix in prefixes:
            node = self.iri(prefixes[prefix] + local)
        elif not sep and "default" in prefixes:
            node = self.iri(prefixes["default"] + qname)
        elif sep and local.startswith("//"):
            node = self.iri(qname)  # already an absolute IRI
        else:
            raise MappingError(f"{self.source}: {qname!r} uses an undeclared prefix {prefix!r}")
        prefixes.nodes[qname] = node
        return node

    def value(self, value: Any, prefixes: _Prefixes, datetime: bool = False) -> str:
        """A PROV-JSON attribute value as an N-Quads term, keeping its xsd type (``datetime``: a plain string
        is an xsd:dateTime, as PROV-JSON writes times)."""
        if isinstance(value, str):
            return literal(value, _DATETIME if datetime else None)
        if isinstance(value, dict):
            text = value.get("$")
            if not isinstance(text, str):
                raise MappingError(f"{self.source}: typed value {value!r} has no string '$'")
            kind = value.get("type")
            if kind is None:
                lang = value.get("lang")
                if lang is not None and (not isinstance(lang, str) or not re.fullmatch(r"[A-Za-z0-9-]+", lang)):
                    raise MappingError(f"{self.source}: language tag {lang!r} is not valid")
                return literal(text, None, lang)
            datatype = prefixes.datatypes.get(kind)
            if datatype is None:
                if kind in ("xsd:QName", "prov:QUALIFIED_NAME"):
                    return self.node(text, prefixes)
                node = self.node(kind, prefixes)
                if node.startswith("_:"):
                    raise MappingError(f"{self.source}: datatype {kind!r} is not an IRI")
                datatype = prefixes.datatypes[kind] = node[1:-1]
            return literal(text, datatype)
        if isinstance(value, bool):
            return literal("true" if value else "false", XSD + "boolean")
        if isinstance(value, int):
            kind = "int" if -2**31 <= value < 2**31 else "long" if -2**63 <= value < 2**63 else "integer"
            return literal(str(value), XSD + kind)
        if isinstance(value, float):
            text = repr(value) if value == value and abs(value) != float("inf") else \
                ("NaN" if value != value else "INF" if value > 0 else "-INF")
            return literal(text, XSD + "double")
        raise MappingError(f"{self.source}: attribute value {value!r} is neither a string, a number nor a typed value")

    def scope(self, body: dict[str, Any], prefixes: _Prefixes, graph: str) -> Iterator[Quad]:
        """Quads of one scope (the document's top level or one bundle)."""
        for kind, records in body.items():
            if kind in ("prefix", "bundle"):
                continue
            if not isinstance(records, dict):
                raise MappingError(f"{self.source}: {kind!r} must be an object of records")
            if kind in _ELEMENTS:
                cls = self.iri(PROV + _ELEMENTS[kind])
                for ident, attrs in records.items():
                    subject = self.node(ident, prefixes)
                    yield (subject, _RDF_TYPE, cls, graph)
                    for part in attrs if isinstance(attrs, list) else [attrs]:
                        yield from self._attributes(subject, part, prefixes, graph, _ELEMENT_PREDICATES, ())
            elif kind in RELATIONS:
                rel = RELATIONS[kind]
                for ident, attrs in records.items():
                    for part in attrs if isinstance(attrs, list) else [attrs]:
                        yield from self._relation(kind, rel, ident, part, prefixes, graph)
            else:
                raise MappingError(f"{self.source}: unknown PROV-JSON record kind {kind!r}")

    def _attributes(self, subject: str, attrs: Any, prefixes: _Prefixes, graph: str,
                    predicates: dict[str, str], skip: tuple[str, ...]) -> Iterator[Quad]:
        if not isinstance(attrs, dict):
            raise MappingError(f"{self.source}: the attributes of {subject} must be an object")
        for name, values in attrs.items():
            if name in skip:
                continue
            if name == "prov:type":
                for value in values if isinstance(values, list) else [values]:
                    term = self.value(value, prefixes)
                    yield (subject, _YWF_TYPE_LITERAL if term[0] == '"' else _RDF_TYPE, term, graph)
                continue
            key = (id(predicates), name)
            predicate = prefixes.predicates.get(key)
            if predicate is None:
                known = predicates.get(name)
                predicate = prefixes.predicates[key] = self.iri(known) if known else self._predicate(name, prefixes)
            is_time = name in _TIMES
            if isinstance(values, list):
                for value in values:
                    yield (subject, predicate, self.value(value, prefixes, is_time), graph)
            else:
                yield (subject, predicate, self.value(values, prefixes, is_time), graph)

    def _predicate(self, name: str, prefixes: _Prefixes) -> str:
        node = self.node(name, prefixes)
        if node.startswith("_:"):
            raise MappingError(f"{self.source}: attribute name {name!r} is not an IRI")
        return node

    def _relation(self, kind: str, rel: _Relation, ident: str, attrs: Any, prefixes: _Prefixes,
                  graph: str) -> Iterator[Quad]:
        if not isinstance(attrs, dict):
            raise MappingError(f"{self.source}: relation {ident!r} must be an object")
        if rel.subject not in attrs:
            raise MappingError(f"{self.source}: {kind} {ident!r} has no {rel.subject}")
        subject = self.node(attrs[rel.subject], prefixes)
        subtype = None
        if kind == "wasDerivedFrom" and "prov:type" in attrs:
            types = attrs["prov:type"]
            for t in types if isinstance(types, list) else [types]:
                term = self.value(t, prefixes)
                if term[1:-1] in _DERIVATION_SUBTYPES:
                    subtype = _DERIVATION_SUBTYPES[term[1:-1]]
        for formal, predicate in rel.direct:
            target = attrs.get(formal)
            if target is not None:
                obj = self.node(target, prefixes)
                yield (subject, _P[predicate], obj, graph)
                if subtype and formal == "prov:usedEntity":
                    yield (subject, _P[subtype[0]], obj, graph)
        if rel.qualified is None:
            return
        if isinstance(ident, str) and not ident.startswith("_:"):
            q = self.node(ident, prefixes)
        else:
            label = f"{graph}|{kind}|{subject}|{sorted(attrs.items())!r}"
            q = "_:q" + hashlib.blake2b(label.encode(), digest_size=12).hexdigest()
        qualified, node_class = (subtype[1], subtype[2]) if subtype else (rel.qualified, rel.node_class)
        yield (subject, _P[qualified], q, graph)
        yield (q, _RDF_TYPE, _P[node_class], graph)
        skip = [rel.subject]
        for formal, predicate in rel.node:
            skip.append(formal)
            value = attrs.get(formal)
            if value is None:
                continue
            term = self.value(value, prefixes, True) if formal == "prov:time" else self.node(value, prefixes)
            yield (q, _P[predicate], term, graph)
        for formal in attrs:
            if formal.startswith("prov:") and formal not in skip and formal not in _NODE_PREDICATES \
                    and formal != "prov:type":
                raise MappingError(f"{self.source}: {kind} {ident!r} has an unknown attribute {formal!r}")
        if any(k not in skip for k in attrs):
            yield from self._attributes(q, attrs, prefixes, graph, _NODE_PREDICATES, tuple(skip))
