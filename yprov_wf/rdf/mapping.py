"""Pure mapping from PROV-JSON (parsed dicts) to PROV-O quads: no file format, no I/O.

    document records                → default graph
    bundle B                        → named graph <B>, plus <B> a prov:Entity, prov:Bundle in the default graph
    element attributes              → typed literals (xsd types kept), prov:type → rdf:type, times → xsd:dateTime
    relation used(a, e, t)          → a prov:used e                       (direct)
                                      a prov:qualifiedUsage [a prov:Usage; prov:entity e; prov:atTime t]
    wasStartedBy(a, -, starter, t)  → a prov:wasInfluencedBy starter       (prov:wasStartedBy's range is Entity)
                                      a prov:qualifiedStart [a prov:Start; prov:hadActivity starter; prov:atTime t]

Qualified nodes of relations without an identifier are blank nodes whose labels are a hash of their graph and
content, so exporting or loading the same files twice gives the same quads (the store stays a set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Quad

from yprov_wf.rdf.terms import PROV, RDF, RDFS, STANDARD_PREFIXES, XSD, YWF

Node = NamedNode | BlankNode
Graph = NamedNode | DefaultGraph

_ELEMENTS = {"entity": "Entity", "activity": "Activity", "agent": "Agent"}


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
_RDF_TYPE = NamedNode(RDF + "type")
_YWF_TYPE_LITERAL = NamedNode(YWF + "typeLiteral")
_BUNDLE_TYPES = (NamedNode(PROV + "Entity"), NamedNode(PROV + "Bundle"))
_DEFAULT = DefaultGraph()


class MappingError(ValueError):
    """A PROV-JSON document that cannot be mapped (names the file and the bad value)."""


def document_quads(doc: dict[str, Any], source: str = "<document>") -> Iterator[Quad]:
    """PROV-O quads of one PROV-JSON document: top-level records in the default graph, one named graph a bundle."""
    if not isinstance(doc, dict):
        raise MappingError(f"{source}: not a PROV-JSON document (a JSON object is expected)")
    mapper = _Mapper(source)
    prefixes = mapper.prefixes(doc.get("prefix", {}), STANDARD_PREFIXES)
    yield from mapper.scope(doc, prefixes, _DEFAULT)
    bundles = doc.get("bundle", {})
    if not isinstance(bundles, dict):
        raise MappingError(f"{source}: 'bundle' must be an object, got {type(bundles).__name__}")
    for ident, body in bundles.items():
        if not isinstance(body, dict):
            raise MappingError(f"{source}: bundle {ident!r} must be an object")
        graph = mapper.node(ident, prefixes)
        if not isinstance(graph, NamedNode):
            raise MappingError(f"{source}: bundle identifier {ident!r} must be an IRI")
        for t in _BUNDLE_TYPES:
            yield Quad(graph, _RDF_TYPE, t, _DEFAULT)
        yield from mapper.scope(body, mapper.prefixes(body.get("prefix", {}), prefixes), graph)


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
        self._iris: dict[str, NamedNode] = {}
        self._expanded: dict[tuple[int, str], NamedNode | BlankNode] = {}
        self._scopes: list[dict[str, str]] = []  # kept alive: the cache above is keyed by their id()

    def prefixes(self, declared: Any, inherited: dict[str, str]) -> dict[str, str]:
        if not isinstance(declared, dict):
            raise MappingError(f"{self.source}: 'prefix' must be an object")
        out = dict(inherited)
        for prefix, uri in declared.items():
            if not isinstance(uri, str) or ":" not in uri:
                raise MappingError(f"{self.source}: prefix {prefix!r} maps to {uri!r}, which is not an absolute IRI")
            out[prefix] = uri
        self._scopes.append(out)
        return out

    def iri(self, text: str) -> NamedNode:
        node = self._iris.get(text)
        if node is None:
            try:
                node = self._iris[text] = NamedNode(text)
            except ValueError as exc:
                raise MappingError(f"{self.source}: {text!r} is not a valid IRI ({exc})") from None
        return node

    def node(self, qname: Any, prefixes: dict[str, str]) -> NamedNode | BlankNode:
        """The IRI (or blank node for ``_:x``) of a PROV-JSON qualified name."""
        key = (id(prefixes), qname)
        found = self._expanded.get(key) if isinstance(qname, str) else None
        if found is not None:
            return found
        if not isinstance(qname, str) or not qname:
            raise MappingError(f"{self.source}: identifier {qname!r} is not a qualified name")
        prefix, sep, local = qname.partition(":")
        if prefix == "_" and sep:
            node: NamedNode | BlankNode = BlankNode(hashlib.blake2b(qname.encode(), digest_size=10).hexdigest())
        elif sep and prefix in prefixes:
            node = self.iri(prefixes[prefix] + local)
        elif not sep and "default" in prefixes:
            node = self.iri(prefixes["default"] + qname)
        elif sep and local.startswith("//"):
            node = self.iri(qname)  # already an absolute IRI
        else:
            raise MappingError(f"{self.source}: {qname!r} uses an undeclared prefix {prefix!r}")
        self._expanded[key] = node
        return node

    def value(self, value: Any, prefixes: dict[str, str]) -> NamedNode | BlankNode | Literal:
        """A PROV-JSON attribute value as an RDF term, keeping its xsd type."""
        if isinstance(value, dict):
            text = value.get("$")
            if not isinstance(text, str):
                raise MappingError(f"{self.source}: typed value {value!r} has no string '$'")
            kind = value.get("type")
            if kind is None:
                lang = value.get("lang")
                return Literal(text, language=lang) if lang else Literal(text)
            if kind in ("xsd:QName", "prov:QUALIFIED_NAME"):
                return self.node(text, prefixes)
            if kind == "xsd:anyURI":
                return Literal(text, datatype=self.iri(XSD + "anyURI"))
            datatype = self.node(kind, prefixes)
            if not isinstance(datatype, NamedNode):
                raise MappingError(f"{self.source}: datatype {kind!r} is not an IRI")
            return Literal(text, datatype=datatype)
        if isinstance(value, bool):
            return Literal(value)
        if isinstance(value, int):
            return Literal(str(value), datatype=self.iri(XSD + ("int" if -2**31 <= value < 2**31 else "long"
                                                               if -2**63 <= value < 2**63 else "integer")))
        if isinstance(value, float):
            return Literal(value)
        if isinstance(value, str):
            return Literal(value)
        raise MappingError(f"{self.source}: attribute value {value!r} is neither a string, a number nor a typed value")

    def scope(self, body: dict[str, Any], prefixes: dict[str, str], graph: Graph) -> Iterator[Quad]:
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
                    yield Quad(subject, _RDF_TYPE, cls, graph)
                    for part in attrs if isinstance(attrs, list) else [attrs]:
                        yield from self._attributes(subject, part, prefixes, graph, _ELEMENT_PREDICATES, ())
            elif kind in RELATIONS:
                rel = RELATIONS[kind]
                for ident, attrs in records.items():
                    for part in attrs if isinstance(attrs, list) else [attrs]:
                        yield from self._relation(kind, rel, ident, part, prefixes, graph)
            else:
                raise MappingError(f"{self.source}: unknown PROV-JSON record kind {kind!r}")

    def _attributes(self, subject: Node, attrs: Any, prefixes: dict[str, str], graph: Graph,
                    predicates: dict[str, str], skip: tuple[str, ...]) -> Iterator[Quad]:
        if not isinstance(attrs, dict):
            raise MappingError(f"{self.source}: the attributes of {subject} must be an object")
        for name, values in attrs.items():
            if name in skip:
                continue
            for value in values if isinstance(values, list) else [values]:
                term = self.value(value, prefixes)
                if name == "prov:type":
                    if isinstance(term, Literal):
                        yield Quad(subject, _YWF_TYPE_LITERAL, term, graph)
                    else:
                        yield Quad(subject, _RDF_TYPE, term, graph)
                    continue
                if name in ("prov:startTime", "prov:endTime", "prov:time") and isinstance(term, Literal) \
                        and term.datatype.value == XSD + "string":
                    term = Literal(term.value, datatype=self.iri(XSD + "dateTime"))
                predicate = predicates.get(name)
                yield Quad(subject, self.iri(predicate) if predicate else self._predicate(name, prefixes), term, graph)

    def _predicate(self, name: str, prefixes: dict[str, str]) -> NamedNode:
        node = self.node(name, prefixes)
        if not isinstance(node, NamedNode):
            raise MappingError(f"{self.source}: attribute name {name!r} is not an IRI")
        return node

    def _relation(self, kind: str, rel: _Relation, ident: str, attrs: Any, prefixes: dict[str, str],
                  graph: Graph) -> Iterator[Quad]:
        if not isinstance(attrs, dict):
            raise MappingError(f"{self.source}: relation {ident!r} must be an object")
        if rel.subject not in attrs:
            raise MappingError(f"{self.source}: {kind} {ident!r} has no {rel.subject}")
        node_of: Callable[[Any], NamedNode | BlankNode] = lambda q: self.node(q, prefixes)  # noqa: E731
        subject = node_of(attrs[rel.subject])
        subtype = None
        if kind == "wasDerivedFrom":
            types = attrs.get("prov:type", [])
            for t in types if isinstance(types, list) else [types]:
                term = self.value(t, prefixes)
                if isinstance(term, NamedNode) and term.value in _DERIVATION_SUBTYPES:
                    subtype = _DERIVATION_SUBTYPES[term.value]
        for formal, predicate in rel.direct:
            if attrs.get(formal) is not None:
                yield Quad(subject, self.iri(PROV + predicate), node_of(attrs[formal]), graph)
                if subtype and formal == "prov:usedEntity":
                    yield Quad(subject, self.iri(PROV + subtype[0]), node_of(attrs[formal]), graph)
        if rel.qualified is None:
            return
        named = isinstance(ident, str) and not ident.startswith("_:")
        if named:
            q: NamedNode | BlankNode = node_of(ident)
        else:
            label = f"{graph}|{kind}|{sorted(attrs.items())!r}"
            q = BlankNode("q" + hashlib.blake2b(label.encode(), digest_size=12).hexdigest())
        qualified, node_class = (subtype[1], subtype[2]) if subtype else (rel.qualified, rel.node_class)
        yield Quad(subject, self.iri(PROV + qualified), q, graph)
        yield Quad(q, _RDF_TYPE, self.iri(PROV + node_class), graph)
        skip = [rel.subject]
        for formal, predicate in rel.node:
            value = attrs.get(formal)
            skip.append(formal)
            if value is None:
                continue
            if formal == "prov:time":
                term = self.value(value, prefixes)
                if isinstance(term, Literal) and term.datatype.value == XSD + "string":
                    term = Literal(term.value, datatype=self.iri(XSD + "dateTime"))
                yield Quad(q, self.iri(PROV + predicate), term, graph)
            else:
                yield Quad(q, self.iri(PROV + predicate), node_of(value), graph)
        for formal in attrs:
            if formal.startswith("prov:") and formal not in skip and formal not in _NODE_PREDICATES \
                    and formal != "prov:type":
                raise MappingError(f"{self.source}: {kind} {ident!r} has an unknown attribute {formal!r}")
        yield from self._attributes(q, attrs, prefixes, graph, _NODE_PREDICATES, tuple(skip))
