"""The one-import swap changes nothing Prefect does, and the provenance tells Prefect's truth: each idiom
runs with plain Prefect (``prefect.flow``/``prefect.task``) and with ``prefect_yprov`` in the same test, and
their states, results and logs are compared; then what the swapped run recorded is checked."""

from __future__ import annotations  # on purpose: Prefect must resolve the annotations in *this* module

import json
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

for _name, _value in {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                      "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}.items():
    os.environ.setdefault(_name, _value)

import pandas as pd  # noqa: E402
import prefect  # noqa: E402
import prefect_yprov  # noqa: E402
import pytest  # noqa: E402
from prefect.states import Cancelled, Completed, Failed  # noqa: E402

import yprov_wf as yp  # noqa: E402
from tests.conftest import NS, bundle_of, by_type, load, relations  # noqa: E402
from yprov_wf.prov.reading import literal as value  # noqa: E402

pytestmark = pytest.mark.usefixtures("prefect_api")  # the session's Prefect test API server (conftest)

PLAIN = (prefect.flow, prefect.task)
SWAPPED = (prefect_yprov.flow, prefect_yprov.task)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RUN_NAME = re.compile(r"'[a-z]+-[a-z]+'")  # Prefect's random flow run names
_TASK_RUN_NAME = re.compile(r"\b([\w.]+)-[0-9a-f]{3}\b")  # task run names: <task>-<3 hex>


@pytest.fixture
def swapped_dir(tmp_path, monkeypatch) -> Path:
    """Where the swapped runs record (the same flow code runs plain and swapped, so via the env)."""
    monkeypatch.setenv("YPROV_WF_SAVE_DIR", str(tmp_path / "prov"))
    monkeypatch.setenv("YPROV_WF_NAMESPACE", NS)
    return tmp_path / "prov"


@contextmanager
def prefect_logs():
    """Every INFO-or-above record Prefect's loggers emit meanwhile, as (logger, level, message)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger("prefect")
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    out: list[tuple[str, str, str]] = []
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    for r in records:
        msg = _TASK_RUN_NAME.sub(r"\1-xxx", _RUN_NAME.sub("'<run>'", _UUID.sub("<id>", r.getMessage())))
        out.append((r.name, r.levelname, msg))


def _same_logs(plain: list, swapped: list) -> None:
    assert Counter(swapped) == Counter(plain), (sorted(set(swapped) - set(plain)), sorted(set(plain) - set(swapped)))


def _runs(save_dir: Path, flow_name: str) -> list[Path]:
    return sorted((p for p in (save_dir / flow_name).glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)


def _workflow(run_dir: Path) -> dict:
    (attrs,) = by_type(load(run_dir / "workflow.json"), "WorkflowRun").values()
    return {k: value(v) for k, v in attrs.items()}


def _tasks(run_dir: Path) -> list[dict]:
    out = []
    for f in (run_dir / "tasks").glob("*.json"):
        b = bundle_of(f)
        (attrs,) = by_type(b, "TaskRun").values()
        rec = {k: value(v) for k, v in attrs.items()}
        rec["_bundle"], rec["_file"] = b, f
        out.append(rec)
    return out


def _values(bundle: dict) -> dict[str, dict]:
    return {a["ywf:name"]: a for a in by_type(bundle, "DataValue").values() if "ywf:name" in a}


# -- Prefect's own example: examples/run_api_sourced_etl.py (PrefectHQ/prefect, main, ce79dd3) -----------
# The example fetches dev.to's article API; here a local server on 127.0.0.1 serves the same shape of
# JSON (nested user, a list-valued tag_list), and the code below is the example's, adapted to take its
# decorators as arguments so that the very same code runs plain and swapped.
def _articles(page: int, per_page: int) -> list[dict[str, Any]]:
    return [{"id": page * 100 + i, "title": f"Article {page}.{i}", "published_at": "2026-01-01T00:00:00Z",
             "url": f"http://127.0.0.1/a/{page}/{i}", "comments_count": i, "positive_reactions_count": 2 * i,
             "tag_list": ["python", f"tag{i}"], "user": {"username": f"user{i}"}} for i in range(per_page)]


@contextmanager
def articles_api():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            query = parse_qs(urlparse(self.path).query)
            body = json.dumps(_articles(int(query["page"][0]), int(query["per_page"][0]))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def api_sourced_etl(flow, task):
    import httpx

    @task(retries=3, retry_delay_seconds=[2, 5, 15])
    def fetch_page(page: int, api_base: str, per_page: int) -> list[dict[str, Any]]:
        """Return a list of article dicts for a given page number."""
        print(f"Fetching page {page} …")
        response = httpx.get(f"{api_base}/articles", params={"page": page, "per_page": per_page}, timeout=30)
        response.raise_for_status()
        return response.json()

    @task
    def to_dataframe(raw_articles: list[list[dict[str, Any]]]) -> pd.DataFrame:
        records = [article for page in raw_articles for article in page]
        return pd.json_normalize(records)[["id", "title", "published_at", "url", "comments_count",
                                           "positive_reactions_count", "tag_list", "user.username"]]

    @task
    def save_csv(df: pd.DataFrame, path: Path) -> None:
        df.to_csv(path, index=False)
        print(f"Saved {len(df)} rows ➜ {path.name}")

    @flow(name="devto_etl", log_prints=True)
    def etl(api_base: str, pages: int, per_page: int, output_file: Path) -> None:
        raw_pages: list[list[dict[str, Any]]] = []
        for page_number in range(1, pages + 1):
            raw_pages.append(fetch_page(page_number, api_base, per_page))
        df = to_dataframe(raw_pages)
        save_csv(df, output_file)

    return etl


def test_prefects_api_sourced_etl_example_runs_the_same_swapped(tmp_path, swapped_dir):
    outcomes = {}
    with articles_api() as api:
        for label, (flow, task) in (("plain", PLAIN), ("swapped", SWAPPED)):
            (tmp_path / label).mkdir()
            out = tmp_path / label / "articles.csv"
            with prefect_logs() as logs:  # output_file given as str: Prefect casts it to Path by annotation
                state = api_sourced_etl(flow, task)(api_base=api, pages=2, per_page=3, output_file=str(out),
                                                    return_state=True)
            outcomes[label] = (state.type, state.name, out.read_bytes(), logs)
    plain, swapped = outcomes["plain"], outcomes["swapped"]
    assert plain[:2] == swapped[:2] and plain[1] == "Completed"
    assert plain[2] == swapped[2] and b"python" in plain[2]
    _same_logs(plain[3], swapped[3])
    printed = [m for _, _, m in swapped[3] if m.startswith(("Fetching page", "Saved"))]
    assert sorted(printed) == ["Fetching page 1 …", "Fetching page 2 …", "Saved 6 rows ➜ articles.csv"]

    (run_dir,) = _runs(swapped_dir, "devto_etl")
    assert _workflow(run_dir)["ywf:status"] == "completed"
    tasks = _tasks(run_dir)
    assert sorted(t["ywf:name"] for t in tasks) == ["fetch_page", "fetch_page", "save_csv", "to_dataframe"]
    assert {t["ywf:status"] for t in tasks} == {"completed"}
    (frame,) = [t for t in tasks if t["ywf:name"] == "to_dataframe"]
    produced = _values(frame["_bundle"])["return"]  # a DataFrame with list cells: still digested
    assert len(value(produced["ywf:sha256"])) == 64
    wf = load(run_dir / "workflow.json")
    names = {i: a["ywf:name"] for i, a in by_type(wf, "TaskRun").items()}
    informed = {(names[r["prov:informed"]], names[r["prov:informant"]]) for r in relations(wf, "wasInformedBy")}
    assert {("to_dataframe", "fetch_page"), ("save_csv", "to_dataframe")} <= informed


# -- methods, generators, callable objects (Prefect's docs decorate all of them) ---------------------------
def methods_flow(flow, task):
    class Model:
        factor = 3

        def __init__(self, bias: int) -> None:
            self.bias = bias

        @task
        def predict(self, x: int) -> int:
            return x * self.factor + self.bias

        @task
        @classmethod
        def scale(cls, x: int) -> int:
            return x * cls.factor

        @task
        @staticmethod
        def double(x: int) -> int:
            return 2 * x

    @flow
    def use_methods(x: int) -> list[int]:
        return [Model(1).predict(x), Model.scale(x), Model.double(x)]

    return use_methods


def test_task_methods_classmethods_and_staticmethods_behave_the_same(swapped_dir):
    results = {}
    for label, (flow, task) in (("plain", PLAIN), ("swapped", SWAPPED)):
        with prefect_logs() as logs:
            results[label] = (methods_flow(flow, task)(4), logs)
    assert results["plain"][0] == results["swapped"][0] == [13, 12, 8]
    _same_logs(results["plain"][1], results["swapped"][1])
    (run_dir,) = _runs(swapped_dir, "use-methods")
    tasks = {t["ywf:name"]: t for t in _tasks(run_dir)}
    assert set(tasks) == {"predict", "scale", "double"} and {t["ywf:status"] for t in tasks.values()} == {"completed"}
    assert tasks["scale"]["_bundle"]["entity"]  # the classmethod's result is recorded
    assert value(_values(tasks["double"]["_bundle"])["return"]["ywf:description"]) == "8"


def generator_flow(flow, task):
    @task
    def squares(n: int):
        for i in range(n):
            yield i * i
        return "done"

    @flow
    def use_generators(n: int) -> tuple[list[int], list[int]]:
        return list(squares(n)), list(squares.with_options(name="renamed-squares")(n))

    return use_generators


def test_generator_tasks_and_their_with_options_copies_yield_the_same(swapped_dir):
    results = {}
    for label, (flow, task) in (("plain", PLAIN), ("swapped", SWAPPED)):
        with prefect_logs() as logs:
            results[label] = (generator_flow(flow, task)(4), logs)
    assert results["plain"][0] == results["swapped"][0] == ([0, 1, 4, 9], [0, 1, 4, 9])
    _same_logs(results["plain"][1], results["swapped"][1])
    (run_dir,) = _runs(swapped_dir, "use-generators")
    tasks = _tasks(run_dir)
    assert sorted(t["ywf:name"] for t in tasks) == ["renamed-squares", "squares"]
    for t in tasks:  # the items yielded and the return value, never the digest of a generator object
        assert t["ywf:status"] == "completed" and int(t["ywf:yieldedCount"]) == 4
        outputs = _values(t["_bundle"])
        assert {f"yield[{i}]" for i in range(4)} | {"return"} <= set(outputs)
        assert "generator" not in json.dumps(outputs)


class Scaler:
    """A callable object used as a task (Prefect computes its cache key from the class's source)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.calls: list[int] = []

    def __call__(self, x: int) -> int:
        self.calls.append(x)
        return self.k * x


def _twice(flow, scale, key):
    @flow(name="cached-object")
    def cached_object() -> list[Any]:
        return [scale(key, return_state=True), scale(key, return_state=True)]
    return cached_object


def test_a_callable_object_task_is_cached_as_plainly(swapped_dir):
    outcomes = {}
    for label, (flow, task) in (("plain", PLAIN), ("swapped", SWAPPED)):
        scaler = Scaler(3)
        scale = task(scaler, name="scale", persist_result=True)
        key = secrets.randbits(40)  # Prefect's result storage outlives the test API: a fresh input per run

        with prefect_logs() as logs:
            states = _twice(flow, scale, key)()
        outcomes[label] = ([s.name for s in states], [s.result() - 3 * key for s in states], len(scaler.calls), logs)
        assert not [m for _, _, m in logs if "cache key" in m], logs
    assert outcomes["plain"][:3] == outcomes["swapped"][:3] == (["Completed", "Cached"], [0, 0], 1)
    _same_logs(outcomes["plain"][3], outcomes["swapped"][3])
    (run_dir,) = _runs(swapped_dir, "cached-object")
    assert sorted(t["ywf:status"] for t in _tasks(run_dir)) == ["cached", "completed"]


class Unprintable:
    """A value the recording cannot describe: its repr raises (which the describer survives) and so does
    its ``shape`` when asked whether it is an array: a provenance-side failure in every task."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    @property
    def shape(self) -> tuple[int, ...]:
        raise RuntimeError("no shape for you")


def unprintable_flow(flow, task):
    @task
    def make(n: int) -> Unprintable:
        return Unprintable(n)

    @task
    def use(u: Unprintable) -> int:
        return u.n * 2

    @flow(name="unprintable")
    def unprintable() -> int:
        return sum(use(make(i)) for i in range(4))

    return unprintable


def test_a_value_that_cannot_be_recorded_warns_once_and_only_that_value_is_dropped(swapped_dir):
    import prefect_yprov.attempts as attempts

    attempts._warned.clear()  # earlier tests in this process may have warned already
    with pytest.warns(yp.ProvenanceWarning, match="no shape for you") as caught:
        swapped = unprintable_flow(*SWAPPED)(return_state=True)
    plain = unprintable_flow(*PLAIN)(return_state=True)
    assert (swapped.name, swapped.result()) == (plain.name, plain.result()) == ("Completed", 12)
    assert len([w for w in caught if issubclass(w.category, yp.ProvenanceWarning)]) == 1  # not one per step
    (run_dir,) = _runs(swapped_dir, "unprintable")
    tasks = _tasks(run_dir)  # every attempt is still recorded, as Prefect says: completed
    assert len(tasks) == 8 and {t["ywf:status"] for t in tasks} == {"completed"}


# -- transactions: docs/v3/advanced/transactions.mdx, "Write your first transaction" (PrefectHQ/prefect) ----
def transaction_pipeline(flow, task, side_effect: Path):
    from prefect.transactions import transaction

    @task
    def write_file(contents: str):
        with open(side_effect, "w") as f:
            f.write(contents)

    @write_file.on_rollback
    def del_file(txn):
        os.unlink(side_effect)

    @task
    def quality_test():
        with open(side_effect) as f:
            data = f.readlines()
        if len(data) < 2:
            raise ValueError("Not enough data!")

    @flow
    def pipeline(contents: str):
        with transaction():
            write_file(contents)
            quality_test()

    return pipeline


def test_a_task_rolled_back_with_its_transaction_is_recorded_rolled_back(tmp_path, swapped_dir):
    finals = {}
    for label, (flow, task) in (("plain", PLAIN), ("swapped", SWAPPED)):
        side_effect = tmp_path / f"{label}-side-effect.txt"
        with prefect_logs() as logs:
            state = transaction_pipeline(flow, task, side_effect)(contents="hello world", return_state=True)
        finals[label] = (state.type.value, side_effect.exists(), [(n, lv, m.replace(label, "X")) for n, lv, m in logs])
    assert finals["plain"][:2] == finals["swapped"][:2] == ("FAILED", False)  # the hook deleted the file
    _same_logs(finals["plain"][2], finals["swapped"][2])
    (run_dir,) = _runs(swapped_dir, "pipeline")
    tasks = {t["ywf:name"]: t for t in _tasks(run_dir)}
    assert (tasks["write_file"]["ywf:prefectState"], tasks["write_file"]["ywf:rolledBack"]) == ("RolledBack", True)
    assert tasks["quality_test"]["ywf:status"] == "failed"
    assert _workflow(run_dir)["ywf:status"] == "failed"


# -- what the provenance says about the flow run: Prefect's final state ----------------------------------
def state_flows(flow, task):
    @flow(name="returns-failed")
    def returns_failed() -> Any:
        return Failed(message="the check did not pass")

    @flow(name="skipped")
    def skipped() -> Any:
        return Completed(name="Skipped", message="nothing to do")

    @flow(name="returns-cancelled")
    def returns_cancelled() -> Any:
        return Cancelled(message="stopped on purpose")

    @flow(name="times-out", timeout_seconds=1)
    def times_out() -> None:
        time.sleep(10)

    return [returns_failed, skipped, returns_cancelled, times_out]


def test_the_workflow_status_follows_prefects_final_state(swapped_dir):
    finals = {}
    for label, (flow, task) in (("plain", PLAIN), ("swapped", SWAPPED)):
        finals[label] = [(f.name, *(lambda s: (s.type.value, s.name))(f(return_state=True)))
                         for f in state_flows(flow, task)]
    assert finals["plain"] == finals["swapped"] == [
        ("returns-failed", "FAILED", "Failed"), ("skipped", "COMPLETED", "Skipped"),
        ("returns-cancelled", "CANCELLED", "Cancelled"), ("times-out", "FAILED", "TimedOut")]
    recorded = {name: _workflow(_runs(swapped_dir, name)[0]) for name, _, _ in finals["swapped"]}
    seen = {n: (w["ywf:status"], w["ywf:prefectState"]) for n, w in recorded.items()}
    assert seen == {"returns-failed": ("failed", "Failed"), "skipped": ("completed", "Skipped"),
                    "returns-cancelled": ("interrupted", "Cancelled"), "times-out": ("failed", "TimedOut")}
    assert recorded["returns-failed"]["ywf:error"] == "the check did not pass"
    assert "timeout" in recorded["times-out"]["ywf:error"].lower()
    assert "CancelledError" not in recorded["times-out"]["ywf:error"]


def test_each_flow_retry_is_its_own_workflow_run(swapped_dir):
    for flow, _ in (PLAIN, SWAPPED):
        tries: list[int] = []

        @flow(name="flaky-flow", retries=1)
        def flaky_flow(tries=tries) -> int:
            tries.append(1)
            if len(tries) == 1:
                raise RuntimeError("first attempt fails")
            return len(tries)

        state = flaky_flow(return_state=True)
        assert (state.name, state.result(), len(tries)) == ("Completed", 2, 2)
    first, second = (_workflow(d) for d in _runs(swapped_dir, "flaky-flow"))
    assert (first["ywf:status"], first["ywf:error"]) == ("failed", "RuntimeError: first attempt fails")
    assert (second["ywf:status"], int(second["ywf:runCount"])) == ("completed", 2)
    assert first["ywf:flowRunId"] == second["ywf:flowRunId"]


def test_a_flow_run_failing_parameter_validation_is_recorded_failed(swapped_dir):
    finals = []
    for flow, _ in (PLAIN, SWAPPED):
        @flow(name="typed")
        def typed(n: int) -> int:
            return n

        state = typed(n="not a number", return_state=True)
        finals.append((state.type.value, state.name))
    assert finals[0] == finals[1] and finals[0][0] == "FAILED"
    (run_dir,) = _runs(swapped_dir, "typed")
    wf = _workflow(run_dir)
    assert wf["ywf:status"] == "failed" and "validation" in wf["ywf:error"].lower()


# -- Dask: 2 worker processes x 4 threads ---------------------------------------------------------------
def _square(i: int) -> int:
    time.sleep(0.02)
    return i * i


square_plain = prefect.task(_square, name="square")
square_swapped = prefect_yprov.task(_square, name="square")


@prefect_yprov.task
def probe(i: int) -> int:
    """Logs its own number only: a run holding another task's points would show it."""
    with yp.start_run(NS, f"probe-{i}"):
        for k in range(20):
            yp.log_metric("i", float(i), step=k)
            time.sleep(0.001)
    return os.getpid()


def _dask_runner():
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "processes": True, "threads_per_worker": 4,
                                          "dashboard_address": None})


def _squares_flow(flow, square):
    @flow(name="dask-squares", task_runner=_dask_runner())
    def dask_squares() -> list[int]:
        return [f.result() for f in square.map(list(range(16)))]
    return dask_squares


def test_dask_workers_with_four_threads_each_record_their_own_bundles(swapped_dir):
    finals = {}
    for label, (flow, square) in (("plain", (prefect.flow, square_plain)),
                                  ("swapped", (prefect_yprov.flow, square_swapped))):
        with prefect_logs() as logs:
            state = _squares_flow(flow, square)(return_state=True)
        finals[label] = (state.name, state.result(), logs)
    assert finals["plain"][:2] == finals["swapped"][:2] == ("Completed", [i * i for i in range(16)])
    _same_logs(finals["plain"][2], finals["swapped"][2])
    assert any(n.startswith("prefect.task_runner") for n, _, _ in finals["swapped"][2])  # Dask's own INFO

    @prefect_yprov.flow(name="dask-probes", task_runner=_dask_runner())
    def dask_probes() -> list[int]:
        return [f.result() for f in probe.map(list(range(16)))]

    assert os.getpid() not in dask_probes()
    (run_dir,) = _runs(swapped_dir, "dask-probes")
    tasks = _tasks(run_dir)
    assert len(tasks) == 16 and {t["ywf:status"] for t in tasks} == {"completed"}
    seen = []
    for t in tasks:  # each run holds its own task's 20 points, and nothing else
        (series,) = by_type(t["_bundle"], "MetricSeries").values()
        frame = pd.read_parquet(run_dir / value(series["ywf:path"]))
        assert len(frame) == 20 and frame.value.nunique() == 1, t["_file"]
        seen.append(int(frame.value.iloc[0]))
    assert sorted(seen) == list(range(16))
    assert _workflow(run_dir)["ywf:status"] == "completed"
