"""The Snakemake integration with real Snakemake: the logger plugin (CLI and Python API), wrapped jobs
(run:, script:, the local wrapper), -c 2 with wildcards, a failing job and its rerun, cluster-generic
submission, invalid settings and a provenance folder that cannot be written.

Snakemake jobs that run Python cost seconds each, so each workflow runs once (module fixtures) and
several tests read what it wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.tests import TestLogHandlerBase
from snakemake_logger_plugin_yprov import LogHandler, LogHandlerSettings
from snakemake_yprov import WRAPPER, job_key

from tests.conftest import NS, REPO, bundle_of, by_type, load, relations
from yprov_wf.prov.reading import literal as value

RUN_DIR_ENV = "YPROV_WF_RUN_DIR"


def snakemake_cli(workdir: Path, *args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("YPROV_WF_")}
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "integrations")])
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(workdir), *args], cwd=workdir,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def run_dirs(save_dir: Path) -> list[Path]:
    return sorted((p for p in save_dir.glob("*/*") if p.is_dir()), key=lambda p: p.name)


def tasks_of(run_dir: Path) -> dict[str, list[dict]]:
    """Task bundles by rule name: each the TaskRun activity's attributes plus '_bundle' and '_file'."""
    out: dict[str, list[dict]] = {}
    for f in sorted((run_dir / "tasks").glob("*.json")):
        bundle = bundle_of(f)
        ((ident, attrs),) = by_type(bundle, "TaskRun").items()
        out.setdefault(value(attrs["ywf:name"]), []).append({**attrs, "_id": ident, "_bundle": bundle, "_file": f})
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_digests(bundle: dict, kind: str, activity: str) -> set[str]:
    """sha256 of the DataFile entities the activity used ('used') or generated ('wasGeneratedBy')."""
    files = by_type(bundle, "DataFile")
    ids = {r["prov:entity"] for r in relations(bundle, kind) if r["prov:activity"] == activity}
    return {value(files[i]["ywf:sha256"]) for i in ids if i in files}


# -- one workflow, CLI, -c 2: shell, run: with wildcards, script:, the wrapper ------------------------------

SNAKEFILE = """
from snakemake_yprov import WRAPPER, job
import yprov_wf as yp

NS = "{ns}"
SEEDS = [1, 2]

rule all:
    input: "summary.txt"

rule prepare:
    output: "data.txt"
    params: n=10
    shell: "seq 1 {{params.n}} > {{output}}"

rule train:
    input: "data.txt"
    output: "model_{{seed}}.txt"
    params: epochs=2
    threads: 1
    resources: mem_mb=100
    run:
        with job(snakemake) as task:
            with yp.start_run(NS, "train"):
                yp.log_param("seed", int(wildcards.seed))
                for step in range(params.epochs):
                    yp.log_metric("loss", 1.0 / (step + 1 + int(wildcards.seed)), context=yp.Context.TRAINING, step=step)
            with open(output[0], "w") as f:
                f.write(f"model {{wildcards.seed}}\\n")

rule evaluate:
    input: expand("model_{{seed}}.txt", seed=SEEDS)
    output: "scores.txt"
    script: "scripts/evaluate.py"

rule report:
    input: "data.txt"
    output: "report.txt"
    params: script="scripts/report.py", title="digits"
    wrapper: WRAPPER

rule summarise:
    input: "scores.txt", "report.txt"
    output: "summary.txt"
    shell: "cat {{input}} > {{output}}"
"""

EVALUATE = """
import yprov_wf as yp
from snakemake_yprov import job

with job(snakemake):
    with yp.start_run("{ns}", "evaluate"):
        yp.log_metric("accuracy", 0.9, context=yp.Context.EVALUATION)
    with open(snakemake.output[0], "w") as f:
        f.write("0.9\\n")
"""

REPORT = """
# an unchanged user script: it knows nothing of the wrapper
import yprov_wf as yp

with yp.start_run("{ns}", "report"):
    yp.log_param("title", snakemake.params.title)
with open(snakemake.output[0], "w") as f:
    f.write(snakemake.params.title + "\\n")
"""


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    wd = tmp_path_factory.mktemp("smk_cli")
    (wd / "scripts").mkdir()
    (wd / "Snakefile").write_text(SNAKEFILE.format(ns=NS))
    (wd / "scripts" / "evaluate.py").write_text(EVALUATE.format(ns=NS))
    (wd / "scripts" / "report.py").write_text(REPORT.format(ns=NS))
    result = snakemake_cli(wd, "-c", "2", "--logger", "yprov", "--logger-yprov-save-dir", "prov",
                           "--logger-yprov-namespace", NS, "--logger-yprov-workflow-name", "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    return wd, result


def test_cli_run_is_one_workflow_with_one_bundle_per_job(cli_run):
    wd, _ = cli_run
    (root,) = run_dirs(wd / "prov")
    assert root.parent.name == "demo"
    tasks = tasks_of(root)
    assert {k: len(v) for k, v in tasks.items()} == {
        "prepare": 1, "train": 2, "evaluate": 1, "report": 1, "summarise": 1, "all": 1}
    wf = load(root / "workflow.json")
    ((wf_id, wf_attrs),) = by_type(wf, "WorkflowRun").items()
    assert value(wf_attrs["ywf:status"]) == "completed" and value(wf_attrs["ywf:engine"]) == "snakemake"
    assert len(value(wf_attrs["ywf:snakemakeWorkflowId"])) == 36
    (coll,) = by_type(wf, "TaskCollection")
    members = {r["prov:entity"] for r in relations(wf, "hadMember") if r["prov:collection"] == coll}
    assert members == {f"user:task/{t['_file'].stem}/bundle" for ts in tasks.values() for t in ts}
    started = {r["prov:activity"]: r.get("prov:starter") for r in relations(wf, "wasStartedBy")}
    assert all(started[t["_id"]] == wf_id for ts in tasks.values() for t in ts)
    assert not (root / "journal").exists()
    validate = subprocess.run([sys.executable, "-m", "yprov_wf.cli", "validate", str(root)], capture_output=True,
                              text=True)
    assert validate.returncode == 0, validate.stdout


def test_wrapped_jobs_own_their_bundle_and_nest_the_ml_run(cli_run):
    wd, _ = cli_run
    tasks = tasks_of(run_dirs(wd / "prov")[0])
    recorded_by = {name: {value(t["ywf:recordedBy"]) for t in ts} for name, ts in tasks.items()}
    assert recorded_by == {"prepare": {"logger"}, "train": {"job"}, "evaluate": {"job"}, "report": {"job"},
                           "summarise": {"logger"}, "all": {"logger"}}
    for name, experiment in (("train", "train"), ("evaluate", "evaluate"), ("report", "report")):
        for t in tasks[name]:
            (run,) = by_type(t["_bundle"], "MLRun").values()
            assert value(run["ywf:experiment"]) == experiment
    seeds = sorted(json.loads(value(t["ywf:wildcards"]))["seed"] for t in tasks["train"])
    assert seeds == ["1", "2"]
    for t in tasks["train"]:
        series = by_type(t["_bundle"], "MetricSeries")
        (loss,) = series.values()
        assert value(loss["ywf:count"]) == 2
        assert json.loads(value(t["ywf:resources"]))["mem_mb"] == 100
    (report,) = tasks["report"]
    assert value(report["ywf:script"]).endswith("scripts/report.py")
    params = {value(p["ywf:key"]): value(p["prov:value"]) for p in by_type(report["_bundle"], "Parameter").values()}
    assert params == {"title": "digits"}  # the task's params.title and the run's log_param


def test_logger_records_files_commands_and_the_data_flow(cli_run):
    wd, _ = cli_run
    root = run_dirs(wd / "prov")[0]
    tasks = tasks_of(root)
    (prep,) = tasks["prepare"]
    assert value(prep["ywf:shellCommand"]) == "seq 1 10 > data.txt"
    params = {value(p["ywf:key"]): value(p["prov:value"]) for p in by_type(prep["_bundle"], "Parameter").values()}
    assert params == {"n": 10}  # a rule's params: without any wrapper
    assert file_digests(prep["_bundle"], "wasGeneratedBy", prep["_id"]) == {sha256(wd / "data.txt")}
    (summ,) = tasks["summarise"]
    assert file_digests(summ["_bundle"], "used", summ["_id"]) == {sha256(wd / "scores.txt"), sha256(wd / "report.txt")}
    for t in tasks["train"]:
        seed = json.loads(value(t["ywf:wildcards"]))["seed"]
        assert file_digests(t["_bundle"], "wasGeneratedBy", t["_id"]) == {sha256(wd / f"model_{seed}.txt")}
        assert value(t["ywf:jobKey"]) == job_key("train", [f"model_{seed}.txt"])
    wf = load(root / "workflow.json")
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(wf, "wasInformedBy")}
    ident = {name: {t["_id"] for t in ts} for name, ts in tasks.items()}
    expected = ({(t, p) for t in ident["train"] for p in ident["prepare"]}
                | {(e, t) for e in ident["evaluate"] for t in ident["train"]}
                | {(r, p) for r in ident["report"] for p in ident["prepare"]}
                | {(s, x) for s in ident["summarise"] for x in ident["evaluate"] | ident["report"]}
                | {(a, s) for a in ident["all"] for s in ident["summarise"]})
    assert informed == expected


def test_two_train_jobs_ran_in_parallel_and_nothing_leaks(cli_run):
    wd, _ = cli_run
    trains = tasks_of(run_dirs(wd / "prov")[0])["train"]
    pids = {value(t["ywf:pid"]) for t in trains}
    assert len(pids) == 2  # separate job processes
    assert not (wd / ".snakemake" / "yprov" / "active-run.json").exists()  # pointer removed at the end


# -- Python API: a failing job (shell, and a wrapped run: block), then a rerun ------------------------------

FAILING = """
from snakemake_yprov import job

rule all:
    input: "ok.txt", "bad.txt", "boom.txt"

rule ok:
    output: "ok.txt"
    shell: "echo ok > {output}"

rule bad:
    output: "bad.txt"
    log: "logs/bad.log"
    retries: 1
    shell: "echo 'line one' > {log}; echo 'fatal: disk on fire' >> {log}; test -f fixed && echo fixed > {output} || exit 3"

rule boom:
    output: "boom.txt"
    log: "logs/boom.log"
    run:
        with job(snakemake):
            with open(log[0], "w") as f:
                f.write("boom is starting\\n")
            import os
            if not os.path.exists("fixed"):
                raise RuntimeError("boom went wrong")
            open(output[0], "w").write("boom\\n")
"""


def _api_run(wd: Path) -> Exception | None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ExecutionSettings, OutputSettings, Quietness, ResourceSettings

    settings = LogHandlerSettings(save_dir=str(wd / "prov"), namespace=NS)
    try:
        with SnakemakeApi(OutputSettings(log_handler_settings={"yprov": settings}, quiet={Quietness.ALL})) as api:
            workflow = api.workflow(resource_settings=ResourceSettings(cores=2), snakefile=wd / "Snakefile", workdir=wd)
            workflow.dag().execute_workflow(executor="local", execution_settings=ExecutionSettings(keep_going=True))
    except Exception as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def api_runs(tmp_path_factory) -> tuple[Path, Exception | None, Exception | None]:
    wd = tmp_path_factory.mktemp("smk_api")
    (wd / "Snakefile").write_text(FAILING)
    cwd, env_before = Path.cwd(), os.environ.get(RUN_DIR_ENV)
    first = _api_run(wd)
    (wd / "fixed").write_text("")
    second = _api_run(wd)
    assert Path.cwd() == cwd and os.environ.get(RUN_DIR_ENV) == env_before
    return wd, first, second


def test_failed_jobs_keep_their_status_error_and_log_tail(api_runs):
    wd, first, _ = api_runs
    assert first is not None and "did not complete successfully" in str(first)
    old = run_dirs(wd / "prov")[0]
    (wf_attrs,) = by_type(load(old / "workflow.json"), "WorkflowRun").values()
    assert value(wf_attrs["ywf:status"]) == "failed"
    tasks = tasks_of(old)
    assert {k: len(v) for k, v in tasks.items()} == {"ok": 1, "bad": 2, "boom": 1}  # no bundle for 'all'
    assert sorted(value(t["ywf:attempt"]) for t in tasks["bad"]) == [1, 2]  # retries: 1, each attempt its bundle
    bad = next(t for t in tasks["bad"] if value(t["ywf:attempt"]) == 2)
    assert value(bad["ywf:status"]) == "failed" and value(bad["ywf:recordedBy"]) == "logger"
    assert value(bad["ywf:error"]) == "Error in rule bad"
    assert value(bad["ywf:logTail"]).endswith("line one\nfatal: disk on fire")
    (boom,) = tasks["boom"]
    assert value(boom["ywf:status"]) == "failed" and value(boom["ywf:recordedBy"]) == "job"
    assert value(boom["ywf:error"]) == "RuntimeError: boom went wrong"
    assert "boom is starting" in value(boom["ywf:logTail"])
    assert value(tasks["ok"][0]["ywf:status"]) == "completed"


def test_rerun_records_new_attempts_and_keeps_the_old_bundles(api_runs):
    wd, first, second = api_runs
    assert second is None
    old, new = run_dirs(wd / "prov")
    assert len(list((old / "tasks").glob("*.json"))) == 4  # untouched: ok, bad (2 attempts), boom
    tasks = tasks_of(new)
    assert sorted(tasks) == ["all", "bad", "boom"]  # 'ok' was up to date
    assert all(value(t["ywf:status"]) == "completed" for ts in tasks.values() for t in ts)
    (wf_attrs,) = by_type(load(new / "workflow.json"), "WorkflowRun").values()
    assert value(wf_attrs["ywf:status"]) == "completed"
    old_keys = {value(t["ywf:jobKey"]) for ts in tasks_of(old).values() for t in ts}
    assert {value(tasks["bad"][0]["ywf:jobKey"]), value(tasks["boom"][0]["ywf:jobKey"])} <= old_keys


def test_api_run_leaves_no_logger_filter_behind(api_runs):
    from snakemake.logging import logger

    assert not [f for f in logger.filters if getattr(f, "__self__", None).__class__ is LogHandler]


TWO_JOBS = """
rule all:
    input: "b.txt"
rule a:
    output: "a.txt"
    shell: "echo a > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} {input} > {output}"
"""


def test_as_the_only_plugin_nothing_it_recorded_goes_through_snakemakes_plugin_queue(tmp_path, monkeypatch):
    """Snakemake's queue to its plugin handlers serves this one alone: records the filter took are not queued."""
    import logging.handlers

    queued: list[object] = []
    enqueue = logging.handlers.QueueHandler.enqueue
    monkeypatch.setattr(logging.handlers.QueueHandler, "enqueue",
                        lambda self, record: (queued.append(getattr(record, "event", None)), enqueue(self, record)))
    (tmp_path / "Snakefile").write_text(TWO_JOBS)
    assert _api_run(tmp_path) is None
    (run,) = run_dirs(tmp_path / "prov")
    assert sorted(tasks_of(run)) == ["a", "all", "b"] and (run / "workflow.json").exists()
    assert queued == []
    from snakemake.logging import logger

    assert not [h for h in logger.handlers for f in h.filters if getattr(f, "__module__", "").startswith(
        "snakemake_logger_plugin_yprov")]


COUNTING_PLUGIN = """
import json, os
from snakemake_interface_logger_plugins.base import LogHandlerBase

class LogHandler(LogHandlerBase):
    def __post_init__(self):
        self.events = []

    def emit(self, record):
        self.events.append(str(getattr(record, "event", None)))

    def close(self):
        with open(os.environ["EVENTS_FILE"], "w") as f:
            json.dump(self.events, f)
        super().close()

    writes_to_stream = writes_to_file = needs_rulegraph = False
    has_filter = has_formatter = True
"""


def test_another_logger_plugin_beside_it_gets_every_event(tmp_path):
    """With a second plugin handler the queue is shared: it gets what it gets without this plugin."""
    plugins = tmp_path / "plugins" / "snakemake_logger_plugin_eventcount"
    plugins.mkdir(parents=True)
    (plugins / "__init__.py").write_text(COUNTING_PLUGIN)
    seen = {}
    for name, loggers in (("alone", ("eventcount",)), ("beside", ("eventcount", "yprov"))):
        wd = tmp_path / name
        wd.mkdir()
        (wd / "Snakefile").write_text(TWO_JOBS)
        env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations"), str(plugins.parent)]),
               "EVENTS_FILE": str(wd / "events.json")}
        out = snakemake_cli(wd, "-c", "1", "--logger", *loggers, "--logger-yprov-namespace", NS, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        seen[name] = json.loads((wd / "events.json").read_text())
    assert seen["beside"].count(str(LogEvent.JOB_FINISHED)) == 3  # a, b and all
    assert sorted(seen["beside"]) == sorted(seen["alone"])
    (run,) = run_dirs(tmp_path / "beside" / "prov")
    assert sorted(tasks_of(run)) == ["a", "all", "b"]


# -- without the logger plugin; cluster-generic; settings; a broken provenance folder -----------------------

def test_wrapper_without_the_plugin_writes_a_workflow_of_one_task(tmp_path):
    (tmp_path / "report.py").write_text(REPORT.format(ns=NS))
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""
        rule report:
            output: "report.txt"
            params: script="report.py", title="alone"
            wrapper: "{WRAPPER}"
    """))
    result = snakemake_cli(tmp_path, "-c", "1", env={"YPROV_WF_NAMESPACE": NS})
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    assert root.parent.name == "snakemake"
    tasks = tasks_of(root)
    assert list(tasks) == ["report"] and value(tasks["report"][0]["ywf:status"]) == "completed"
    (run,) = by_type(tasks["report"][0]["_bundle"], "MLRun").values()
    assert value(run["ywf:experiment"]) == "report"
    (wf_attrs,) = by_type(load(root / "workflow.json"), "WorkflowRun").values()
    assert value(wf_attrs["ywf:engine"]) == "snakemake" and value(wf_attrs["ywf:status"]) == "completed"
    assert (tmp_path / "report.txt").read_text() == "alone\n"


SUBMIT = """#!/bin/sh
# A local stand-in for a batch scheduler that does not pass the environment on (like sbatch --export=NONE
# would): the job finds its workflow run through the pointer file on the shared file system.
env -u {var} sh "$1" > "$1.out" 2>&1 &
echo "local-$!"
"""

CLUSTER_SNAKEFILE = """
from snakemake_yprov import job
import yprov_wf as yp

rule all:
    input: "b.txt"

rule a:
    output: "a.txt"
    group: "ab"
    shell: "echo a > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    group: "ab"
    run:
        import os
        with job(snakemake):
            with yp.start_run("%s", "on-the-cluster"):
                yp.log_metric("env_var_seen", float(os.environ.get("YPROV_WF_RUN_DIR") is not None))
            open(output[0], "w").write("b\\n")
"""


def test_cluster_generic_jobs_join_through_the_pointer_file(tmp_path):
    """Cluster-style submission of a group job, quiet progress: jobs join the run through the pointer file."""
    submit = tmp_path / "submit.sh"
    submit.write_text(SUBMIT.format(var=RUN_DIR_ENV))
    submit.chmod(0o755)
    (tmp_path / "Snakefile").write_text(CLUSTER_SNAKEFILE % NS)
    result = snakemake_cli(tmp_path, "--executor", "cluster-generic", "--cluster-generic-submit-cmd", str(submit),
                           "-j", "2", "--latency-wait", "5",
                           "--seconds-between-status-checks", "1", "--quiet", "progress", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    tasks = tasks_of(root)
    assert {k: len(v) for k, v in tasks.items()} == {"a": 1, "b": 1, "all": 1}
    # --quiet progress hides JOB_FINISHED: the plugin closed its jobs at the end, from their outputs
    assert all(value(t["ywf:status"]) == "completed" for ts in tasks.values() for t in ts)
    (b,) = tasks["b"]
    assert value(b["ywf:recordedBy"]) == "job"
    (series,) = by_type(b["_bundle"], "MetricSeries").values()
    assert value(series["ywf:last"]) == 0.0  # the variable was stripped: the pointer file did the work
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(load(root / "workflow.json"), "wasInformedBy")}
    assert (b["_id"], tasks["a"][0]["_id"]) in informed
    (a,) = tasks["a"]
    assert value(a["ywf:group"]) == "ab" and len(value(a["ywf:groupJobId"])) == 36  # a and b: one group job
    assert "ywf:group" not in tasks["all"][0]


@pytest.mark.parametrize("option, bad", [("--logger-yprov-namespace", "not an iri"),
                                         ("--logger-yprov-log-tail-lines", "-3")])
def test_invalid_settings_get_snakemakes_own_clear_error(tmp_path, option, bad):
    (tmp_path / "Snakefile").write_text('rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    result = snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", option, bad)
    assert result.returncode != 0
    assert bad in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "prov").exists()


def test_unwritable_provenance_folder_never_fails_snakemake(tmp_path):
    (tmp_path / "prov").write_text("a file where the folder should be")
    (tmp_path / "Snakefile").write_text(TWO_JOBS)
    result = snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "b.txt").read_text() == "a\na\n"
    assert (tmp_path / "prov").read_text() == "a file where the folder should be"
    dry = snakemake_cli(tmp_path, "-n", "--forceall", "--logger", "yprov", "--logger-yprov-save-dir", "dry")
    assert dry.returncode == 0 and not (tmp_path / "dry").exists()  # a dry run records nothing


def test_the_git_repository_recorded_is_the_snakefiles_not_snakemakes(tmp_path):
    # `python -m snakemake` makes Snakemake's own __main__.py the main script: its folder (a virtualenv that
    # may sit inside some other repository) says nothing of the workflow's code
    project = tmp_path / "project"
    project.mkdir()
    (project / "Snakefile").write_text('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n')
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "Snakefile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    result = snakemake_cli(project, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(project / "prov")
    (wf,) = by_type(load(run / "workflow.json"), "WorkflowRun").values()
    assert value(wf["ywf:gitRepository"]) == str(project.resolve())
    assert value(wf["ywf:gitCommit"]) == head
    assert value(wf["ywf:gitDirty"]) is False  # prov/ and a.txt are untracked


def test_directory_outputs_are_recorded_by_the_digest_of_their_files(tmp_path):
    from yprov_wf.layout import digest_path

    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input: "count.txt"
        rule split:
            output: directory("parts")
            shell: "mkdir -p {output}/sub && echo a > {output}/a.txt && echo b > {output}/sub/b.txt"
        rule count:
            input: "parts"
            output: "count.txt"
            shell: "find {input} -type f | wc -l > {output}"
    """))
    result = snakemake_cli(tmp_path, "-c", "1", "--logger", "yprov", "--logger-yprov-namespace", NS)
    assert result.returncode == 0, result.stderr[-3000:]
    root = run_dirs(tmp_path / "prov")[0]
    tasks = tasks_of(root)
    folder, _ = digest_path(tmp_path / "parts")
    (split,), (count,) = tasks["split"], tasks["count"]
    assert file_digests(split["_bundle"], "wasGeneratedBy", split["_id"]) == {folder}
    assert file_digests(count["_bundle"], "used", count["_id"]) == {folder}
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(load(root / "workflow.json"),
                                                                              "wasInformedBy")}
    assert (count["_id"], split["_id"]) in informed


def test_a_killed_snakemake_leaves_finished_jobs_readable_and_recover_closes_the_run(tmp_path):
    import signal
    import time

    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input: "slow.txt"
        rule fast:
            output: "fast.txt"
            shell: "echo fast > {output}"
        rule slow:
            input: "fast.txt"
            output: "slow.txt"
            shell: "sleep 60 && cp {input} {output}"
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("YPROV_WF_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "integrations")])
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "-c", "1", "--logger", "yprov",
                             "--logger-yprov-namespace", NS], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "prov").glob("*/*/tasks/fast-*.json")):
            assert proc.poll() is None and time.monotonic() < deadline, "the fast job's bundle never appeared"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its running shell job, no chance to clean up
        proc.wait(30)
    (root,) = run_dirs(tmp_path / "prov")
    assert not (root / "workflow.json").exists() and (root / "journal" / "workflow.jsonl").is_file()
    (fast,) = tasks_of(root)["fast"]  # flushed before the kill: complete and readable
    assert value(fast["ywf:status"]) == "completed"
    recovered = subprocess.run([sys.executable, "-m", "yprov_wf.cli", "recover", str(root)], env=env,
                               capture_output=True, text=True, timeout=120)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    (wf_attrs,) = by_type(load(root / "workflow.json"), "WorkflowRun").values()
    assert value(wf_attrs["ywf:status"]) == "crashed"
    validate = subprocess.run([sys.executable, "-m", "yprov_wf.cli", "validate", str(root)], env=env,
                              capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout


def test_a_handler_that_snakemake_never_closes_still_closes_its_run(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from snakemake_interface_logger_plugins.common import LogEvent
        from snakemake_interface_logger_plugins.tests import MockOutputSettings
        import logging
        from snakemake_logger_plugin_yprov import LogHandler, LogHandlerSettings
        handler = LogHandler(common_settings=MockOutputSettings(),
                             settings=LogHandlerSettings(save_dir="prov", namespace="{NS}"))
        record = logging.LogRecord("snakemake", logging.INFO, "", 0, "", None, None)
        record.event, record.workflow_id = LogEvent.WORKFLOW_STARTED, "f" * 36
        handler.emit(record)
        job = logging.LogRecord("snakemake", logging.INFO, "", 0, "", None, None)
        job.event, job.jobid, job.rule_name, job.output = LogEvent.JOB_INFO, 1, "a", []
        handler.emit(job)  # the run opens at the first job
        print(handler.run_dir)
        sys.exit(0)  # no handler.close(), as with Snakemake versions that never call it
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations")])}
    env.pop(RUN_DIR_ENV, None)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = Path(out.stdout.strip())
    (wf_attrs,) = by_type(load(run_dir / "workflow.json"), "WorkflowRun").values()
    assert value(wf_attrs["ywf:status"]) == "completed"
    assert not (run_dir / "journal").exists()


# -- the standard logger plugin tests, plus the events of one job ------------------------------------------

class TestYprovLogHandler(TestLogHandlerBase):
    __test__ = True

    @pytest.fixture(autouse=True)
    def _isolated(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv(RUN_DIR_ENV, raising=False)
        self._handlers: list[LogHandlerBase] = []
        self.tmp = tmp_path
        yield
        for handler in self._handlers:
            handler.close()
        assert RUN_DIR_ENV not in os.environ

    def get_log_handler_cls(self) -> type[LogHandlerBase]:
        return LogHandler

    def get_log_handler_settings(self) -> LogHandlerSettings:
        return LogHandlerSettings(save_dir="prov", namespace=NS, workflow_name="unit")

    def _create_handler(self) -> LogHandlerBase:
        handler = super()._create_handler()
        self._handlers.append(handler)
        return handler

    def test_events_of_one_job_make_its_bundle(self):
        handler = self._create_handler()
        Path("in.txt").write_text("x\n")
        handler.emit(self._create_event_record(LogEvent.WORKFLOW_STARTED, workflow_id="f" * 36,
                                               snakefile_main=str(self.tmp / "Snakefile")))
        assert handler.run_dir is None  # nothing recorded until there is a job
        handler.emit(self._create_event_record(
            LogEvent.JOB_INFO, jobid=7, rule_name="copy", input=["in.txt"], output=["out.txt"], log=[],
            wildcards={"s": "A"}, threads=2, resources={"mem_mb": 10}, shellcmd="cp in.txt out.txt"))
        assert os.environ[RUN_DIR_ENV] == str(handler.run_dir)
        Path("out.txt").write_text("x\n")
        handler.emit(self._create_event_record(LogEvent.JOB_FINISHED, job_id=7))
        handler.close()
        assert RUN_DIR_ENV not in os.environ
        tasks = tasks_of(handler.run_dir)
        (copy,) = tasks["copy"]
        assert (value(copy["ywf:status"]), value(copy["ywf:threads"]), value(copy["ywf:snakemakeJobId"])) == (
            "completed", 2, 7)
        digest = hashlib.sha256(b"x\n").hexdigest()
        assert file_digests(copy["_bundle"], "used", copy["_id"]) == {digest}
        assert file_digests(copy["_bundle"], "wasGeneratedBy", copy["_id"]) == {digest}

    def test_a_dry_run_records_nothing(self):
        from snakemake_interface_logger_plugins.tests import MockOutputSettings

        common = MockOutputSettings()
        common.dryrun = True
        handler = LogHandler(common_settings=common, settings=self.get_log_handler_settings())
        self._handlers.append(handler)
        handler.emit(self._create_event_record(LogEvent.WORKFLOW_STARTED, workflow_id="f" * 36))
        handler.close()
        assert handler.run_dir is None and not Path("prov").exists()

    def test_bad_settings_name_the_value(self):
        from snakemake.logging import logger
        from snakemake_interface_common.exceptions import WorkflowError
        from snakemake_interface_logger_plugins.tests import MockOutputSettings

        filters = list(logger.filters)
        with pytest.raises(WorkflowError, match="ftp:nope"):
            LogHandler(common_settings=MockOutputSettings(), settings=LogHandlerSettings(namespace="ftp:nope"))
        assert logger.filters == filters


def test_example_workflow_plans_every_job(tmp_path):
    """The snakemake_digits example parses and plans prepare → train per learning rate → evaluate → summarise
    (a dry run: training it takes minutes; example_workflows/snakemake_digits/run.sh runs it)."""
    snakefile = REPO / "example_workflows" / "snakemake_digits" / "Snakefile"
    result = snakemake_cli(tmp_path, "-s", str(snakefile), "-n", "--logger", "yprov", "--config", "lrs=[0.01,0.05,0.1]")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(line.split() for line in result.stdout.splitlines()
                  if line.split() and line.split()[0] in {"prepare", "train", "evaluate", "summarise", "total"}
                  and len(line.split()) == 2)
    assert counts == {"prepare": "1", "train": "3", "evaluate": "3", "summarise": "1", "total": "9"}, result.stdout
    assert not (tmp_path / "prov").exists()


def test_example_workflow_runs_end_to_end_into_one_collection(tmp_path):
    """The example, small (1 epoch, two learning rates in parallel): one workflow run whose collection holds
    every job's bundle, each training job's bundle its nested ML run, and the data flow between them."""
    snakefile = REPO / "example_workflows" / "snakemake_digits" / "Snakefile"
    result = snakemake_cli(tmp_path, "-s", str(snakefile), "-c", "2", "--logger", "yprov",
                           "--logger-yprov-namespace", "https://example.org/digits/", "--config", "epochs=1",
                           "lrs=[0.05,0.1]", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = run_dirs(tmp_path / "prov")
    tasks = tasks_of(root)
    assert {k: len(v) for k, v in tasks.items()} == {"prepare": 1, "train": 2, "evaluate": 2, "summarise": 1,
                                                      "all": 1}
    assert all(value(t["ywf:status"]) == "completed" for ts in tasks.values() for t in ts)
    for t in tasks["train"]:
        (run,) = by_type(t["_bundle"], "MLRun").values()
        assert value(run["ywf:status"]) == "completed"
        assert {value(s["ywf:key"]) for s in by_type(t["_bundle"], "MetricSeries").values()} >= {"loss", "accuracy"}
    wf = load(root / "workflow.json")
    (coll,) = by_type(wf, "TaskCollection")
    assert len([r for r in relations(wf, "hadMember") if r["prov:collection"] == coll]) == 7
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(wf, "wasInformedBy")}
    (prepare,) = tasks["prepare"]
    assert all((t["_id"], prepare["_id"]) in informed for t in tasks["train"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary, "the pipeline wrote its summary"
    validate = subprocess.run([sys.executable, "-m", "yprov_wf.cli", "validate", str(root)], capture_output=True,
                              text=True)
    assert validate.returncode == 0, validate.stdout


# -- small parts: the job key, the pointer file, the wrapper's script ---------------------------------------

def test_job_key_names_a_job_by_rule_and_outputs():
    assert job_key("train", ["m_1.pt"]) == job_key("train", ["m_1.pt"], ["other-inputs"])
    assert len({job_key("train", ["m_1.pt"]), job_key("train", ["m_2.pt"]), job_key("eval", ["m_1.pt"]),
                job_key("all", [], ["a"]), job_key("all", [], ["b"])}) == 5


def test_pointer_file_of_a_dead_snakemake_is_ignored(tmp_path, monkeypatch):
    from snakemake_yprov import rendezvous

    import yprov_wf as yp

    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    with yp.workflow("owner", namespace=NS, save_dir=tmp_path / "prov") as wf:
        root = wf.dir.root.resolve()
        rendezvous.write_pointer(root, "id", tmp_path, name="owner", namespace=NS, run_id=wf.run_id)
        assert rendezvous.find_run(tmp_path) == rendezvous.RunRef(root, "owner", NS, wf.run_id)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        data = json.loads((tmp_path / rendezvous.POINTER).read_text())
        (tmp_path / rendezvous.POINTER).write_text(json.dumps({**data, "pid": int(dead.stdout)}))
        assert rendezvous.find_run(tmp_path) is None  # its process is gone
    (tmp_path / rendezvous.POINTER).write_text(json.dumps(data))
    assert rendezvous.find_run(tmp_path) is None  # the run is closed


def test_wrapper_needs_a_script_param(tmp_path):
    from types import SimpleNamespace

    from snakemake_yprov.runner import script_of

    with pytest.raises(ValueError, match="rule 'train' uses the yprov wrapper but has no params.script"):
        script_of(SimpleNamespace(rule="train", params=SimpleNamespace()))
    with pytest.raises(FileNotFoundError, match="missing.py"):
        script_of(SimpleNamespace(rule="train", params=SimpleNamespace(script=str(tmp_path / "missing.py"))))


# -- attempts a job's own process retried, as reported to the main process ---------------------------------

def test_a_job_process_reports_its_attempts_only_under_the_plugin_and_in_a_job_mode():
    from snakemake.logging import logger
    from snakemake_logger_plugin_yprov.attempts import _Reporter, report_from_job_process

    before = list(logger.filters)
    try:
        assert not report_from_job_process(["snakemake", "--mode", "subprocess"], {})  # no --logger yprov
        assert not report_from_job_process(["snakemake", "-c", "1"], {"YPROV_SNAKEMAKE_LOGGER": "1"})  # main
        assert not report_from_job_process(["snakemake", "--mode", "default"], {"YPROV_SNAKEMAKE_LOGGER": "1"})
        assert logger.filters == before
        assert report_from_job_process(["snakemake", "--mode=remote"], {"YPROV_SNAKEMAKE_LOGGER": "1"})
        assert report_from_job_process(["snakemake", "--mode", "'subprocess'"], {"YPROV_SNAKEMAKE_LOGGER": "1"})
        assert sum(isinstance(f, _Reporter) for f in logger.filters) == 1  # once, however often imported
    finally:
        for f in [f for f in logger.filters if f not in before]:
            logger.removeFilter(f)


def test_reported_attempts_go_each_once_to_their_job_of_this_run(tmp_path):
    from snakemake_logger_plugin_yprov.attempts import ATTEMPTS, InnerAttempts

    folder = tmp_path / ATTEMPTS
    folder.mkdir(parents=True)
    run = tmp_path / "prov" / "wf" / "run1"

    def line(key: str, ended: float, run_dir: Path = run) -> str:
        return json.dumps({"run_dir": str(run_dir), "key": key, "rule": "r", "ended": ended, "error": f"e{ended}",
                           "log_tail": None}) + "\n"

    (folder / "host-1.jsonl").write_text(line("k1", 2.0) + line("k2", 1.0) + line("k1", 3.0, tmp_path / "old")
                                         + "not json\n" + line("k1", 1.0)[:20])  # a line still being written
    inner = InnerAttempts(run, cwd=tmp_path)
    assert [(a.key, a.ended) for a in inner.take("k1")] == [("k1", 2.0)]
    with open(folder / "host-1.jsonl", "a") as f:
        f.write(line("k1", 1.0)[20:])  # the rest of that line
    (folder / "host-2.jsonl").write_text(line("k1", 0.5))
    assert [a.ended for a in inner.take("k1")] == [0.5, 1.0]  # oldest first, across processes
    assert inner.take("k1") == [] and [a.error for a in inner.take("k2")] == ["e1.0"]
    inner.remove()
    assert not folder.exists()
