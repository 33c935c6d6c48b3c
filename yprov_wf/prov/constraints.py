"""PROV-CONSTRAINTS (W3C, https://www.w3.org/TR/prov-constraints/) checked over the PROV-JSON documents of one
workflow run, read as plain dicts: unique generation (constraint 24), acyclic wasInformedBy and wasDerivedFrom
(the event orderings of 38 and 45 cannot hold around a cycle), usage and generation inside their activity
(33, 34), start before end (30), generation before usage (39). One finding line per violation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

Document = tuple[str, dict[str, Any]]  # (where it was read from, the parsed PROV-JSON)


def check(documents: Iterable[Document]) -> list[str]:
    """Findings for the documents taken together (a task's bundle and workflow.json describe one run)."""
    docs = list(documents)
    scopes = [(source, scope) for source, doc in docs for scope in (doc, *doc.get("bundle", {}).values())]
    intervals: dict[str, list[float | None]] = {}
    findings: list[str] = []
    for source, scope in scopes:
        for ident, attrs in _elements(scope, "activity"):
            start, end = _time(attrs.get("prov:startTime")), _time(attrs.get("prov:endTime"))
            if start is not None and end is not None and end < start:
                findings.append(f"{source}: PROV-CONSTRAINTS start-precedes-end: {ident} ends before it starts")
            known = intervals.setdefault(ident, [None, None])
            known[0] = start if known[0] is None else known[0]
            known[1] = end if known[1] is None else known[1]
    generations: dict[str, dict[tuple[str | None, float | None], str]] = {}
    for source, scope in scopes:
        for rel in _relations(scope, "wasGeneratedBy"):
            entity, activity, when = rel.get("prov:entity"), rel.get("prov:activity"), _time(rel.get("prov:time"))
            generations.setdefault(entity, {}).setdefault((activity, when), source)
            findings += _inside(source, "generation", entity, activity, when, intervals)
    for entity, events in generations.items():
        if len(events) > 1:
            what = ", ".join(f"{a} at {_text(t)}" for a, t in events)
            findings.append(f"{next(iter(events.values()))}: PROV-CONSTRAINTS unique-generation: {entity} is "
                            f"generated {len(events)} times ({what})")
    for source, scope in scopes:
        for rel in _relations(scope, "used"):
            entity, activity, when = rel.get("prov:entity"), rel.get("prov:activity"), _time(rel.get("prov:time"))
            findings += _inside(source, "usage", entity, activity, when, intervals)
            born = [t for (_, t) in generations.get(entity, {}) if t is not None]
            if when is not None and born and when < min(born):
                findings.append(f"{source}: PROV-CONSTRAINTS generation-precedes-usage: {activity} used {entity} "
                                f"at {_text(when)}, before it was generated")
    for kind, (head, tail) in (("wasInformedBy", ("prov:informed", "prov:informant")),
                               ("wasDerivedFrom", ("prov:generatedEntity", "prov:usedEntity"))):
        edges: dict[str, set[str]] = {}
        for _, scope in scopes:
            for rel in _relations(scope, kind):
                if rel.get(head) and rel.get(tail):
                    edges.setdefault(rel[head], set()).add(rel[tail])
        for cycle in _cycles(edges):
            findings.append(f"{docs[0][0] if docs else ''}: PROV-CONSTRAINTS acyclic {kind}: "
                            + " -> ".join([*cycle, cycle[0]]))
    return findings


def _inside(source: str, event: str, entity: str | None, activity: str | None, when: float | None,
            intervals: dict[str, list[float | None]]) -> list[str]:
    """An event of an activity happens between its start and its end (when both are known)."""
    if when is None or activity not in intervals:
        return []
    start, end = intervals[activity]
    if start is not None and when < start:
        return [f"{source}: PROV-CONSTRAINTS {event}-within-activity: {event} of {entity} at {_text(when)} is "
                f"before {activity} starts ({_text(start)})"]
    if end is not None and when > end:
        return [f"{source}: PROV-CONSTRAINTS {event}-within-activity: {event} of {entity} at {_text(when)} is "
                f"after {activity} ends ({_text(end)})"]
    return []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a list of nodes) per strongly connected component that has one (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(_cycle_in(sorted(component), edges))
    return found


def _cycle_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """The shortest cycle through the component's first node (breadth first, inside the component)."""
    members, start = set(component), component[0]
    parent: dict[str, str | None] = {start: None}
    queue = [start]
    for node in queue:
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            if nxt in members and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return component


def _elements(scope: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for ident, attrs in scope.get(kind, {}).items():
        for part in attrs if isinstance(attrs, list) else [attrs]:
            yield ident, part


def _relations(scope: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    for rel in scope.get(kind, {}).values():
        yield from rel if isinstance(rel, list) else [rel]


def _time(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("$")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _text(t: float | None) -> str:
    from datetime import timezone

    return "?" if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()
