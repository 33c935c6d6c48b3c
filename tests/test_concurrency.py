"""Concurrent tasks in threads and asyncio each record into their own bundle."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pandas as pd
import pytest

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, only_run_dir, relations

POINTS = 10_000


def _metrics_by_task(root):
    """{task name: DataFrame of the metrics its runs generated}."""
    out = {}
    for f in (root / "tasks").glob("*.json"):
        b = bundle_of(f)
        (task,) = by_type(b, "TaskRun").values()
        locations = {a["ywf:path"] for a in by_type(b, "MetricSeries").values()}
        assert len(locations) == 1
        out[f"{task['ywf:name']}|{f.stem}"] = pd.read_parquet(root / locations.pop())
    return out


def test_eight_threads_record_into_their_own_bundles(save_dir):
    errors = []

    def worker(i: int) -> None:
        try:
            with yp.task(f"worker-{i}"), yp.start_run(NS, f"run-{i}", save_after_n_logs=100):
                yp.log_param("worker", i)
                for step in range(POINTS):
                    yp.log_metric("loss", i + step / POINTS, context=yp.Context.TRAINING, step=step)
                    yp.log_metric(f"only-{i}", float(i))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    with yp.workflow("threads", namespace=NS, save_dir=save_dir):
        # each thread starts in its own copy of the caller's context: that is what hands it the workflow
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(worker, i)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    frames = _metrics_by_task(only_run_dir(save_dir))
    assert len(frames) == 8
    for name, df in frames.items():
        i = int(name.split("|")[0].split("-")[1])
        assert set(df.key) == {"loss", f"only-{i}"}
        loss = df[df.key == "loss"]
        assert len(loss) == POINTS and loss.step.tolist() == list(range(POINTS))
        assert loss.value.between(i, i + 1).all(), f"{name} holds another worker's points"


def test_asyncio_tasks_record_into_their_own_bundles(save_dir):
    @yp.task
    async def step(i: int) -> int:
        with yp.start_run(NS, f"run-{i}"):
            for k in range(100):
                yp.log_metric("value", float(i), step=k)
                if k % 10 == 0:
                    await asyncio.sleep(0)  # interleave with the other tasks
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(step(i) for i in range(6)))

    with yp.workflow("async", namespace=NS, save_dir=save_dir):
        assert asyncio.run(main()) == list(range(6))
    frames = _metrics_by_task(only_run_dir(save_dir))
    assert len(frames) == 6
    assert all(df.value.nunique() == 1 and len(df) == 100 for df in frames.values())


def test_a_thread_without_the_context_gets_no_scope_and_a_copied_context_reaches_the_run(save_dir):
    """No scope is ever found through another thread's state: a plain thread sees no run, no task and no
    workflow (even with exactly one open in the process); a thread run in a copy of the context sees them."""
    seen: dict[str, object] = {}

    def bare() -> None:
        seen["task"], seen["workflow"] = yp.current_task(), yp.current_workflow()
        try:
            yp.log_metric("from-thread", 1.0)
        except yp.NoActiveRunError as exc:
            seen["error"] = exc

    with yp.workflow("fallback", namespace=NS, save_dir=save_dir), yp.task("t"), yp.start_run(NS, "r"):
        t = threading.Thread(target=bare)
        t.start()
        t.join()
        t = threading.Thread(target=contextvars.copy_context().run,
                             args=(lambda: [yp.log_metric("from-thread", float(k)) for k in range(10)],))
        t.start()
        t.join()
    assert seen["task"] is None and seen["workflow"] is None
    assert "copy_context" in str(seen["error"])
    root = only_run_dir(save_dir)
    df = pd.read_parquet(next(root.glob("metrics/*.parquet")))
    assert len(df) == 10
    assert len(relations(bundle_of(next(root.glob("tasks/*.json"))), "wasGeneratedBy")) == 1


def test_a_task_in_a_plain_thread_does_not_join_the_open_workflow(save_dir):
    """A ``task()`` opened in a thread without the context is a workflow run of its own, never silently a
    member of the one workflow open elsewhere in the process."""
    with yp.workflow("outer", namespace=NS, save_dir=save_dir) as wf:
        t = threading.Thread(target=lambda: yp.task("alone", namespace=NS, save_dir=save_dir)(lambda: None)())
        t.start()
        t.join()
    assert wf.tasks == []
    assert [p.name for p in save_dir.iterdir()] and (save_dir / "alone").is_dir()


def test_the_error_without_a_run_names_the_remedy():
    with pytest.raises(yp.NoActiveRunError, match="start_run"):
        yp.log_metric("loss", 1.0)


def test_threads_given_one_task_id_each_keep_a_bundle_of_their_own(save_dir):
    """Eight threads open tasks with the same explicit id at once: each gets an id of its own (``id``,
    ``id-2``…, with the warning), so no bundle overwrites another."""
    ids: list[str] = []
    with pytest.warns(yp.ProvenanceWarning, match="already used"), \
            yp.workflow("shared-id", namespace=NS, save_dir=save_dir) as wf:
        def go() -> None:
            with yp.TaskScope("t", run_id="same", workflow=wf) as t:
                ids.append(t.run_id)

        threads = [threading.Thread(target=go) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(ids) == sorted(["same", *(f"same-{n}" for n in range(2, 9))])
    assert sorted(p.stem for p in (only_run_dir(save_dir) / "tasks").glob("*.json")) == sorted(ids)
