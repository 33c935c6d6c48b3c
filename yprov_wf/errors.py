"""Warnings and errors that are specific to yprov-wf (bad input uses the built-in exceptions)."""

from __future__ import annotations

import warnings


class ProvenanceWarning(UserWarning):
    """Provenance recording degraded (unwritable folder, disk full, collector failure); training goes on."""


class NoActiveRunError(RuntimeError):
    """A ``log_*`` call was made with no ML run open in this context."""


def warn_degraded(message: str, stacklevel: int = 3) -> None:
    """Emit one provenance-side warning; callers make sure it happens once per cause."""
    warnings.warn(message, ProvenanceWarning, stacklevel=stacklevel)


class CompatibilityWarning(ProvenanceWarning):
    """A yProv4ML keyword or value that yprov-wf accepts but does not act on, or rewrites (see docs/parity.md)."""
