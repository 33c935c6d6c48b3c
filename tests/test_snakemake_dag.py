"""Snakemake's own test workflows (tests/data/snakemake_workflows, each naming its source) run with
``--logger yprov``: every recorded wasInformedBy is a real dependency of Snakemake's DAG (read from
Snakemake's own job log of the same run) and every real dependency is recorded; one entity per generation,
even for empty (touch) outputs and identical copies; two runs in one store keep their lineage apart.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import NS, REPO, by_type, load, relations
from tests.test_snakemake import run_dirs, snakemake_cli
from yprov_wf.cli import main as cli
from yprov_wf.prov.reading import literal as value

WORKFLOWS = REPO / "tests" / "data" / "snakemake_workflows"
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FIELD = re.compile(r"^    (\w+): (.*)$")
_FLAG = re.compile(r" \([^()]*\)$")


def job_log_dag(log: Path) -> tuple[dict[int, str], set[tuple[int, int]]]:
    """Snakemake's own account of the run: the rule of each job id, and (consumer, producer) job pairs, a
    job depending on another when one of its input files is an output of the other."""
    jobs: dict[int, dict] = {}
    current: dict | None = None
    for line in log.read_text().splitlines():
        if m := _RULE.match(line):
            current = {"rule": m[1], "input": [], "output": []}
        elif current is not None and (m := _FIELD.match(line)):
            if m[1] in ("input", "output"):
                current[m[1]] = [_FLAG.sub("", f.strip()) for f in m[2].split(", ")]
            elif m[1] == "jobid":
                jobs[int(m[2])] = current
        elif not line.startswith("    "):
            current = None
    produced = {f: jobid for jobid, j in jobs.items() for f in j["output"]}
    deps = {(c, produced[f]) for c, j in jobs.items() for f in j["input"] if f in produced and produced[f] != c}
    return {jobid: j["rule"] for jobid, j in jobs.items()}, deps


def recorded_dag(run_dir: Path) -> tuple[dict[int, str], set[tuple[int, int]]]:
    wf = load(run_dir / "workflow.json")
    tasks = by_type(wf, "TaskRun")
    jobid = {i: int(value(a["ywf:snakemakeJobId"])) for i, a in tasks.items()}
    rules = {jobid[i]: value(a["ywf:rule"]) for i, a in tasks.items()}
    return rules, {(jobid[r["prov:informed"]], jobid[r["prov:informant"]]) for r in relations(wf, "wasInformedBy")}


def run_workflow(name: str, tmp_path: Path, *extra: str) -> Path:
    wd = tmp_path / name
    if not wd.exists():
        shutil.copytree(WORKFLOWS / name, wd)
    result = snakemake_cli(wd, "-c", "2", "--logger", "yprov", "--logger-yprov-save-dir", "prov",
                           "--logger-yprov-namespace", NS, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return wd


def newest_log(wd: Path) -> Path:
    return max((wd / ".snakemake" / "log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)


@pytest.mark.parametrize("name, jobs, dependencies", [
    ("many_jobs_small", 41, 40),  # every output an empty file: they all have one digest
    ("test05", 7, 10),  # cp makes identical copies; other.txt is empty
    ("filegraph", 6, 6),  # touch outputs, a script input no job makes
    ("touch", 2, 1),  # a touch() flagged output
])
def test_recorded_data_flow_is_snakemakes_dag(tmp_path, name, jobs, dependencies):
    wd = run_workflow(name, tmp_path)
    rules, real = job_log_dag(newest_log(wd))
    (root,) = run_dirs(wd / "prov")
    recorded_rules, recorded = recorded_dag(root)
    assert len(rules) == jobs and recorded_rules == rules
    assert len(real) == dependencies
    assert recorded == real  # no false edge, none missing
    wf = load(root / "workflow.json")
    # one generation per output entity; each used entity is a generation of this run or a file it found
    generated = [r["prov:entity"] for r in relations(wf, "wasGeneratedBy") if "/output/" in r["prov:entity"]]
    assert len(generated) == len(set(generated))
    files = by_type(wf, "DataFile")
    assert len({value(files[e]["prov:location"]) for e in generated}) == len(generated)
    assert cli(["validate", str(root)]) == 0


def test_two_runs_of_one_workflow_keep_their_lineage_apart(tmp_path, capsys):
    """Regenerated outputs (--forceall) in a second run are new entities; a store holding both runs gives
    the lineage of one run's output from that run only, through the shared content entity of empty files."""
    from yprov_wf import rdf

    wd = run_workflow("many_jobs_small", tmp_path)
    run_workflow("many_jobs_small", tmp_path, "--forceall")
    first, second = run_dirs(wd / "prov")
    ids = []
    for root in (first, second):
        wf = load(root / "workflow.json")
        ids.append({r["prov:entity"] for r in relations(wf, "wasGeneratedBy") if "/output/" in r["prov:entity"]})
        assert len(relations(wf, "wasInformedBy")) == 40
    assert len(ids[0]) == len(ids[1]) == 40 and not ids[0] & ids[1]
    store = tmp_path / "store"
    rdf.load(wd / "prov", store)
    second_wf = load(second / "workflow.json")
    out0 = next(e for e, a in by_type(second_wf, "DataFile").items()
                if value(a["prov:location"]) == str((wd / "0.out").resolve()))
    with rdf.open_target(store) as t:
        table = rdf.lineage(t, NS + out0.partition(":")[2])
    second_tasks = {NS + i.partition(":")[2] for i in by_type(second_wf, "TaskRun")}
    tasks = {r[2] for r in table.rows if r[1] in ("upstream task",) or r[1].startswith("generated by")}
    assert len(tasks) == 4 and tasks <= second_tasks  # rules 2, 3, 4, 5 of sample 0, in the second run only
