"""Contexts: the phase of an ML run a record belongs to (training, validation, evaluation, or custom)."""

from __future__ import annotations

import re
from enum import Enum
from typing import ClassVar

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


class Context(str):
    """A run phase. Instances are plain strings, so ``Context.TRAINING == "training"``.

    Custom contexts are created by calling the class: ``Context("finetuning")``.
    """

    TRAINING: ClassVar[Context]
    VALIDATION: ClassVar[Context]
    EVALUATION: ClassVar[Context]
    TESTING: ClassVar[Context]
    DATASETS: ClassVar[Context]  # yProv4ML 2.x: the context of datasets and of models
    MODELS: ClassVar[Context]

    __slots__ = ()

    def __new__(cls, name: str) -> Context:
        if isinstance(name, Context):
            return name
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"context {name!r} must be a name of letters, digits, '_', '.', '-' starting with a letter"
            )
        return super().__new__(cls, name.lower())

    def __repr__(self) -> str:
        return f"Context({str(self)!r})"


Context.TRAINING = Context("training")
Context.VALIDATION = Context("validation")
Context.EVALUATION = Context("evaluation")
Context.TESTING = Context("testing")
Context.DATASETS = Context("datasets")
Context.MODELS = Context("models")


def as_context(value: object) -> Context | None:
    """Normalise a user-given context (``None``, a string, a ``Context``, or a member of the user's own
    ``enum.Enum`` of contexts, as yProv4ML's docs show: its name)."""
    if value is None or type(value) is Context:
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        return Context(value)
    if isinstance(value, Enum):
        return Context(value.name)
    raise TypeError(f"context must be a str or yprov_wf.Context, got {type(value).__name__}")
