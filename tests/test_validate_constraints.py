"""``yprov-wf validate`` checks PROV-CONSTRAINTS: a hand-made document breaking one constraint gives exactly
one finding naming it (and exit 1); the same document without the violation gives none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yprov_wf.cli import main
from yprov_wf.prov.validate import validate

T0, T1, T2, T3 = (f"2026-01-01T00:00:0{i}+00:00" for i in range(4))


def _activity(start: str = T0, end: str = T3) -> dict:
    return {"prov:startTime": start, "prov:endTime": end}


def _doc(**records: dict) -> dict:
    return {"prefix": {"ex": "https://example.org/"}, **records}


CLEAN = _doc(
    activity={"ex:a": _activity(), "ex:b": _activity()},
    entity={"ex:e": {}, "ex:f": {}},
    wasGeneratedBy={"_:g1": {"prov:entity": "ex:e", "prov:activity": "ex:a", "prov:time": T1}},
    used={"_:u1": {"prov:activity": "ex:b", "prov:entity": "ex:e", "prov:time": T2}},
    wasInformedBy={"_:i1": {"prov:informed": "ex:b", "prov:informant": "ex:a"}},
    wasDerivedFrom={"_:d1": {"prov:generatedEntity": "ex:f", "prov:usedEntity": "ex:e"}},
)


def _broken(change: dict) -> dict:
    doc = json.loads(json.dumps(CLEAN))
    for kind, records in change.items():
        doc.setdefault(kind, {}).update(records)
    return doc


VIOLATIONS = {
    "unique-generation": {"activity": {"ex:c": _activity()},
                          "wasGeneratedBy": {"_:g2": {"prov:entity": "ex:e", "prov:activity": "ex:c",
                                                      "prov:time": T1}}},
    "acyclic wasInformedBy": {"wasInformedBy": {"_:i2": {"prov:informed": "ex:a", "prov:informant": "ex:b"}}},
    "acyclic wasDerivedFrom": {"wasDerivedFrom": {"_:d2": {"prov:generatedEntity": "ex:e",
                                                           "prov:usedEntity": "ex:f"}}},
    "usage-within-activity": {"activity": {"ex:b": _activity(T2, T3)},
                              "used": {"_:u1": {"prov:activity": "ex:b", "prov:entity": "ex:e", "prov:time": T1}}},
    "generation-within-activity": {"activity": {"ex:a": _activity(T0, T1)},
                                   "wasGeneratedBy": {"_:g1": {"prov:entity": "ex:e", "prov:activity": "ex:a",
                                                               "prov:time": T2}},
                                   "used": {"_:u1": {"prov:activity": "ex:b", "prov:entity": "ex:e",
                                                     "prov:time": T3}}},
    "start-precedes-end": {"activity": {"ex:b": _activity(T3, T2)},
                           "used": {"_:u1": {"prov:activity": "ex:b", "prov:entity": "ex:e"}}},
    "generation-precedes-usage": {"used": {"_:u1": {"prov:activity": "ex:b", "prov:entity": "ex:e",
                                                    "prov:time": T0}}},
}


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_a_clean_document_has_no_finding(tmp_path):
    assert validate(_write(tmp_path / "clean.json", CLEAN)) == []


@pytest.mark.parametrize("constraint", sorted(VIOLATIONS))
def test_each_violation_is_one_finding_naming_its_constraint(tmp_path, capsys, constraint):
    path = _write(tmp_path / "broken.json", _broken(VIOLATIONS[constraint]))
    findings = validate(path)
    assert len(findings) == 1, findings
    assert f"PROV-CONSTRAINTS {constraint}" in findings[0] and findings[0].startswith(str(path))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert sum("PROV-CONSTRAINTS" in line for line in out) == 1


def test_a_cycle_is_named_by_its_members(tmp_path):
    (finding,) = validate(_write(tmp_path / "cycle.json", _broken(VIOLATIONS["acyclic wasInformedBy"])))
    assert finding.endswith("ex:a -> ex:b -> ex:a")


def test_generations_are_counted_across_the_documents_of_one_run(tmp_path):
    """A task bundle and workflow.json that disagree on who generated an entity: one finding for the run."""
    root = tmp_path / "prov" / "wf" / "run-1"
    _write(root / "workflow.json", CLEAN)
    other = _doc(activity={"ex:c": _activity()}, entity={"ex:e": {}},
                 wasGeneratedBy={"_:g": {"prov:entity": "ex:e", "prov:activity": "ex:c", "prov:time": T1}})
    _write(root / "tasks" / "c.json", {"prefix": {"ex": "https://example.org/"}, "bundle": {"ex:c-bundle": other}})
    findings = validate(root)
    assert len(findings) == 1 and "unique-generation: ex:e is generated 2 times" in findings[0], findings
