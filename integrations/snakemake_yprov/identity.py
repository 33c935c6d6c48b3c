"""Which task bundle a Snakemake job gets: a key both the job process and the logger plugin compute
from what each of them can see (the rule and its files; the ``snakemake`` object has no job id)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from yprov_wf.layout import safe_name


def job_key(rule: str, outputs: Iterable[str], inputs: Iterable[str] = ()) -> str:
    """12 hex digits naming one job of a workflow run: its rule and output files (or, for a job with
    no outputs such as a target rule, its input files). Output files are unique per job in a DAG."""
    outs = sorted(str(f) for f in outputs)
    files = outs if outs else sorted("<" + str(f) for f in inputs)
    h = hashlib.sha256("\0".join([rule, *files]).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:12]


def task_prefix(rule: str, key: str) -> str:
    """The start of every task run id of this job (one id per attempt): ``<rule>-<key>-``."""
    return f"{safe_name(rule, 'rule name')[:40]}-{key}-"


def new_task_id(rule: str, key: str) -> str:
    """A fresh task run id for one attempt of the job."""
    return task_prefix(rule, key) + secrets.token_hex(4)
