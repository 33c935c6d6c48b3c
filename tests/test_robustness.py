"""Adversarial cases (issue 17): one bad value, a hostile file tree or a crafted journal costs at most
one record with a warning, never the workflow run; nothing is read or written outside its folders."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import yprov_wf as yp
from tests.conftest import bundle_of, by_type, load, only_run_dir, value
from yprov_wf.cli import main as cli
from yprov_wf.errors import ProvenanceWarning
from yprov_wf.prov.validate import validate
from yprov_wf.recording import current
from yprov_wf.recording.recover import recover

NS = "https://example.org/"


def _files(save_dir: Path) -> tuple[Path, list[Path]]:
    root = only_run_dir(save_dir)
    return root, sorted((root / "tasks").glob("*.json"))


def _task(root: Path) -> dict:
    (task_file,) = sorted((root / "tasks").glob("*.json"))
    (t,) = by_type(bundle_of(task_file), "TaskRun").values()
    return t


# -- 1. values checked where they enter ------------------------------------------------------------------

BAD_TIMES = [float("nan"), float("inf"), -float("inf"), 1e20, np.float64("nan"), b"2026-01-01", True]


@pytest.mark.parametrize("bad", BAD_TIMES, ids=repr)
def test_bad_times_raise_at_the_call_and_recording_goes_on(save_dir, tmp_path, bad):
    art = tmp_path / "a.txt"
    art.write_text("x")
    with yp.workflow("w", namespace=NS, save_dir=save_dir) as wf:
        with pytest.raises((TypeError, ValueError), match="timestamp"):
            with yp.task("t"):
                yp.start_run(NS, "e")
                yp.log_metric("ok", 1.0)
                try:
                    yp.log_metric("m", 1.0, timestamp=bad)
                finally:
                    with pytest.raises((TypeError, ValueError), match="timestamp"):
                        yp.log_artifact(art, timestamp=bad)
                    yp.end_run()
        with pytest.raises((TypeError, ValueError), match="started"):
            wf.write_finished_task("x", started=bad, ended=1.0)
        with pytest.raises((TypeError, ValueError), match="ended"):
            wf.write_finished_task("x", started=1.0, ended=bad)
        with pytest.raises((TypeError, ValueError), match="started"):
            yp.task("y", started=bad)
    root, tasks = _files(save_dir)
    assert (root / "workflow.json").is_file() and len(tasks) == 1
    assert validate(root) == []


@pytest.mark.parametrize("call", ["metric", "param", "task", "workflow", "artifact", "model"])
def test_lone_surrogates_in_keys_and_names_are_refused_naming_the_argument(save_dir, tmp_path, call):
    bad = "loss\udcff"
    art = tmp_path / "a.txt"
    art.write_text("x")
    with yp.workflow("w", namespace=NS, save_dir=save_dir):
        with yp.task("t"):
            run = yp.start_run(NS, "e")
            with pytest.raises(ValueError, match="(key|name) .* holds a lone surrogate"):
                {"metric": lambda: run.log_metric(bad, 1.0), "param": lambda: run.log_param(bad, 1),
                 "task": lambda: yp.task(bad), "workflow": lambda: yp.workflow(bad),
                 "artifact": lambda: run.log_artifact(art, name=bad),
                 "model": lambda: run.save_model_version({"w": 1}, bad)}[call]()
            yp.end_run()
    root, tasks = _files(save_dir)
    assert len(tasks) == 1 and validate(root) == []


def test_unhashable_key_or_context_is_named(save_dir):
    with yp.start_run(NS, "e", provenance_save_dir=save_dir) as run:
        with pytest.raises(TypeError, match=r"metric key .*\['a'\]"):
            run.log_metric(["a"], 1.0)
        with pytest.raises(TypeError, match="context must be a str"):
            run.log_metric("m", 1.0, context={"a": 1})
        with pytest.raises(ValueError, match="context"):
            yp.Context("train\n")


def test_attribute_values_are_scalars_or_refused(save_dir):
    with yp.workflow("w", namespace=NS, save_dir=save_dir):
        with yp.task("t", attributes={"where": Path("/data/x"), "lr": np.float32(0.5), "n": np.int64(3),
                                      "flag": np.bool_(True)}) as t:
            with pytest.raises(TypeError, match="attribute 'raw'"):
                t.set_attribute("raw", b"bytes")
            yp.start_run(NS, "e")
            yp.log_param("module", np)  # a module: described, not a crash inside the describer
            yp.log_param("text", "x\ud800y")  # a value with a lone surrogate: kept, escaped
            yp.end_run()
    root, _ = _files(save_dir)
    t = _task(root)
    assert value(t["ywf:where"]) == "/data/x" and float(value(t["ywf:lr"])) == 0.5 and int(value(t["ywf:n"])) == 3
    assert validate(root) == []


def test_unpicklable_model_costs_only_its_record_and_validate_says_so(save_dir):
    with pytest.warns(ProvenanceWarning, match="model version 'net' v1"):
        with yp.start_run(NS, "e", provenance_save_dir=save_dir) as run:
            run.log_metric("loss", 1.0)
            assert run.save_model_version(threading.Lock(), "net") is None
            assert run.save_model_version({"w": [1, 2]}, "net2") is not None
            run.log_param("lr", 0.1)
    root, tasks = _files(save_dir)
    bundle = json.dumps(load(tasks[0]))
    assert "net2" in bundle and "lr" in bundle and "loss" in bundle
    assert not list((root / "artifacts").rglob("net/*")), "no half-written model file is left"
    findings = validate(root)
    assert findings and all("model version 'net' v1" in f and "lost" in f for f in findings)


def test_an_error_text_with_a_surrogate_and_a_url_password_is_recorded_safely(save_dir):
    with pytest.raises(RuntimeError):
        with yp.workflow("w", namespace=NS, save_dir=save_dir):
            with yp.task("t"):
                raise RuntimeError("cannot reach postgres://admin:S3cret@db/x \udcff")
    root, tasks = _files(save_dir)
    text = tasks[0].read_text() + (root / "workflow.json").read_text()
    assert "S3cret" not in text and "***@db" in text and "\\\\udcff" in text
    assert validate(root) == []


def test_random_bad_values_never_cost_the_run(save_dir, tmp_path):
    """Fuzz (fixed seed): every call either raises TypeError/ValueError at once or is recorded, and the
    workflow run is complete and valid at the end."""
    rng = random.Random(17)
    art = tmp_path / "a.txt"
    art.write_text("x")
    pool = [float("nan"), float("inf"), 1e300, -1e300, 2**70, "x\udcff", "", "ok", ["a"], {"a": 1}, b"x",
            None, Path("p"), np.float32(1.5), np.int64(2), np.float64("nan"), object(), threading.Lock(), np,
            "a/b/../../c", "\n", 3, 0.5, True, -1]
    calls = {
        "metric_key": lambda r, v: r.log_metric(v, 1.0),
        "metric_value": lambda r, v: r.log_metric("m", v),
        "metric_step": lambda r, v: r.log_metric("m", 1.0, step=v),
        "metric_time": lambda r, v: r.log_metric("m", 1.0, timestamp=v),
        "metric_context": lambda r, v: r.log_metric("m", 1.0, context=v),
        "param_key": lambda r, v: r.log_param(v, 1),
        "param_value": lambda r, v: r.log_param(f"p{rng.random()}", v),
        "artifact_name": lambda r, v: r.log_artifact(art, name=v),
        "artifact_step": lambda r, v: r.log_artifact(art, step=v) if isinstance(v, int) or v is None else None,
        "model": lambda r, v: r.save_model_version(v, "m"),
        "model_name": lambda r, v: r.save_model_version({"w": 1}, v),
        "dataset": lambda r, v: r.log_dataset(v, "d"),
        "attribute": lambda r, v: r.task.set_attribute("a", v),
        "output": lambda r, v: r.task.log_output(v, value=True),
    }
    accepted = refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProvenanceWarning)
        with yp.workflow("w", namespace=NS, save_dir=save_dir):
            with yp.task("t"):
                with yp.start_run(NS, "e") as run:
                    for _ in range(300):
                        name, value = rng.choice(list(calls)), rng.choice(pool)
                        try:
                            calls[name](run, value)
                            accepted += 1
                        except (TypeError, ValueError, FileNotFoundError):
                            refused += 1
    assert accepted > 50 and refused > 50
    root, tasks = _files(save_dir)
    assert (root / "workflow.json").is_file() and len(tasks) == 1
    assert all("lost" in f for f in validate(root)), validate(root)  # only records dropped on purpose
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert cli(["validate", str(copy)]) in (0, 1)


# -- 2. security ------------------------------------------------------------------------------------------

def test_folder_artifact_copies_no_link_out_no_fifo_no_loop(save_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside")
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "out").symlink_to(outside)
    (folder / "up").symlink_to("..")  # a loop: data/up/data/up/…
    (folder / "alias").symlink_to("sub/a.txt")  # stays inside: kept as a link
    os.mkfifo(folder / "pipe")
    try:
        with pytest.warns(ProvenanceWarning, match="not copied"):
            with yp.start_run(NS, "e", provenance_save_dir=save_dir) as run:
                dest = run.log_artifact(folder)
                with pytest.raises(ValueError, match="not a regular file"):
                    run.log_artifact(folder / "pipe")
        copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
        assert copied == ["alias", "sub", "sub/a.txt"]
        assert (dest / "alias").is_symlink()
        assert validate(only_run_dir(save_dir)) == []
    finally:
        shutil.rmtree(outside)


def test_log_artifact_of_the_working_folder_does_not_copy_the_provenance_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print(1)")
    with yp.start_run(NS, "e", provenance_save_dir="prov") as run:
        run.log_metric("m", 1.0)
        dest = run.log_artifact(".", name="cwd")
    assert sorted(p.name for p in dest.iterdir()) == ["train.py"]


def _crafted_run(save_dir: Path, task_id: str, run_id: str) -> Path:
    root = save_dir / "w" / "20260101T000000Z-00000000"
    (root / "journal").mkdir(parents=True)
    event = {"event": "task_opened", "task_id": task_id, "name": "t", "workflow_id": "x", "workflow_name": "w",
             "namespace": NS, "started": 1.0, "host": "elsewhere", "pid": 1}
    run = {"event": "run_opened", "run_id": run_id, "experiment": "e", "started": 1.0}
    (root / "journal" / "t.jsonl").write_text(json.dumps(event) + "\n" + json.dumps(run) + "\n")
    return root


def test_a_crafted_journal_cannot_write_or_delete_outside_the_folder(tmp_path, capsys):
    victim = tmp_path / "victim.ylog"
    victim.write_text("keep me")
    root = _crafted_run(tmp_path / "prov", "../../../../evil", "../../../../victim")
    assert cli(["recover", str(tmp_path / "prov")]) == 2
    err = capsys.readouterr().err
    assert "not a plain file name" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == "keep me" and not (tmp_path / "evil.json").exists()
    assert not any(p.name.startswith("evil") for p in tmp_path.rglob("*"))
    assert (root / "journal" / "t.jsonl").exists(), "an unreadable journal is left as it is"


def test_recover_does_not_follow_a_linked_journal_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.jsonl").write_text("{}\n")
    root = tmp_path / "prov" / "w" / "r1"
    root.mkdir(parents=True)
    (root / "journal").symlink_to(outside)
    report = recover(tmp_path / "prov")
    assert report.unreadable and (outside / "keep.jsonl").read_text() == "{}\n"


def test_url_credentials_are_redacted_in_env_params_errors_and_argv(save_dir, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://admin:PW1@db:5432/x")
    monkeypatch.setattr("sys.argv", ["train.py", "-p", "PW2", "--db", "mysql://u:PW3@h/", "-pPW4"])
    with pytest.raises(ValueError):
        with yp.workflow("w", namespace=NS, save_dir=save_dir, env_vars=["DATABASE_URL"],
                         params={"store": "https://u:PW5@s3.example.org/b?token=PW6"}):
            with yp.task("t"):
                with yp.start_run(NS, "e") as run:
                    run.log_execution_command()
                    run.log_param("url", "redis://:PW7@cache:6379")
                raise ValueError("connect to amqp://guest:PW8@mq failed")
    root, tasks = _files(save_dir)
    text = (root / "workflow.json").read_text() + tasks[0].read_text()
    for n in range(1, 9):
        assert f"PW{n}" not in text, f"PW{n} leaked"
    assert "postgres://***@db:5432/x" in text


# -- 3. crashes ---------------------------------------------------------------------------------------------

def test_a_save_dir_deleted_during_the_run_is_warned_about(save_dir):
    with pytest.warns(ProvenanceWarning, match="vanished"):
        with yp.start_run(NS, "e", provenance_save_dir=save_dir, save_after_n_logs=5) as run:
            for i in range(20):
                run.log_metric("loss", float(i))
            shutil.rmtree(save_dir)
    root, _ = _files(save_dir)
    assert any("lost" in f and "metric points" in f for f in validate(root))


def test_leftover_metric_logs_and_orphan_parquet_are_findings(save_dir):
    with yp.start_run(NS, "e", provenance_save_dir=save_dir) as run:
        run.log_metric("loss", 1.0)
    root = only_run_dir(save_dir)
    (root / "metrics" / "ghost.parquet").write_bytes(b"PAR1")
    (root / "metrics" / "ghost.ylog").write_bytes(b"")
    findings = validate(root)
    assert len(findings) == 2 and any("no bundle refers to" in f for f in findings)


# -- 4. concurrency -----------------------------------------------------------------------------------------

def test_a_forked_child_never_writes_or_deletes_the_parents_records(save_dir):
    with yp.workflow("w", namespace=NS, save_dir=save_dir):
        with yp.task("t"):
            with yp.start_run(NS, "e", save_after_n_logs=10) as run:
                for i in range(50):
                    run.log_metric("loss", float(i))
                pid = os.fork()
                if pid == 0:  # the child logs, then runs the exit handlers as a script's exit would
                    code = 0
                    try:
                        run.log_metric("loss", -1.0)
                        yp.log_param("child", 1)
                        current._close_all_at_exit()
                    except BaseException as exc:
                        (save_dir / "child-error.txt").write_text(repr(exc))
                        code = 1
                    os._exit(code)
                assert os.waitpid(pid, 0)[1] == 0, (save_dir / "child-error.txt").read_text()
                root = only_run_dir(save_dir)
                assert not (root / "tasks").exists(), "the child wrote no task file"
                assert list((root / "journal").glob("*.jsonl")), "the child deleted no journal"
                for i in range(50, 100):
                    run.log_metric("loss", float(i))
    root, tasks = _files(save_dir)
    assert _task(root)["ywf:status"] == "completed"
    df = pd.read_parquet(next((root / "metrics").glob("*.parquet")))
    assert df["value"].tolist() == [float(i) for i in range(100)]


def test_threads_sharing_one_run_lose_and_mispair_no_point(save_dir):
    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with yp.start_run(NS, "e", provenance_save_dir=save_dir, save_after_n_logs=100) as run:
            def work(k: int) -> None:
                for i in range(20000):
                    run.log_metric(f"m{k}", float(i), step=i)
                    run.log_metric("shared", float(k))
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(interval)
    df = pd.read_parquet(next((only_run_dir(save_dir) / "metrics").glob("*.parquet")))
    assert len(df) == 160000
    for k in range(4):
        mine = df[df["key"] == f"m{k}"]
        assert len(mine) == 20000 and (mine["value"] == mine["step"]).all()
    shared = df[df["key"] == "shared"]
    assert shared["value"].value_counts().to_dict() == {float(k): 20000 for k in range(4)}


def test_two_tasks_given_one_run_id_are_both_kept(save_dir):
    with pytest.warns(ProvenanceWarning, match="already used"):
        with yp.workflow("w", namespace=NS, save_dir=save_dir) as wf:
            with yp.task("a", run_id="same"):
                pass
            with yp.task("b", run_id="same"):
                pass
            wf.write_finished_task("c", started=1.0, ended=2.0, run_id="same")
    root, tasks = _files(save_dir)
    assert [t.name for t in tasks] == ["same-2.json", "same-3.json", "same.json"]
    assert validate(root) == []


# -- 3b. kills and a full disk, in real subprocesses --------------------------------------------------------

_TRAIN = """
import os, signal, sys, yprov_wf as yp
from yprov_wf.recording import run as run_module
phase = os.environ.get("KILL_AT")
if phase == "after_parquet":  # SIGKILL right after the Parquet is written, before the run is closed
    original = run_module.finalize_run_metrics
    def finalize_then_die(*args):
        original(*args)
        os.kill(os.getpid(), signal.SIGKILL)
    run_module.finalize_run_metrics = finalize_then_die
if phase == "full_disk":  # every file may grow to 4 KiB from end_run on: the Parquet write fails
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
with yp.workflow("k", namespace="https://example.org/", save_dir="prov"):
    with yp.task("t"):
        with yp.start_run("https://example.org/", "e", save_after_n_logs=50) as run:
            run.log_param("lr", 0.1)
            for i in range(6000):
                run.log_metric("loss", float(i), step=i)
                run.log_metric("rnd", float(i * 7919 % 1000) / 3.0, context="validation", step=i)
                if i % 1500 == 0:
                    run.save_model_version({"w": list(range(i % 97))}, "net")
                    print("saved", i, flush=True)
            if phase == "full_disk":
                resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 12, resource.RLIM_INFINITY))
print("done", flush=True)
"""


def _points_in(root: Path) -> int:
    return sum(len(pd.read_parquet(p)) for p in (root / "metrics").glob("*.parquet"))


def test_a_kill_after_the_parquet_before_the_run_closed_is_recovered_in_full(tmp_path):
    from tests.conftest import run_python

    result = run_python(_TRAIN, tmp_path, env={"KILL_AT": "after_parquet"})
    assert result.returncode == -9, result.stderr
    root = only_run_dir(tmp_path / "prov")
    assert validate(root), "before recover: not valid"
    assert cli(["recover", str(tmp_path / "prov")]) == 0
    assert validate(root) == []
    assert _points_in(root) == 12000
    series = by_type(bundle_of(next((root / "tasks").glob("*.json"))), "MetricSeries")
    assert sorted(int(value(s["ywf:count"])) for s in series.values()) == [6000, 6000]


def test_a_disk_filling_before_end_run_leaves_no_unreadable_parquet(tmp_path):
    from tests.conftest import run_python

    result = run_python(_TRAIN, tmp_path, env={"KILL_AT": "full_disk"})
    assert result.returncode == 0 and "cannot write provenance" in result.stderr, result.stderr
    root = only_run_dir(tmp_path / "prov")
    for p in (root / "metrics").glob("*.parquet"):
        pd.read_parquet(p)  # whatever is there reads
    assert cli(["recover", str(tmp_path / "prov")]) == 0
    assert validate(root) == [] and _points_in(root) == 12000


def test_random_sigkills_at_any_phase_are_always_recoverable(tmp_path):
    """Fuzz (fixed seed, 6 kills): whenever the process dies, `recover` succeeds, the result validates,
    every model version on record is whole, and no flushed point is lost."""
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    rng = random.Random(1717)
    for n in range(6):
        cwd = tmp_path / f"k{n}"
        cwd.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", _TRAIN], cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().startswith("saved")  # the run is open: kill somewhere after this
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        if not (cwd / "prov").exists():
            continue
        assert cli(["recover", str(cwd / "prov")]) == 0
        root = only_run_dir(cwd / "prov")
        assert validate(root) == [], validate(root)
        for p in (root / "metrics").glob("*.parquet"):  # every point kept is paired with its own step
            df = pd.read_parquet(p)
            loss = df[df["key"] == "loss"]
            assert (loss["value"] == loss["step"]).all() and loss["step"].is_monotonic_increasing
        for pt in (root / "artifacts").rglob("v*.pt"):
            import pickle

            pickle.loads(pt.read_bytes())  # whole, never truncated


# -- 5. the command line: one line and exit 2 for every malformed input -----------------------------------

def _small_run(save_dir: Path) -> Path:
    with yp.start_run(NS, "e", provenance_save_dir=save_dir) as run:
        run.log_metric("loss", 1.0)
    return only_run_dir(save_dir)


def _bundle_is_a_list(root: Path) -> None:
    next((root / "tasks").glob("*.json")).write_text("[1, 2]")


def _task_file_is_a_folder(root: Path) -> None:
    (root / "tasks" / "folder.json").mkdir()


def _journal_with_wrong_types(root: Path) -> None:
    (root / "journal").mkdir(exist_ok=True)
    (root / "journal" / "x.jsonl").write_text(json.dumps({"event": "task_opened", "task_id": 5, "name": [],
                                                          "started": "soon", "runs": 3}) + "\n")


@pytest.mark.parametrize("damage", [_bundle_is_a_list, _task_file_is_a_folder, _journal_with_wrong_types])
@pytest.mark.parametrize("command", ["show", "merge", "validate", "recover", "graph", "report", "compare",
                                     "crate", "export"])
def test_malformed_input_gives_one_line_and_exit_2(save_dir, tmp_path, capsys, damage, command):
    root = _small_run(save_dir)
    damage(root)
    out = tmp_path / "out"
    argv = {"merge": ["merge", str(root), "-o", str(out / "m.json")], "graph": ["graph", str(root), "-o", str(out / "g.dot")],
            "report": ["report", str(root), "-o", str(out / "r.html")], "crate": ["crate", str(root), "-o", str(out / "c.zip")],
            "export": ["export", str(root), "-o", str(out / "e.trig")]}.get(command, [command, str(root)])
    code = cli(argv)
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


def test_output_pointing_at_a_folder_and_recover_of_a_file_exit_2(save_dir, tmp_path, capsys):
    root = _small_run(save_dir)
    (tmp_path / "folder").mkdir()
    assert cli(["merge", str(root), "-o", str(tmp_path / "folder")]) == 2
    assert cli(["recover", str(root / "workflow.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("yprov-wf: error:") for line in err)


def test_validate_rejects_a_time_that_is_not_a_date(save_dir):
    root = _small_run(save_dir)
    task_file = next((root / "tasks").glob("*.json"))
    doc = load(task_file)
    (bundle,) = doc["bundle"].values()
    next(iter(bundle["activity"].values()))["prov:startTime"] = "not-a-date"
    task_file.write_text(json.dumps(doc))
    assert any("not-a-date" in f and "xsd:dateTime" in f for f in validate(root))


def test_recover_rebuilds_a_journal_with_nan_times_as_older_versions_wrote_them(tmp_path):
    root = tmp_path / "prov" / "w" / "20260101T000000Z-00000001"
    (root / "journal").mkdir(parents=True)
    opened = {"event": "task_opened", "task_id": "t-1", "name": "t", "workflow_id": "20260101T000000Z-00000001",
              "workflow_name": "w", "namespace": NS, "started": float("nan"), "host": "elsewhere", "pid": 1}
    art = {"event": "artifact", "run_id": "r-1", "name": "a", "path": "artifacts/r-1/a", "sha256": "0", "size": 0,
           "source": "/x", "time": float("inf")}
    run = {"event": "run_opened", "run_id": "r-1", "experiment": "e", "started": 1e20}
    lines = [opened, run, art]
    (root / "journal" / "t-1.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))  # NaN, Infinity
    wf = {"event": "workflow_opened", "workflow_id": "20260101T000000Z-00000001", "name": "w", "namespace": NS,
          "started": float("nan")}
    (root / "journal" / "workflow.jsonl").write_text(json.dumps(wf) + "\n")
    assert cli(["recover", str(tmp_path / "prov")]) == 0
    assert (root / "workflow.json").is_file() and (root / "tasks" / "t-1.json").is_file()
    assert any("artifacts/r-1/a" in f for f in validate(root))  # the missing artifact is reported
