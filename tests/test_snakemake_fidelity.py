"""``--logger yprov`` on Snakemake's own test workflows (tests/data/snakemake_workflows/sm_*, copied from
the Snakemake repository, see each SOURCE): the outputs are byte-identical with and without the plugin,
and the provenance tells what happened — temp() files hashed before Snakemake removes them and recorded as
temporary, pipe() as pipes with no digest, group-job members under cluster-generic keep their inputs,
retries (shell and run: jobs, rule-level and --retries) are one bundle per attempt with the workflow
completed, shadow outputs at their real place, directory() outputs with Snakemake's timestamp — and
``yprov-wf validate`` passes on each.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import NS, REPO, by_type, load, relations
from tests.test_snakemake import run_dirs, snakemake_cli, tasks_of
from yprov_wf.prov.reading import literal as value
from yprov_wf.prov.validate import validate

DATA = REPO / "tests" / "data" / "snakemake_workflows"
# files whose bytes differ from run to run whatever the plugin does (timings, dates)
VOLATILE = re.compile(r"(^|/)(qsub\.log|benchmark[^/]*\.txt)$")
# Snakemake's cluster-generic executor with the workflow's ./qsub (Snakemake's own, see sm_group_temp)
CLUSTER = ("--executor", "cluster-generic", "--cluster-generic-submit-cmd", "./qsub", "-j", "2", "--latency-wait", "5",
           "--seconds-between-status-checks", "1")


def outputs(workdir: Path) -> dict[str, bytes]:
    """Every file the workflow left, but Snakemake's and the plugin's own folders."""
    out = {}
    for p in sorted(workdir.rglob("*")):
        rel = p.relative_to(workdir).as_posix()
        if rel.split("/")[0] in (".snakemake", "prov") or not p.is_file() or VOLATILE.search(rel):
            continue
        out[rel] = p.read_bytes()
    return out


def run_both(name: str, tmp_path: Path, *args: str) -> tuple[Path, Path, str]:
    """The workflow run twice, without and with the plugin, in two copies; the run folder, its workdir and
    Snakemake's log. Asserts both succeed with identical outputs (and Snakemake's expected results)."""
    plain, logged = tmp_path / "plain", tmp_path / "logged"
    for d in (plain, logged):
        shutil.copytree(DATA / name, d, symlinks=True)
    first = snakemake_cli(plain, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    second = snakemake_cli(logged, *args, "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert second.returncode == 0, second.stderr[-3000:]
    assert outputs(plain) == outputs(logged)
    expected = DATA / name / "expected-results"
    for f in (p for p in expected.rglob("*") if p.is_file()):
        if (plain / f.relative_to(expected)).exists():  # (test_directory's expected timestamps predate 9.27)
            assert (logged / f.relative_to(expected)).read_bytes() == f.read_bytes(), f
    (root,) = run_dirs(logged / "prov")
    assert validate(root) == []  # temp()/pipe() gone by design, directories with their timestamp
    return root, logged, second.stderr


def files_of(task: dict, kind: str) -> dict[str, dict]:
    """The DataFile entities a task used ('used') or generated ('wasGeneratedBy'), by location."""
    bundle = task["_bundle"]
    ids = {r["prov:entity"] for r in relations(bundle, kind) if r["prov:activity"] == task["_id"]}
    return {value(a["ywf:path"]): a for i, a in by_type(bundle, "DataFile").items() if i in ids}


def informed(root: Path) -> set[tuple[str, str]]:
    return {(r["prov:informed"], r["prov:informant"]) for r in relations(load(root / "workflow.json"), "wasInformedBy")}


def test_snakemakes_temp_workflow_validates_with_its_temporary_files_gone(tmp_path):
    root, work, _ = run_both("sm_temp", tmp_path, "-c", "1", "test.realigned.bam")
    tasks = tasks_of(root)
    assert {k: len(v) for k, v in tasks.items()} == {"indexbam": 1, "realignertargetcreator": 1, "indelrealigner": 1}
    assert not (work / "test.intervals").exists() and not (work / "test.bam.bai").exists()
    for producer in ("indexbam", "realignertargetcreator"):  # not lost when Snakemake removed them
        (task,) = tasks[producer]
        assert files_of(task, "wasGeneratedBy")
    # (every file here is an empty `touch`: one entity per digest until identity is per generation, so
    # which file's attributes it carries is not asserted; the next test has distinct contents)


TEMPS = """
N = range(30)
rule all:
    input: expand("use{i}.txt", i=N)
rule make:
    output: temp("tmp{i}.txt")
    shell: "echo made {wildcards.i} > {output}"
rule use:
    input: "tmp{i}.txt"
    output: "use{i}.txt"
    shell: "cat {input} > {output}; echo used >> {output}"
"""


@pytest.mark.parametrize("quiet", [[], ["--quiet", "progress"]], ids=["progress", "quiet"])
def test_no_temp_file_is_lost_and_each_is_recorded_as_temporary(tmp_path, quiet):
    """60 jobs, 30 temp() files that Snakemake removes as soon as their consumer finished; with --quiet
    progress Snakemake logs no JOB_FINISHED and the producers are closed at the end."""
    (tmp_path / "Snakefile").write_text(TEMPS)
    result = snakemake_cli(tmp_path, "-c", "2", *quiet, "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(tmp_path.glob("tmp*.txt"))
    (root,) = run_dirs(tmp_path / "prov")
    assert validate(root) == []
    tasks = tasks_of(root)
    assert all(value(t["ywf:status"]) == "completed" for ts in tasks.values() for t in ts)
    made = {loc: a for t in tasks["make"] for loc, a in files_of(t, "wasGeneratedBy").items()}
    used = {loc: a for t in tasks["use"] for loc, a in files_of(t, "used").items()}
    expected = {str(tmp_path / f"tmp{i}.txt") for i in range(30)}
    assert set(made) == set(used) == expected
    for loc in expected:
        assert value(made[loc]["ywf:fileKind"]) == value(used[loc]["ywf:fileKind"]) == "temporary"
        digest = hashlib.sha256(f"made {loc[len(str(tmp_path)) + 4:-4]}\n".encode()).hexdigest()
        assert value(made[loc]["ywf:sha256"]) == value(used[loc]["ywf:sha256"]) == digest
    assert len(informed(root)) == 30 + 30  # each use from its make; all from the 30 uses
    # only what was recorded as temporary may be gone: a removed regular output is still a finding
    (tmp_path / "use0.txt").unlink()
    findings = validate(root)
    assert findings and all("use0.txt is missing" in f for f in findings), findings


def test_pipes_are_recorded_as_pipes_with_no_content_digest(tmp_path):
    root, work, _ = run_both("sm_pipes", tmp_path, "-c", "4")
    tasks = tasks_of(root)
    assert {k: len(v) for k, v in tasks.items()} == {"a": 2, "b": 2, "all": 1}
    for b in tasks["b"]:
        (pipe,) = files_of(b, "used").values()
        assert value(pipe["ywf:fileKind"]) == "pipe" and "ywf:sha256" not in pipe  # not the empty digest
        (producer,) = [a for a in tasks["a"] if set(files_of(a, "wasGeneratedBy")) == set(files_of(b, "used"))]
        assert (b["_id"], producer["_id"]) in informed(root)


def test_group_job_members_under_cluster_generic_keep_their_inputs(tmp_path):
    root, work, _ = run_both("sm_group_temp", tmp_path, *CLUSTER)
    tasks = tasks_of(root)
    assert {k: len(v) for k, v in tasks.items()} == {"a": 1, "b": 1, "c": 1, "all": 1}
    (b,) = tasks["b"]
    (c,) = tasks["c"]
    # a.txt is made and removed inside the group job's own process: recorded as a temporary file never seen
    (a_txt,) = files_of(b, "used").values()
    assert value(a_txt["ywf:fileKind"]) == "temporary" and value(a_txt["ywf:path"]) == str(work / "a.txt")
    # b.txt did not exist when the group was submitted: hashed when the group finished
    (b_txt,) = files_of(c, "used").values()
    assert value(b_txt["ywf:sha256"]) == value(files_of(b, "wasGeneratedBy")[str(work / "b.txt")]["ywf:sha256"])
    assert {(b["_id"], tasks["a"][0]["_id"]), (c["_id"], b["_id"])} <= informed(root)


def attempts_of(root: Path, rule: str) -> list[tuple[int, str]]:
    return [(value(t["ywf:attempt"]), value(t["ywf:status"]))
            for t in sorted(tasks_of(root)[rule], key=lambda t: value(t["ywf:attempt"]))]


def workflow_status(root: Path) -> str:
    (wf,) = by_type(load(root / "workflow.json"), "WorkflowRun").values()
    return value(wf["ywf:status"])


def test_snakemakes_run_block_retries_are_one_bundle_per_attempt(tmp_path):
    """A run: job's rule-level ``retries:`` happen inside the job's own ``snakemake --mode subprocess``
    process (Snakemake reports one job, finished): that process reports each failed attempt to the plugin."""
    root, work, _ = run_both("sm_retries", tmp_path, "-c", "1")
    assert attempts_of(root, "a") == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert workflow_status(root) == "completed"
    assert all("not enough attempts" in value(t["ywf:error"]) for t in tasks_of(root)["a"] if "ywf:error" in t)
    assert not (work / ".snakemake" / "yprov" / "attempts").exists()  # the reports are removed at the end


# a run: job failing while a counter says attempt < FAILURES + 1; the counter and the log say which attempt ran
RUN_RETRIED = """
rule all:
    input: "retry.txt"
rule retry:
    output: "retry.txt"
    log: "retry.log"
    RETRIES
    run:
        import os
        n = int(open("count").read()) if os.path.exists("count") else 0
        open("count", "w").write(str(n + 1))
        open(log[0], "w").write(f"attempt {n + 1}\\n")
        if n < FAILURES:
            raise ValueError(f"attempt {n + 1} fails")
        open(output[0], "w").write("ok\\n")
"""


def run_retried(tmp_path: Path, retries: str, failures: int, *args: str) -> tuple[Path, Path, int]:
    """RUN_RETRIED without and with the plugin: the run folder, its workdir and Snakemake's exit status;
    the outputs (counter and log included) byte-identical."""
    text = RUN_RETRIED.replace("RETRIES", retries).replace("FAILURES", str(failures))
    codes = []
    for d in (tmp_path / "plain", tmp_path / "logged"):
        d.mkdir()
        (d / "Snakefile").write_text(text)
        extra = ("--logger", "yprov", "--logger-yprov-namespace", NS) if d.name == "logged" else ()
        codes.append(snakemake_cli(d, *args, *extra).returncode)
    assert codes[0] == codes[1]
    assert outputs(tmp_path / "plain") == outputs(tmp_path / "logged")
    (root,) = run_dirs(tmp_path / "logged" / "prov")
    assert validate(root) == []
    return root, tmp_path / "logged", codes[1]


@pytest.mark.parametrize(("retries", "args"), [("retries: 2", ("-c", "1")), ("retries: 2", ("-c", "2")),
                                               ("", ("-c", "2", "--retries", "2"))],
                         ids=["rule-c1", "rule-c2", "cli-c2"])
def test_run_block_retries_are_one_bundle_per_attempt_each_with_its_error_and_log(tmp_path, retries, args):
    root, work, code = run_retried(tmp_path, retries, 2, *args)
    assert code == 0 and (work / "count").read_text() == "3"
    assert attempts_of(root, "retry") == [(1, "failed"), (2, "failed"), (3, "completed")]
    attempts = sorted(tasks_of(root)["retry"], key=lambda t: value(t["ywf:attempt"]))
    for n, t in enumerate(attempts[:2], 1):
        assert value(t["ywf:logTail"]).splitlines()[-1] == f"attempt {n}"  # as that attempt left it
        error = value(t["ywf:error"])
        assert error.startswith("Error in rule retry") and f"attempt {n} fails" in error
        assert files_of(t, "wasGeneratedBy") == {}
    assert "ywf:logTail" not in attempts[2] and "ywf:error" not in attempts[2]
    assert set(files_of(attempts[2], "wasGeneratedBy")) == {str(work / "retry.txt")}
    starts = [value(t["prov:startTime"]) for t in attempts]
    assert starts == sorted(starts) and len(set(starts)) == 3
    assert len({value(t["ywf:jobKey"]) for t in attempts}) == 1
    assert workflow_status(root) == "completed"


def test_run_block_retries_that_all_fail_are_each_recorded_as_snakemake_ran_them(tmp_path):
    """``retries: 1`` on a run: job that always fails: its process runs it twice, then the main process
    restarts it (attempt 2) and its new process runs it once more: three runs, as the counter says."""
    root, work, code = run_retried(tmp_path, "retries: 1", 99, "-c", "1")
    runs = int((work / "count").read_text())
    assert code != 0 and runs == 3
    assert attempts_of(root, "retry") == [(n, "failed") for n in range(1, runs + 1)]
    tails = [value(t["ywf:logTail"]).splitlines()[-1]
             for t in sorted(tasks_of(root)["retry"], key=lambda t: value(t["ywf:attempt"]))]
    assert tails == [f"attempt {n}" for n in range(1, runs + 1)]
    assert workflow_status(root) == "failed"


WRAPPED_RETRIED = """
rule retry:
    output: "retry.txt"
    log: "retry.log"
    retries: 2
    run:
        import os
        from snakemake_yprov import job
        with job():
            n = int(open("count").read()) if os.path.exists("count") else 0
            open("count", "w").write(str(n + 1))
            open(log[0], "w").write(f"attempt {n + 1}\\n")
            if n < 2:
                raise ValueError(f"attempt {n + 1} fails")
            open(output[0], "w").write("ok\\n")
"""


def test_wrapped_run_block_retries_keep_the_jobs_own_bundles_only(tmp_path):
    """A wrapped job writes a bundle per attempt itself: the attempts its process reports add none."""
    (tmp_path / "Snakefile").write_text(WRAPPED_RETRIED)
    result = snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    assert attempts_of(root, "retry") == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert {value(t["ywf:recordedBy"]) for t in tasks_of(root)["retry"]} == {"job"}
    assert workflow_status(root) == "completed" and validate(root) == []


RETRIED = """
rule all:
    input: "retry.txt"
rule retry:
    output: "retry.txt"
    log: "retry.log"
    retries: 2
    shell: "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; echo attempt $((n+1)) > {log}; "
           "if [ $n -lt 2 ]; then exit 1; fi; echo ok > {output}"
"""


# under cluster-generic, a job runs in a `snakemake --mode remote` process of its own, which applies the rule's
# retries: itself, as a run: job's process does (the qsub script is Snakemake's, from sm_group_temp)
@pytest.mark.parametrize("args", [("-c", "1"), CLUSTER], ids=["local", "cluster-generic"])
def test_retried_jobs_are_one_bundle_per_attempt_each_with_its_own_log_and_the_workflow_completed(tmp_path, args):
    (tmp_path / "Snakefile").write_text(RETRIED)
    shutil.copy(DATA / "sm_group_temp" / "qsub", tmp_path / "qsub")
    result = snakemake_cli(tmp_path, *args, "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    attempts = sorted(tasks_of(root)["retry"], key=lambda t: value(t["ywf:attempt"]))
    assert [(value(t["ywf:attempt"]), value(t["ywf:status"])) for t in attempts] == [
        (1, "failed"), (2, "failed"), (3, "completed")]
    # each failed attempt's log tail as it was then, not as the next attempt rewrote it
    assert [value(t["ywf:logTail"]).splitlines()[-1] for t in attempts[:2]] == ["attempt 1", "attempt 2"]
    (wf,) = by_type(load(root / "workflow.json"), "WorkflowRun").values()
    assert value(wf["ywf:status"]) == "completed" and "ywf:error" not in wf
    assert validate(root) == []


def test_shadow_outputs_are_recorded_where_snakemake_puts_them(tmp_path):
    root, work, _ = run_both("sm_shadow", tmp_path, "-c", "1")
    locations = [loc for ts in tasks_of(root).values() for t in ts
                 for loc in (*files_of(t, "used"), *files_of(t, "wasGeneratedBy"))]
    assert str(work / "simple_minimal.out") in locations
    assert not [loc for loc in locations if "/.snakemake/shadow/" in loc]


def test_directory_outputs_are_hashed_with_snakemakes_timestamp(tmp_path):
    root, work, _ = run_both("sm_directory", tmp_path, "-c", "1", "downstream", "symlinked_input",
                             "child_to_input", "not_child_to_other")
    (normal,) = tasks_of(root)["normal"]
    assert str(work / "some" / "dir") in files_of(normal, "wasGeneratedBy")  # and validate() agreed on its digest


def test_checkpoint_jobs_are_all_recorded(tmp_path):
    root, _, _ = run_both("sm_checkpoints", tmp_path, "-c", "1")
    counts = {k: len(v) for k, v in tasks_of(root).items()}
    assert counts == {"somestep": 2, "intermediate": 1, "alt_intermediate": 1, "aggregate": 2, "all": 1}


# -- wrapped jobs, params, settings ------------------------------------------------------------------------

WRAPPED = """
rule all:
    input: "pos.txt", "wr.txt", "ws.txt"

rule pos:
    output: "pos.txt"
    params: "first", n=2
    shell: "echo {params[0]} {params.n} > {output}"

rule wrapped_run:
    output: "wr.txt"
    params: "p0", k=3
    run:
        from snakemake_yprov import job
        with job():
            open(output[0], "w").write("wr\\n")

rule wrapped_shadow:
    output: "ws.txt", directory("wsd")
    shadow: "minimal"
    run:
        import os
        from snakemake_yprov import job
        with job():
            open(output[0], "w").write("ws\\n")
            os.makedirs(output[1])
            open(output[1] + "/f", "w").write("f\\n")
"""


def params_of(task: dict) -> dict[str, object]:
    return {value(a["ywf:key"]): value(a["prov:value"]) for a in by_type(task["_bundle"], "Parameter").values()}


def test_wrapped_jobs_record_snakemakes_job_id_shadow_outputs_and_directories(tmp_path):
    (tmp_path / "Snakefile").write_text(WRAPPED)
    result = snakemake_cli(tmp_path, "-c", "2", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    assert validate(root) == []  # the wrapped directory() output was hashed with its .snakemake_timestamp
    ids = dict(re.findall(r"rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)", result.stderr))
    tasks = tasks_of(root)
    for rule in ("wrapped_run", "wrapped_shadow"):
        (task,) = tasks[rule]
        assert value(task["ywf:recordedBy"]) == "job"
        assert value(task["ywf:snakemakeJobId"]) == int(ids[rule]) != 0
    (shadowed,) = tasks["wrapped_shadow"]
    assert set(files_of(shadowed, "wasGeneratedBy")) == {str(tmp_path / "ws.txt"), str(tmp_path / "wsd")}
    assert params_of(tasks["pos"][0]) == {"0": "first", "n": 2}  # positional params: by position
    assert params_of(tasks["wrapped_run"][0]) == {"0": "p0", "k": 3}
    assert not (tmp_path / ".snakemake" / "yprov" / "jobids.jsonl").exists()


def test_an_invocation_with_nothing_to_do_records_nothing(tmp_path):
    (tmp_path / "Snakefile").write_text('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n')
    assert snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", NS).returncode == 0
    again = snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert again.returncode == 0 and "Nothing to be done" in again.stderr
    assert len(run_dirs(tmp_path / "prov")) == 1  # Snakemake did nothing: no empty "completed" run


def test_a_file_iri_namespace_is_accepted_and_a_bad_env_namespace_is_named(tmp_path):
    (tmp_path / "Snakefile").write_text('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n')
    ok = snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", "file:///tmp/ns/")
    assert ok.returncode == 0, ok.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    assert load(root / "workflow.json")["prefix"]["user"] == "file:///tmp/ns/"
    bad = snakemake_cli(tmp_path, "-c", "1", "--forceall", "--logger", "yprov", env={"YPROV_WF_NAMESPACE": "not an iri"})
    assert bad.returncode != 0 and "$YPROV_WF_NAMESPACE" in bad.stderr and "--logger-yprov-namespace" not in bad.stderr


def test_wrapped_jobs_write_nowhere_when_the_plugins_save_dir_is_unusable(tmp_path):
    (tmp_path / "Snakefile").write_text(WRAPPED)
    (tmp_path / "blocked").write_text("a file where the folder should be")
    result = snakemake_cli(tmp_path, "-c", "2", "wr.txt", "--logger", "yprov", "--logger-yprov-save-dir", "blocked",
                           "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "wr.txt").read_text() == "wr\n"
    assert not (tmp_path / "prov").exists()  # no standalone run in ./prov
    assert (tmp_path / "blocked").read_text() == "a file where the folder should be"
    assert os.environ.get("YPROV_SNAKEMAKE_LOGGER") is None
