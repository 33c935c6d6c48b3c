"""Snakemake rule wrappers for yprov-wf: a job's task bundle from inside the job.

    # in a run: block or a script: file
    from snakemake_yprov import job
    with job(snakemake):
        yprov_wf.start_run(...) ...

    # or, for an unchanged script, the local wrapper:  params: script="train.py"  wrapper: WRAPPER

With ``snakemake --logger yprov`` (package ``snakemake_logger_plugin_yprov``) every job's bundle is a
member of one workflow collection; without it each wrapped job is a workflow run of its own.
"""

from pathlib import Path

from snakemake_yprov.identity import job_key
from snakemake_yprov.jobinfo import JobInfo
from snakemake_yprov.jobscope import JobScope, job

WRAPPER_DIR = Path(__file__).resolve().parent / "wrapper"
WRAPPER = f"file:{WRAPPER_DIR}"  # use as `wrapper: WRAPPER` with `params: script="your_script.py"`

__all__ = ["WRAPPER", "WRAPPER_DIR", "JobInfo", "JobScope", "job", "job_key"]
