"""prefect_yprov with real Prefect (a test API server) and real PyTorch: every flow run is a workflow
run and every task-run attempt its own bundle, whatever runs the task (threads, asyncio, Dask)."""

from __future__ import annotations

import asyncio
import os
import secrets
import warnings

for _name, _value in {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                      "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}.items():
    os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402
import prefect  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from prefect.cache_policies import INPUTS  # noqa: E402
from prefect_yprov import ProvFlow, ProvTask, flow, task  # noqa: E402

import yprov_wf as yp  # noqa: E402
from tests.conftest import NS, bundle_of, by_type, load, relations  # noqa: E402
from yprov_wf.prov.reading import literal as value  # noqa: E402

pytestmark = pytest.mark.usefixtures("prefect_api")  # the session's Prefect test API server (conftest)


def _runs(save_dir, flow_name):
    """The workflow run folders of one flow under a save dir."""
    return sorted(p for p in (save_dir / flow_name).glob("*") if p.is_dir())


def _tasks(run_dir) -> dict[str, dict]:
    """{task file stem: task activity attributes (plain values)} of one workflow run."""
    out = {}
    for f in (run_dir / "tasks").glob("*.json"):
        (attrs,) = by_type(bundle_of(f), "TaskRun").values()
        out[f.stem] = {k: value(v) for k, v in attrs.items()}
    return out


def _informed(run_dir) -> set[tuple[str, str]]:
    wf = load(run_dir / "workflow.json")
    names = {i: a["ywf:name"] for i, a in by_type(wf, "TaskRun").items()}
    return {(names[r["prov:informed"]], names[r["prov:informant"]]) for r in relations(wf, "wasInformedBy")}


# -- module-level tasks (picklable by reference for the Dask workers) -------------------------------------
@task
def make_data(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


@task
def train_step(data: np.ndarray, lr: float) -> float:
    """A real (tiny) PyTorch fit inside a nested ML run."""
    torch.manual_seed(0)
    x = torch.from_numpy(data).float().unsqueeze(1)
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with yp.start_run(NS, "fit"):
        yp.log_param("lr", lr)
        for step in range(5):
            opt.zero_grad()
            loss = ((model(x) - 2 * x) ** 2).mean()
            loss.backward()
            opt.step()
            yp.log_metric("loss", loss.item(), context=yp.Context.TRAINING, step=step)
        yp.save_model_version(model, "linear", yp.Context.TRAINING, step=4)
    return loss.item()


@task
def where_am_i(i: int) -> int:
    with yp.start_run(NS, "probe"):
        yp.log_metric("i", float(i))
    return os.getpid()


# -- concurrency -----------------------------------------------------------------------------------------
def test_submit_and_map_record_each_task_run_in_its_own_bundle(save_dir):
    @flow(save_dir=save_dir, namespace=NS)
    def fit_many(n: int = 8):
        data = make_data(n)
        futures = train_step.map(prefect.unmapped(data), lr=[0.01, 0.02, 0.03])
        one = train_step.submit(data, 0.05)
        return [f.result() for f in futures], one.result()

    fit_many_flow = fit_many.with_options(name="fit-many")
    losses, loss = fit_many_flow(n=8)
    assert len(losses) == 3 and all(np.isfinite(losses)) and np.isfinite(loss)
    (run_dir,) = _runs(save_dir, "fit-many")
    tasks = _tasks(run_dir)
    assert sorted(a["ywf:name"] for a in tasks.values()) == ["make_data"] + ["train_step"] * 4
    assert {a["ywf:status"] for a in tasks.values()} == {"completed"}
    flow_run_id = run_dir.name
    assert {a["ywf:flowRunId"] for a in tasks.values()} == {flow_run_id}
    assert len({a["ywf:taskRunId"] for a in tasks.values()}) == 5
    # each train_step bundle holds its own ML run, with its own lr and 5 loss points
    lrs = []
    for stem, attrs in tasks.items():
        if attrs["ywf:name"] != "train_step":
            continue
        b = bundle_of(run_dir / "tasks" / f"{stem}.json")
        (run,) = by_type(b, "MLRun")
        (series,) = by_type(b, "MetricSeries").values()
        assert value(series["ywf:count"]) == 5
        run_params = [a for i, a in by_type(b, "Parameter").items() if i.startswith("user:run/")]
        lrs.append(value(run_params[0]["prov:value"]))
        assert len(by_type(b, "ModelVersion")) == 1
        # the array argument is an input by digest, described by shape; lr is a plain parameter
        (data_in,) = [a for a in by_type(b, "DataValue").values() if a.get("ywf:name") == "data"]
        assert "shape=[8]" in data_in["ywf:description"]
    assert sorted(lrs) == [0.01, 0.02, 0.03, 0.05]
    # every train_step used what make_data generated
    assert _informed(run_dir) == {("train_step", "make_data")}
    wf = load(run_dir / "workflow.json")
    (wf_attrs,) = by_type(wf, "WorkflowRun").values()
    assert wf_attrs["ywf:engine"] == "prefect" and wf_attrs["ywf:flowRunId"] == flow_run_id
    assert len(relations(wf, "hadMember")) == 5


def test_async_tasks_record_into_their_own_bundles(save_dir):
    @task
    async def probe(i: int) -> int:
        with yp.start_run(NS, f"probe-{i}"):
            for step in range(3):
                yp.log_metric("value", float(i), step=step)
                await asyncio.sleep(0.01)
        return i * 10

    @flow(save_dir=save_dir, namespace=NS)
    async def gather_flow():
        return await asyncio.gather(*(probe(i) for i in range(4)))

    assert asyncio.run(gather_flow()) == [0, 10, 20, 30]
    (run_dir,) = _runs(save_dir, "gather-flow")
    seen = {}
    for f in (run_dir / "tasks").glob("*.json"):
        b = bundle_of(f)
        (task_attrs,) = by_type(b, "TaskRun").values()
        (run_attrs,) = by_type(b, "MLRun").values()
        (series,) = by_type(b, "MetricSeries").values()
        i = int(run_attrs["ywf:experiment"].split("-")[1])
        assert value(series["ywf:min"]) == value(series["ywf:max"]) == i  # no other task's points
        (param,) = [a for a in by_type(b, "Parameter").values() if a["ywf:key"] == "i"]
        assert value(param["prov:value"]) == i
        seen[i] = task_attrs["ywf:status"]
    assert seen == {0: "completed", 1: "completed", 2: "completed", 3: "completed"}


# -- retries, failures, caching ----------------------------------------------------------------------------
def test_each_retry_is_its_own_attempt(save_dir):
    calls = []

    @task(retries=2)
    def flaky() -> str:
        calls.append(1)
        with yp.start_run(NS, "flaky"):
            yp.log_metric("try", float(len(calls)))
        if len(calls) < 3:
            raise RuntimeError(f"transient failure {len(calls)}")
        return "ok"

    @flow(save_dir=save_dir, namespace=NS)
    def retrying():
        return flaky()

    assert retrying() == "ok"  # Prefect's behaviour unchanged
    (run_dir,) = _runs(save_dir, "retrying")
    attempts = sorted(_tasks(run_dir).values(), key=lambda a: int(a["ywf:attempt"]))
    assert [int(a["ywf:attempt"]) for a in attempts] == [1, 2, 3]
    assert [int(a["ywf:runCount"]) for a in attempts] == [1, 2, 3]
    assert [a["ywf:status"] for a in attempts] == ["failed", "failed", "completed"]
    assert [a["ywf:prefectState"] for a in attempts] == ["Retrying", "Retrying", "Completed"]
    assert attempts[0]["ywf:error"] == "RuntimeError: transient failure 1"
    assert len({a["ywf:taskRunId"] for a in attempts}) == 1


def test_a_failing_task_records_its_error_and_the_flow_still_fails(save_dir):
    @task
    def broken(x: int) -> int:
        raise ValueError(f"bad value {x}")

    @flow(save_dir=save_dir, namespace=NS)
    def failing():
        return broken(7)

    state = failing(return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="bad value 7"):
        state.result()
    (run_dir,) = _runs(save_dir, "failing")
    (attrs,) = _tasks(run_dir).values()
    assert (attrs["ywf:status"], attrs["ywf:prefectState"]) == ("failed", "Failed")
    assert attrs["ywf:error"] == "ValueError: bad value 7"
    (wf_attrs,) = by_type(load(run_dir / "workflow.json"), "WorkflowRun").values()
    assert wf_attrs["ywf:status"] == "failed" and "bad value 7" in wf_attrs["ywf:error"]


def test_a_cache_hit_is_recorded_as_such(save_dir):
    calls = []

    @task(cache_policy=INPUTS, persist_result=True)
    def expensive(x: int) -> list[int]:
        calls.append(x)
        return [x + 1, x * x]  # (not x itself: Prefect would take the next call's x for this task's result)

    @task
    def consume(values: list[int]) -> int:
        return sum(values)

    key = secrets.randbits(40)  # Prefect's result storage outlives the test API: a fresh input per run

    @flow(save_dir=save_dir, namespace=NS)
    def cached_flow():
        first = expensive(key)
        second = expensive(key)
        return consume(second), first == second

    total, same = cached_flow()
    assert (total, same, calls) == (key + 1 + key ** 2, True, [key])
    (run_dir,) = _runs(save_dir, "cached-flow")
    by_name = sorted((a for a in _tasks(run_dir).values() if a["ywf:name"] == "expensive"),
                     key=lambda a: a["prov:startTime"])
    assert [(a["ywf:status"], a["ywf:cacheHit"], a["ywf:prefectState"]) for a in by_name] == [
        ("completed", False, "Completed"), ("cached", True, "Cached")]
    # the consumer used the value the cache hit generated (same digest as the original result)
    assert _informed(run_dir) == {("consume", "expensive")}


def test_equal_results_of_two_tasks_link_each_consumer_to_the_run_it_received(save_dir):
    """Identity per generation: two task runs returning equal values are two entities; Prefect's own
    record of where an argument came from picks the one, never the digest alone."""
    @task
    def answer(tag: str) -> float:
        return float(len(tag) * 0 + 42)  # a new object each run (Prefect tracks results by identity)

    @task
    def use(x: float) -> float:
        return x + 1.0

    @task
    def gather(xs: list[float]) -> float:
        return sum(xs)

    @flow(save_dir=save_dir, namespace=NS)
    def equal_values():
        left, right = answer("left"), answer("right")
        return use(right), gather([left, right])

    assert equal_values() == (43.0, 84.0)
    (run_dir,) = _runs(save_dir, "equal-values")
    wf = load(run_dir / "workflow.json")
    tasks = by_type(wf, "TaskRun")
    by_tag = {}
    for f in (run_dir / "tasks").glob("answer-*.json"):
        b = bundle_of(f)
        ((tid, _),) = by_type(b, "TaskRun").items()
        (tag,) = [value(a["prov:value"]) for a in by_type(b, "Parameter").values()]
        by_tag[tag] = tid
    (use_id,) = [i for i, a in tasks.items() if a["ywf:name"] == "use"]
    (gather_id,) = [i for i, a in tasks.items() if a["ywf:name"] == "gather"]
    informed = {(r["prov:informed"], r["prov:informant"]) for r in relations(wf, "wasInformedBy")}
    assert informed == {(use_id, by_tag["right"]), (gather_id, by_tag["left"]), (gather_id, by_tag["right"])}
    used = {r["prov:entity"] for r in relations(wf, "used") if r["prov:activity"] == use_id}
    generated = {r["prov:entity"] for r in relations(wf, "wasGeneratedBy")
                 if r["prov:activity"] == by_tag["right"] and "/output/" in r["prov:entity"]}
    assert used & generated and not used & {r["prov:entity"] for r in relations(wf, "wasGeneratedBy")
                                            if r["prov:activity"] == by_tag["left"]}


# -- subflows, Dask, wrapping existing objects ---------------------------------------------------------
def test_a_subflow_is_a_member_of_its_parent_and_a_workflow_run_of_its_own(save_dir):
    @flow
    def child(n: int) -> float:
        return train_step(make_data(n), 0.1)

    @flow(save_dir=save_dir, namespace=NS)
    def parent():
        n = make_data(4)
        return child(len(n))

    assert np.isfinite(parent())
    (parent_dir,) = _runs(save_dir, "parent")
    (child_dir,) = _runs(save_dir, "child")
    members = {a["ywf:name"]: a for a in _tasks(parent_dir).values()}
    assert set(members) == {"make_data", "child"}
    sub = members["child"]
    assert (sub["ywf:kind"], sub["ywf:subflowRunId"], sub["ywf:status"]) == ("subflow", child_dir.name, "completed")
    assert (parent_dir / sub["ywf:subflowLocation"]).resolve() == child_dir.resolve()
    assert sorted(a["ywf:name"] for a in _tasks(child_dir).values()) == ["make_data", "train_step"]
    (child_wf,) = by_type(load(child_dir / "workflow.json"), "WorkflowRun").values()
    assert child_wf["ywf:parentFlowRunId"] == parent_dir.name
    assert _informed(child_dir) == {("train_step", "make_data")}


def test_dask_worker_processes_write_bundles_into_the_flow_run(save_dir):
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "processes": True, "threads_per_worker": 1,
                                            "dashboard_address": None})

    @flow(save_dir=save_dir, namespace=NS, task_runner=runner)
    def on_dask():
        return [f.result() for f in where_am_i.map(list(range(6)))]

    pids = on_dask()
    assert os.getpid() not in pids and len(set(pids)) >= 1
    (run_dir,) = _runs(save_dir, "on-dask")
    tasks = _tasks(run_dir)
    assert len(tasks) == 6
    assert {int(a["ywf:pid"]) for a in tasks.values()} == set(pids)
    assert {a["ywf:status"] for a in tasks.values()} == {"completed"}
    wf = load(run_dir / "workflow.json")
    members = {r["prov:entity"] for r in relations(wf, "hadMember")}
    assert members == {i + "/bundle" for i in by_type(wf, "TaskRun")}
    for f in (run_dir / "tasks").glob("*.json"):
        assert len(by_type(bundle_of(f), "MetricSeries")) == 1
    assert not (run_dir / "journal").exists()


def test_existing_prefect_objects_and_with_options_keep_recording(save_dir):
    @prefect.task
    def plain(x: int) -> int:
        return x + 1

    @prefect.flow
    def plain_flow(x: int) -> int:
        return wrapped_task(x)

    wrapped_task = task(plain, name="plus-one")
    renamed = wrapped_task.with_options(retries=1, on_completion=[lambda *a: hooks.append(1)])
    hooks: list[int] = []
    assert isinstance(wrapped_task, ProvTask) and isinstance(renamed, ProvTask) and renamed.retries == 1
    wrapped_flow = flow(plain_flow, save_dir=save_dir, namespace=NS)
    assert isinstance(wrapped_flow, ProvFlow) and isinstance(wrapped_flow.with_options(name="x"), ProvFlow)
    assert wrapped_flow(1) == 2

    @flow(save_dir=save_dir, namespace=NS)
    def with_hooks() -> int:
        return renamed(5)

    assert with_hooks() == 6 and hooks == [1]  # the user's hook still runs
    (run_dir,) = _runs(save_dir, "plain-flow")
    (attrs,) = _tasks(run_dir).values()
    assert attrs["ywf:name"] == "plus-one"
    assert plain.fn(1) == 2 and wrapped_task.fn(1) == 2  # calling the function itself records nothing


# -- bad input and faults --------------------------------------------------------------------------------
@pytest.mark.parametrize("decorator", [task, flow])
@pytest.mark.parametrize("bad", [42, "train", [1, 2], int])
def test_decorating_something_that_is_not_a_function_is_a_type_error(decorator, bad):
    with pytest.raises(TypeError, match=r"decorates a function or a Prefect (Task|Flow), got"):
        decorator(bad)


def test_bad_provenance_options_name_the_value():
    with pytest.raises(ValueError, match="not-an-iri"):
        task(namespace="not-an-iri")
    with pytest.raises(TypeError, match="save_dir"):
        flow(save_dir=3.5)


def test_an_unwritable_provenance_folder_warns_once_and_the_flow_returns_the_same(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the provenance folder should go")

    def double(x: float) -> float:
        if yp.current_task() is not None:
            with yp.start_run(NS, "r"):
                yp.log_metric("x", x)
        return 2 * x

    def body(double_task, x: float) -> float:
        return sum(f.result() for f in double_task.map([x, x + 1]))

    with pytest.warns(yp.ProvenanceWarning, match="cannot write provenance") as caught:
        recorded = flow(body, name="unwritable", save_dir=blocker / "prov", namespace=NS)(task(double), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = prefect.flow(body, name="plain")(prefect.task(double), 1.0)
    assert recorded == plain == 6.0
    assert len([w for w in caught if issubclass(w.category, yp.ProvenanceWarning)]) == 1
    assert blocker.read_text().startswith("a file")


def test_a_crashing_task_is_recorded_as_crashed(save_dir):
    @task
    def exits() -> None:
        raise SystemExit(3)

    @flow(save_dir=save_dir, namespace=NS)
    def crashing():
        return exits()

    with pytest.raises(BaseException):  # noqa: B017 (Prefect re-raises the crash as it sees fit)
        crashing()
    (run_dir,) = _runs(save_dir, "crashing")
    (attrs,) = _tasks(run_dir).values()
    assert (attrs["ywf:status"], attrs["ywf:prefectState"]) == ("crashed", "Crashed")
    assert attrs["ywf:error"].startswith("SystemExit")


def test_ddp_inside_a_prefect_task_nests_the_ranks_under_it(tmp_path, monkeypatch):
    import importlib.util

    from tests.conftest import REPO

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = importlib.util.spec_from_file_location("ddp_prefect_flow",
                                                  REPO / "example_workflows" / "ddp_digits" / "prefect_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from pathlib import Path

    root = Path(module.ddp_flow(nproc=2, epochs=1))
    wf = load(root / "workflow.json")
    tasks = by_type(wf, "TaskRun")
    (launcher,) = [i for i, a in tasks.items() if a["ywf:name"] == "ddp_train"]
    ranks = {i: a for i, a in tasks.items() if "ywf:rank" in a}
    assert sorted(int(value(a["ywf:rank"])) for a in ranks.values()) == [0, 1]
    starters = {r["prov:activity"]: r["prov:starter"] for r in relations(wf, "wasStartedBy")}
    assert all(starters[i] == launcher for i in ranks), "each rank's task was started by the Prefect task"
    assert len(relations(wf, "hadMember")) == 3
