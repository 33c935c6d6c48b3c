"""What the yprov wrapper does: run the rule's unchanged Python script inside the job's task bundle."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

from snakemake_yprov.jobinfo import from_snakemake
from snakemake_yprov.jobscope import JobScope


def script_of(snakemake: Any) -> Path:
    """The user script named by the rule's ``params.script`` (absolute, or relative to the working dir)."""
    params = getattr(snakemake, "params", None)
    script = getattr(params, "script", None) if params is not None else None
    if not script:
        raise ValueError(f"rule {getattr(snakemake, 'rule', '?')!r} uses the yprov wrapper but has no "
                         "params.script (the Python script to run)")
    path = Path(str(script))
    if not path.is_file():
        raise FileNotFoundError(f"rule {snakemake.rule!r}: params.script {str(script)!r} is not a file")
    return path


def run_wrapped(snakemake: Any) -> None:
    """Run ``params.script`` as ``__main__`` with the same ``snakemake`` object, inside ``job(snakemake)``."""
    script = script_of(snakemake)
    info = from_snakemake(snakemake)
    info.params.pop("script", None)
    with JobScope(info) as task:
        if task is not None:
            task.set_attribute("script", str(script.resolve()))
        sys.argv = [str(script)]
        runpy.run_path(str(script), init_globals={"snakemake": snakemake}, run_name="__main__")
