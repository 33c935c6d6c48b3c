"""Comparing ML runs: the params that differ, final metrics side by side and the best run for a metric.

``compare`` is a pure function over ``RunSummary`` values; ``summaries`` builds them from records and
``format_table`` renders the result for a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from yprov_wf.recording.records import Scalar
from yprov_wf.viz.runs import RunView

MODES = ("min", "max")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a comparison needs of one run: a label, its params and the last value of each series."""

    label: str
    params: dict[str, Scalar]
    final: dict[str, float | None]


@dataclass(slots=True)
class Comparison:
    """Runs side by side. Lists in ``differing_params`` and ``metrics`` follow the order of ``runs``."""

    runs: list[str]
    differing_params: dict[str, list[Scalar]] = field(default_factory=dict)
    common_params: dict[str, Scalar] = field(default_factory=dict)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    metric: str | None = None
    mode: str = "min"
    best: str | None = None
    best_value: float | None = None


def summaries(views: Sequence[RunView]) -> list[RunSummary]:
    """One summary per run, labelled by run id."""
    return [RunSummary(v.label, v.params(), v.final_metrics()) for v in views]


def compare(runs: Sequence[RunSummary], metric: str | None = None, mode: str = "min") -> Comparison:
    """Compare runs; with ``metric`` (``key`` or ``key@context``) also pick the best run by its final
    value (lowest for ``mode="min"``, highest for ``"max"``; the first run wins a tie)."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    out = Comparison(runs=[r.label for r in runs], mode=mode)
    keys = _ordered(k for r in runs for k in r.params)
    missing = object()
    for key in keys:
        values = [r.params.get(key, missing) for r in runs]
        if all(v is not missing and _same(v, values[0]) for v in values):
            out.common_params[key] = values[0]  # type: ignore[assignment]
        else:
            out.differing_params[key] = [None if v is missing else v for v in values]  # type: ignore[misc]
    for name in _ordered(k for r in runs for k in r.final):
        out.metrics[name] = [r.final.get(name) for r in runs]
    if metric is not None:
        out.metric = resolve_metric(metric, list(out.metrics))
        best_i = None
        for i, value in enumerate(out.metrics[out.metric]):
            if value is None or not math.isfinite(value):
                continue
            if best_i is None or (value < out.metrics[out.metric][best_i] if mode == "min"
                                  else value > out.metrics[out.metric][best_i]):
                best_i = i
        if best_i is not None:
            out.best, out.best_value = out.runs[best_i], out.metrics[out.metric][best_i]
    return out


def resolve_metric(metric: str, names: Sequence[str]) -> str:
    """The series name ``metric`` refers to: an exact name, or a key logged in exactly one context."""
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a non-empty name, got {metric!r}")
    if metric in names:
        return metric
    matches = [n for n in names if n.partition("@")[0] == metric]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"metric {metric!r} is ambiguous: use one of {', '.join(matches)}")
    known = ", ".join(names) if names else "none"
    raise ValueError(f"no run has a metric {metric!r} (metrics: {known})")


def default_metric(names: Sequence[str]) -> tuple[str, str] | None:
    """A sensible metric to rank by when none is chosen: a validation loss, else any loss (min),
    else an accuracy (max); None when there is no such series."""
    for pick, mode in ((lambda n: "loss" in n and "valid" in n, "min"), (lambda n: "loss" in n, "min"),
                       (lambda n: "acc" in n, "max")):
        for name in names:
            if pick(name.lower()):
                return name, mode
    return None


def format_table(cmp: Comparison) -> str:
    """The comparison as plain-text tables: differing params, final metrics, and the best run."""
    lines: list[str] = [f"{len(cmp.runs)} run(s) compared"]
    header = ["", *cmp.runs]
    if cmp.differing_params:
        lines += _table("params that differ", header,
                        [[k, *(_cell(v) for v in vs)] for k, vs in cmp.differing_params.items()])
    elif cmp.runs:
        lines.append("params: the same in every run" if cmp.common_params else "params: none recorded")
    if cmp.metrics:
        rows = []
        for name, vs in cmp.metrics.items():
            mark = " *" if name == cmp.metric else ""
            rows.append([name + mark, *(_cell(v) for v in vs)])
        lines += _table("final metrics", header, rows)
    if cmp.metric is not None:
        lines.append("")
        if cmp.best is None:
            lines.append(f"best run by {cmp.metric} ({cmp.mode}): none (no finite value)")
        else:
            lines.append(f"best run by {cmp.metric} ({cmp.mode}): {cmp.best} ({cmp.metric}={_cell(cmp.best_value)})")
    return "\n".join(lines)


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return ["", title, fmt.format(*header).rstrip(), "  ".join("-" * w for w in widths),
            *(fmt.format(*r) for r in rows)]


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, float) and isinstance(b, float)
                                              and math.isnan(a) and math.isnan(b))


def _ordered(items) -> list[str]:
    return list(dict.fromkeys(items))
