"""PROV-JSON documents built directly as JSON-ready dicts, with the record methods of `prov`'s ``ProvBundle``.

The mapping writes every bundle through this builder rather than through `prov`'s object model: each
record is encoded once, as it is added, in the form `prov`'s own PROV-JSON encoder gives it (typed
literals, ``_:idN`` relation ids, the prefixes a container uses), so recording a task needs neither
the import of `prov` nor its per-attribute checks. `prov` stays the reader and validator of what is
written: tests/test_provjson.py round-trips real runs through it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

XSD_INT_MIN, XSD_INT_MAX = -(2**31), 2**31 - 1
XSD_LONG_MIN, XSD_LONG_MAX = -(2**63), 2**63 - 1


class QName(str):
    """A qualified name ``prefix:local``: written as is where PROV-JSON expects an identifier, and as an
    ``xsd:QName`` typed literal where it is an attribute value (``prov:type``)."""

    __slots__ = ()

    @property
    def prefix(self) -> str:
        return self.partition(":")[0]


class IRI(str):
    """An absolute IRI as an attribute value: an ``xsd:anyURI`` typed literal (``prov:location``)."""

    __slots__ = ()


class Namespace:
    """A prefix bound to an IRI; ``ns[local]`` is the qualified name of ``local`` in it."""

    __slots__ = ("prefix", "uri")

    def __init__(self, prefix: str, uri: str) -> None:
        self.prefix, self.uri = prefix, uri

    def __getitem__(self, local: str) -> QName:
        return QName(f"{self.prefix}:{local}")


PROV = Namespace("prov", "http://www.w3.org/ns/prov#")
PROV_TYPE = PROV["type"]
PROV_LABEL = PROV["label"]
PROV_VALUE = PROV["value"]
PROV_LOCATION = PROV["location"]
PROV_BUNDLE = PROV["Bundle"]
_IMPLICIT = {"prov", "xsd"}  # never declared in a "prefix" object


def _value(value: Any) -> Any:
    """The PROV-JSON form of an attribute value, as `prov` writes it."""
    if isinstance(value, str):
        if type(value) is str:
            return value
        if isinstance(value, QName):
            return {"$": str(value), "type": "xsd:QName"}
        if isinstance(value, IRI):
            return {"$": str(value), "type": "xsd:anyURI"}
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        kind = ("xsd:int" if XSD_INT_MIN <= value <= XSD_INT_MAX
                else "xsd:long" if XSD_LONG_MIN <= value <= XSD_LONG_MAX else "xsd:integer")
        return {"$": str(value), "type": kind}
    if isinstance(value, float):
        return {"$": float.__repr__(value), "type": "xsd:double"}
    if isinstance(value, datetime):
        return {"$": value.isoformat(), "type": "xsd:dateTime"}
    raise TypeError(f"PROV attribute values are str, bool, int, float, datetime, QName or IRI; got "
                    f"{type(value).__name__}")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Bundle:
    """One PROV-JSON container: its records by kind, and the prefixes its names use."""

    def __init__(self, namespaces: dict[str, Namespace], declared: dict[str, str] | None = None) -> None:
        self._namespaces = namespaces  # every prefix this container may use (the document's and its own)
        self.prefixes: dict[str, str] = declared if declared is not None else {}
        self.records: dict[str, dict[str, Any]] = {}
        self._anonymous = 0

    def add_namespace(self, prefix: str, uri: str) -> Namespace:
        """Bind ``prefix`` (or ``prefix_1``… when it is taken by another IRI) to ``uri`` here."""
        for ns in self._namespaces.values():
            if ns.uri == uri:
                self._use(ns.prefix)
                return ns
        chosen, n = prefix, 0
        while chosen in self._namespaces or chosen in _IMPLICIT:
            n += 1
            chosen = f"{prefix}_{n}"
        ns = self._namespaces[chosen] = Namespace(chosen, uri)
        self.prefixes[chosen] = uri
        return ns

    def _use(self, prefix: str) -> None:
        if prefix not in self.prefixes and prefix not in _IMPLICIT:
            ns = self._namespaces.get(prefix)
            if ns is not None:
                self.prefixes[prefix] = ns.uri

    def has(self, identifier: str) -> bool:
        return any(identifier in records for records in self.records.values())

    # -- elements ------------------------------------------------------------------------------------
    def entity(self, identifier: QName, attributes: dict[str, Any] | None = None) -> QName:
        return self._element("entity", identifier, attributes or {})

    def activity(self, identifier: QName, start: datetime | None = None, end: datetime | None = None,
                 attributes: dict[str, Any] | None = None) -> QName:
        return self._element("activity", identifier, attributes or {},
                             (("prov:startTime", _time(start)), ("prov:endTime", _time(end))))

    def agent(self, identifier: QName, attributes: dict[str, Any] | None = None) -> QName:
        return self._element("agent", identifier, attributes or {})

    def collection(self, identifier: QName, attributes: dict[str, Any] | None = None) -> QName:
        """An entity whose types are the given ones and ``prov:Collection``."""
        attrs = dict(attributes or {})
        given = attrs.pop(PROV_TYPE, None)
        types = [PROV["Collection"]] if given is None else [given, PROV["Collection"]]
        return self._element("entity", identifier, {PROV_TYPE: types, **attrs})

    # -- relations -----------------------------------------------------------------------------------
    def used(self, activity: str, entity: str, time: datetime | None = None) -> None:
        self._relation("used", (("prov:activity", activity), ("prov:entity", entity), ("prov:time", _time(time))))

    def wasGeneratedBy(self, entity: str, activity: str, time: datetime | None = None) -> None:  # noqa: N802
        self._relation("wasGeneratedBy",
                       (("prov:entity", entity), ("prov:activity", activity), ("prov:time", _time(time))))

    def wasStartedBy(self, activity: str, trigger: str | None = None, starter: str | None = None,  # noqa: N802
                     time: datetime | None = None) -> None:
        self._relation("wasStartedBy", (("prov:activity", activity), ("prov:trigger", trigger),
                                        ("prov:starter", starter), ("prov:time", _time(time))))

    def wasAssociatedWith(self, activity: str, agent: str) -> None:  # noqa: N802
        self._relation("wasAssociatedWith", (("prov:activity", activity), ("prov:agent", agent)))

    def actedOnBehalfOf(self, delegate: str, responsible: str, activity: str | None = None) -> None:  # noqa: N802
        self._relation("actedOnBehalfOf",
                       (("prov:delegate", delegate), ("prov:responsible", responsible), ("prov:activity", activity)))

    def specializationOf(self, specific: str, general: str) -> None:  # noqa: N802
        self._relation("specializationOf", (("prov:specificEntity", specific), ("prov:generalEntity", general)))

    def wasRevisionOf(self, generated: str, used: str) -> None:  # noqa: N802
        self._relation("wasDerivedFrom", (("prov:generatedEntity", generated), ("prov:usedEntity", used)),
                       {PROV_TYPE: PROV["Revision"]})

    def hadMember(self, collection: str, entity: str) -> None:  # noqa: N802
        self._relation("hadMember", (("prov:collection", collection), ("prov:entity", entity)))

    def wasInformedBy(self, informed: str, informant: str) -> None:  # noqa: N802
        self._relation("wasInformedBy", (("prov:informed", informed), ("prov:informant", informant)))

    # -- encoding ------------------------------------------------------------------------------------
    def _element(self, kind: str, identifier: QName, attributes: dict[str, Any],
                 formal: tuple[tuple[str, str | None], ...] = ()) -> QName:
        body = {k: v for k, v in formal if v is not None}
        self._use_of(identifier)
        self._encode(attributes, body)
        self._add(kind, str(identifier), body)
        return identifier

    def _relation(self, kind: str, formal: tuple[tuple[str, str | None], ...],
                  attributes: dict[str, Any] | None = None) -> None:
        body = {}
        for key, value in formal:
            if value is not None:
                if isinstance(value, QName):
                    self._use_of(value)
                body[key] = str(value)
        if attributes:
            self._encode(attributes, body)
        self._anonymous += 1
        self._add(kind, f"_:id{self._anonymous}", body)

    def _encode(self, attributes: dict[str, Any], body: dict[str, Any]) -> None:
        for key, value in attributes.items():
            self._use_of(key)
            if type(value) is str:  # most values: written as they are
                body[key] = value
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, QName):
                        self._use_of(v)
                body[key] = [_value(v) for v in value]
            else:
                if isinstance(value, QName):
                    self._use_of(value)
                body[key] = _value(value)

    def _use_of(self, name: str) -> None:
        """Declare the prefix of the qualified name ``name`` here (see :meth:`_use`)."""
        self._use(name.partition(":")[0])

    def _add(self, kind: str, identifier: str, body: dict[str, Any]) -> None:
        records = self.records.setdefault(kind, {})
        existing = records.get(identifier)
        if existing is None:
            records[identifier] = body
        elif isinstance(existing, list):  # an id described more than once: a list, as `prov` writes it
            existing.append(body)
        else:
            records[identifier] = [existing, body]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prefix": dict(self.prefixes)} if self.prefixes else {}
        out.update(self.records)
        return out


class Document(Bundle):
    """A PROV-JSON document: top-level records, the namespaces added to it, and named bundles."""

    def __init__(self) -> None:
        super().__init__({})
        self._bundles: dict[str, Bundle] = {}

    def bundle(self, identifier: QName) -> Bundle:
        """A named bundle; it sees the document's namespaces and declares those it uses."""
        b = self._bundles[str(identifier)] = Bundle(dict(self._namespaces))
        b._use(identifier.prefix)
        return b

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self._bundles:
            out["bundle"] = {ident: b.to_dict() for ident, b in self._bundles.items()}
        return out

    def to_json(self) -> str:
        """Compact PROV-JSON text (``python -m json.tool`` pretty-prints it)."""
        return _ENCODER.encode(self.to_dict())


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)  # a document is a tree of plain values
