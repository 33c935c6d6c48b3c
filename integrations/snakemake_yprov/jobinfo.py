"""What a job is, read from the ``snakemake`` object of a ``script:`` (or wrapper) or from the local
names of a ``run:`` block, as plain values."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakemake_yprov.identity import job_key
from yprov_wf.recording.records import Scalar

_HIDDEN_RESOURCES = ("_cores", "_nodes")


def snakemake_version() -> str | None:
    """The installed Snakemake's version (the engine agent's), without importing Snakemake."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("snakemake")
    except PackageNotFoundError:
        return None


@dataclass(slots=True)
class JobInfo:
    """One Snakemake job as seen from inside its process."""

    rule: str
    inputs: list[str]
    outputs: list[str]
    logs: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    wildcards: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    resources: dict[str, Scalar] = field(default_factory=dict)
    jobid: int | None = None  # known in run: blocks only

    @property
    def key(self) -> str:
        return job_key(self.rule, self.outputs, self.inputs)

    def attributes(self) -> dict[str, Scalar]:
        """Engine attributes of the task activity."""
        attrs: dict[str, Scalar] = {
            "engine": "snakemake", "rule": self.rule, "jobKey": self.key,
            "wildcards": json.dumps(self.wildcards, sort_keys=True),
            "threads": self.threads, "resources": json.dumps(self.resources, sort_keys=True),
            "logFiles": json.dumps(self.logs),
        }
        if self.jobid is not None:
            attrs["snakemakeJobId"] = self.jobid
        return {k: v for k, v in attrs.items() if v is not None}


def from_snakemake(snakemake: Any) -> JobInfo:
    """From the ``snakemake`` object that Snakemake gives a ``script:`` or wrapper."""
    for attr in ("rule", "input", "output"):
        if not hasattr(snakemake, attr):
            raise TypeError(f"expected the snakemake object of a script: or wrapper job, got {type(snakemake).__name__} "
                            f"without .{attr}")
    return JobInfo(
        rule=str(snakemake.rule), inputs=_files(snakemake.input), outputs=_files(snakemake.output),
        logs=_files(getattr(snakemake, "log", [])), params=named_values(getattr(snakemake, "params", None)),
        wildcards={k: str(v) for k, v in named_values(getattr(snakemake, "wildcards", None)).items()},
        threads=getattr(snakemake, "threads", None), resources=_resources(getattr(snakemake, "resources", None)),
    )


def from_run_block(names: dict[str, Any]) -> JobInfo:
    """From the local names of a ``run:`` block (input, output, params, wildcards, rule, jobid…)."""
    if "rule" not in names or "output" not in names:
        raise TypeError("job() found no Snakemake job here: call it in a run: block or a script: file, "
                        "or pass the snakemake object")
    return JobInfo(
        rule=str(names["rule"]), inputs=_files(names.get("input", [])), outputs=_files(names["output"]),
        logs=_files(names.get("log", [])), params=named_values(names.get("params")),
        wildcards={k: str(v) for k, v in named_values(names.get("wildcards")).items()},
        threads=names.get("threads"), resources=_resources(names.get("resources")),
    )  # not names["jobid"]: the id in the job's own sub-process DAG (0), not Snakemake's


def from_caller(snakemake: Any, frame: types.FrameType | None) -> JobInfo:
    """From ``snakemake`` when it is the job object, else from the calling ``run:`` block or script."""
    if snakemake is not None and not isinstance(snakemake, types.ModuleType):
        return from_snakemake(snakemake)
    if frame is None:
        raise TypeError("job() needs the snakemake object outside a run: block")
    if "rule" in frame.f_locals and "output" in frame.f_locals:
        return from_run_block(dict(frame.f_locals))
    obj = frame.f_globals.get("snakemake")
    if obj is not None and not isinstance(obj, types.ModuleType):
        return from_snakemake(obj)
    return from_run_block(dict(frame.f_locals))  # raises the explanatory TypeError


def _files(io: Any) -> list[str]:
    if io is None:
        return []
    if isinstance(io, (str, Path)):
        return [str(io)]
    return [str(f) for f in io]


def named_values(nl: Any) -> dict[str, Any]:
    """A Snakemake Namedlist (params, wildcards) as a dict: named entries by name, positional ones
    (``params: "a", n=2``) by their index ("0")."""
    if nl is None:
        return {}
    if isinstance(nl, dict):
        return dict(nl)
    named = dict(nl.items()) if hasattr(nl, "items") else {}
    covered: set[int] = set()
    for start, end in (getattr(nl, "_names", None) or {}).values():
        covered.update(range(start, start + 1 if end is None else end))
    positional = {str(i): v for i, v in enumerate(nl) if i not in covered} if isinstance(nl, (list, tuple)) else {}
    if not covered and named:  # a mapping-like object without Snakemake's index
        positional = {}
    return {**positional, **named}


def _resources(nl: Any) -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    for k, v in named_values(nl).items():
        if k in _HIDDEN_RESOURCES or callable(v):
            continue
        out[k] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
    return out
