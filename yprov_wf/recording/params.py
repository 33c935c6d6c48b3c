"""Parameters: rendered once, immutable once logged (the same key with another value is an error)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from yprov_wf import describe
from yprov_wf.environment import redact_text
from yprov_wf.recording.records import ParamRecord
from yprov_wf.values import check_text, clean_text


def add_param(params: list[ParamRecord], key: str, value: Any, emit: Callable[[ParamRecord], None],
              context: str | None = None) -> None:
    """Render ``value`` and ``emit`` it, unless ``key`` already holds it; another value is a ValueError."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"param key must be a non-empty str, got {key!r}")
    check_text(key, "param key")
    rendered, type_name = describe.param_value(value)
    if isinstance(rendered, str):  # a repr or a user's text: URL credentials redacted, surrogates escaped
        rendered = clean_text(redact_text(rendered))
    for p in params:
        if p.key == key:
            if p.value == rendered and p.type == type_name:
                return
            raise ValueError(f"param {key!r} was already logged as {p.value!r}; cannot change it to {rendered!r}")
    emit(ParamRecord(key, rendered, type_name, context))


def param_records(params: Mapping[str, Any]) -> list[ParamRecord]:
    """Records for a mapping of parameters given when a scope opens."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of names to values, got {type(params).__name__}")
    out: list[ParamRecord] = []
    for key, value in params.items():
        add_param(out, key, value, out.append)
    return out
