"""The triple stores people run, for real on 127.0.0.1: Oxigraph server, Virtuoso 7.2 (Debian
virtuoso-opensource) and Apache Jena 4.5 TDB2 (Debian libapache-jena-java), each started once per session by
running its recipe from docs/rdf.md as written (other ports), then: the ready queries compared row by row with
the embedded store, Digest and Basic authentication, many workers uploading at once, re-uploads, bad input.

A store that is not installed or does not start fails these tests (scripts/system-deps.sh installs them); none
is skipped."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rdf_workflows import make_pipeline

from yprov_wf import rdf
from yprov_wf.rdf import tdb2
from yprov_wf.rdf.endpoint import PASSWORD_VAR, USER_VAR

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "rdf.md"
BIN = Path(sys.executable).parent  # yprov-wf and oxigraph of this environment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recipe(name: str) -> list[str]:
    """The lines of the ```sh recipe=NAME block of docs/rdf.md."""
    found = re.search(rf"^```sh recipe={re.escape(name)}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert found, f"docs/rdf.md has no recipe {name!r}"
    return found.group(1).rstrip("\n").split("\n")


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YPROV_WF_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", HOME=str(folder),
               PYTHONPATH=str(REPO), **extra)
    return env


def bash(script: str, folder: Path, env: dict[str, str], timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=timeout)


@dataclass
class Store:
    """One store started from its recipe: where to upload and to query, and what the recipe printed."""

    name: str
    folder: Path
    upload: str | None  # the Graph Store endpoint (None: Jena TDB2, loaded with tdb2.tdbloader)
    query: str  # a URL, or the TDB2 folder
    output: str
    env: dict[str, str] = field(default_factory=dict)
    stop: str = ""

    def target(self) -> rdf.Target:
        if self.upload is None:
            return rdf.Target(runner=tdb2.runner(Path(self.query), [str(self.folder / "bin" / "tdb2.tdbquery")]))
        return rdf.open_target(self.query, timeout=60)


def start(name: str, folder: Path, prov: Path, **ports: str) -> Store:
    """Run the recipe, all but its last line (which stops the server), in ``folder`` with a copy of ``prov``."""
    shutil.copytree(prov, folder / "prov")
    lines = recipe(name)
    env = _env(folder, **ports)
    done = bash("\n".join(lines[:-1]), folder, env)
    assert done.returncode == 0, f"the {name} recipe of docs/rdf.md failed:\n{done.stdout}\n{done.stderr}"
    if name == "oxigraph":
        url = f"http://127.0.0.1:{ports['PORT']}"
        return Store(name, folder, f"{url}/store", f"{url}/query", done.stdout, env, lines[-1])
    if name == "virtuoso":
        url = f"http://127.0.0.1:{ports['HTTP_PORT']}"
        return Store(name, folder, f"{url}/sparql-graph-crud-auth", f"{url}/sparql", done.stdout, env, lines[-1])
    return Store(name, folder, None, str(folder / "tdb"), done.stdout, env, lines[-1])


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Path:
    return make_pipeline(tmp_path_factory.mktemp("stores-pipeline"))


@pytest.fixture(scope="session")
def embedded(pipeline: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stores-embedded") / "oxi"
    rdf.load(pipeline, path)
    return path


def _session_store(name: str, tmp_path_factory, pipeline: Path, **ports: str):
    store = start(name, tmp_path_factory.mktemp(name), pipeline, **ports)
    yield store
    bash(store.stop, store.folder, store.env, timeout=60)


@pytest.fixture(scope="session")
def oxigraph(tmp_path_factory, pipeline: Path):
    yield from _session_store("oxigraph", tmp_path_factory, pipeline, PORT=str(_free_port()))


@pytest.fixture(scope="session")
def virtuoso(tmp_path_factory, pipeline: Path):
    yield from _session_store("virtuoso", tmp_path_factory, pipeline, HTTP_PORT=str(_free_port()),
                              SQL_PORT=str(_free_port()))


@pytest.fixture(scope="session")
def jena(tmp_path_factory, pipeline: Path):
    yield from _session_store("jena", tmp_path_factory, pipeline)


@pytest.fixture(params=["oxigraph", "virtuoso", "jena"])
def store(request) -> Store:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["oxigraph", "virtuoso"])
def server(request) -> Store:
    return request.getfixturevalue(request.param)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch, tmp_path: Path):
    for name in (USER_VAR, PASSWORD_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yprov_wf.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_each_recipe_loads_the_run_and_answers_runs(store: Store, pipeline: Path):
    dataset = rdf.to_dataset(pipeline)
    if store.upload is not None:
        assert f"uploaded 5 of 5 graph(s) ({len(dataset.quads)} triples) to {store.upload}" in store.output
    header, *rows = [line for line in store.output.splitlines() if line.startswith(("run ", "https://"))]
    assert header.split() == ["run", "workflow", "task", "experiment", "status", "start", "params", "metrics"]
    assert len(rows) == 3 and all(" pipe " in r for r in rows)  # the workflow's name: its graph arrived


@pytest.mark.parametrize("ready", ["runs", "lineage", "uses"])
def test_ready_queries_give_the_embedded_store_rows(store: Store, embedded: Path, ready: str):
    calls = {"runs": [lambda t: rdf.runs(t)],  # --best only sorts these rows, in Python
             "lineage": [lambda t: rdf.lineage(t, "mlp_final")],
             "uses": [lambda t: rdf.uses(t, "digits_train"), lambda t: rdf.uses(t, "split.npz")]}[ready]
    for call in calls:
        with rdf.open_target(embedded) as local:
            expected = call(local)
        with store.target() as remote:
            got = call(remote)
        assert expected.rows and got.columns == expected.columns
        if ready == "uses":  # ORDER BY workflow, task, activity: rows of one activity may come in any order
            assert sorted(map(str, got.rows)) == sorted(map(str, expected.rows))
        else:
            assert got.rows == expected.rows


def test_typed_values_print_the_same_everywhere(store: Store, embedded: Path):
    # booleans (Virtuoso: 1/0), ints, dateTimes (Jena keeps +00:00, the others Z), doubles
    sparql = """PREFIX prov: <http://www.w3.org/ns/prov#> PREFIX ywf: <https://w3id.org/yprov-wf/ns#>
      SELECT ?run ?all ?rank ?start WHERE { ?run a ywf:MLRun ; ywf:collectAllProcesses ?all ; ywf:rank ?rank ;
      prov:startedAtTime ?start } ORDER BY ?run"""
    with rdf.open_target(embedded) as local, store.target() as remote:
        expected, got = local.select(sparql), remote.select(sparql)
        assert got.rows == expected.rows and len(got.rows) == 3
        assert {r[1] for r in got.rows} == {"false"} and all(r[3].endswith("Z") for r in got.rows)
        graph = "PREFIX ywf: <https://w3id.org/yprov-wf/ns#> CONSTRUCT { ?m ywf:last ?v } WHERE { ?m ywf:last ?v }"
        assert sorted(remote.triples(graph)) == sorted(local.triples(graph))
        assert "0.9966666666666667" in {o for _, _, o in remote.triples(graph)}  # every digit of the double


def _graph_sizes(store: Store) -> dict[str, int]:
    with store.target() as t:
        table = t.select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
    return {g: int(n) for g, n in table.rows}


def _expected_sizes(*pipelines: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for p in pipelines:
        for _, _, _, g in rdf.to_dataset(p).quads:
            sizes[g[1:-1]] = sizes.get(g[1:-1], 0) + 1
    return sizes


def test_many_workers_upload_at_once_and_nothing_is_lost(server: Store, tmp_path: Path, monkeypatch):
    monkeypatch.setenv(USER_VAR, "dba")
    monkeypatch.setenv(PASSWORD_VAR, "dba")
    runs = [make_pipeline(tmp_path / f"w{i}", lrs=(0.1 * (i + 1),)) for i in range(6)]
    # each run's task files separately (as workers upload their own bundles), the workflow files, and one
    # run twice at the same time: 6 x (3 task files + workflow.json) + 4 requests for the duplicate
    jobs = [f for run in runs for f in sorted(run.rglob("*.json"))]
    jobs += sorted(runs[0].rglob("*.json"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        reports = list(pool.map(lambda f: rdf.upload(f, server.upload, retries=5), jobs))
    assert all(r.ok for r in reports), [r.lines() for r in reports if not r.ok]
    sizes = _graph_sizes(server)
    expected = _expected_sizes(*runs)
    assert {g: sizes.get(g) for g in expected} == expected  # each graph complete, counted
    again = [rdf.upload(run, server.upload) for run in runs[:2]]  # re-uploading a run is idempotent
    assert all(r.ok for r in again) and {g: n for g, n in _graph_sizes(server).items() if g in expected} == expected


def test_virtuoso_digest_auth_and_bad_input_are_one_line(virtuoso: Store, pipeline: Path, tmp_path: Path):
    env = {**virtuoso.env, "HOME": str(tmp_path), USER_VAR: "dba", PASSWORD_VAR: "wrong-pw"}
    wrong = cli("export", str(pipeline), "--endpoint", virtuoso.upload, cwd=tmp_path, env=env)
    assert wrong.returncode == 2 and "wrong-pw" not in wrong.stdout + wrong.stderr
    (line,) = wrong.stderr.strip().splitlines()
    assert line.startswith(f"yprov-wf: error: upload to {virtuoso.upload} failed: PUT ?graph=<https://")
    assert "HTTP 401" in line and USER_VAR in line
    assert wrong.stdout.startswith("uploaded 0 of 5 graph(s)") and wrong.stdout.count("not attempted: ") == 4
    # no credentials at all: the same, after one request
    bare = cli("export", str(pipeline), "--endpoint", virtuoso.upload, cwd=tmp_path,
               env={k: v for k, v in env.items() if k not in (USER_VAR, PASSWORD_VAR)})
    assert bare.returncode == 2 and "HTTP 401" in bare.stderr
    # a wrong URL: what the store says (Virtuoso: 501 Not Implemented), named
    bad_url = virtuoso.upload.replace("sparql-graph-crud-auth", "no-such-endpoint")
    missing = cli("export", str(pipeline), "--endpoint", bad_url, cwd=tmp_path, env=env)
    (line,) = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and "HTTP 501" in line and bad_url in line and "tries" not in line  # not retried
    # the open endpoint works after the recipe's GRANT, without credentials
    open_url = virtuoso.upload.replace("-auth", "")
    ok = cli("export", str(pipeline), "--endpoint", open_url, cwd=tmp_path,
             env={k: v for k, v in env.items() if k not in (USER_VAR, PASSWORD_VAR)})
    assert ok.returncode == 0 and ok.stdout.startswith("uploaded 5 of 5 graph(s)")
    # queries: a query refused as such by its text
    query = cli("query", virtuoso.query, "SELECT * WHERE { ?s ?p }", cwd=tmp_path, env=env)
    (line,) = query.stderr.strip().splitlines()
    assert query.returncode == 2 and line.startswith("yprov-wf: error: the server rejected the query (HTTP 400, GET)")


def test_long_queries_go_as_form_posts(server: Store):
    from urllib.parse import urlencode

    from yprov_wf.rdf.endpoint import GET_LIMIT

    def sparql(entities: list[str]) -> str:
        values = " ".join(f"<{e}>" for e in entities)
        return f"SELECT ?e ?t WHERE {{ VALUES ?e {{ {values} }} ?e a ?t }} ORDER BY ?e ?t"

    padding = [f"https://example.org/nothing/{i:05d}" for i in range(300)]
    with server.target() as t:
        runs = [r[0] for r in t.select(
            "SELECT ?r WHERE { ?r a <https://w3id.org/yprov-wf/ns#MLRun> } ORDER BY ?r LIMIT 3").rows]
        short, long = sparql(runs), sparql(runs + padding)
        assert len(urlencode({"query": long})) > GET_LIMIT > len(urlencode({"query": short}))
        assert t.select(long).rows == t.select(short).rows and len(t.select(short).rows) >= 6


def test_jena_tdb2_folder_from_the_command_line(jena: Store, tmp_path: Path):
    env = {**jena.env, "HOME": str(tmp_path)}
    tdb = str(jena.folder / "tdb")
    without = cli("query", tdb, "runs", cwd=tmp_path, env={**env, "PATH": f"{BIN}:/usr/bin:/bin"})
    (line,) = without.stderr.strip().splitlines()
    assert without.returncode == 2 and line == ("yprov-wf: error: a TDB2 folder needs Jena's tdb2.tdbquery: put it on "
                                                "PATH or set YPROV_WF_TDB2_QUERY")
    # loading the recipe's skolemized file again adds nothing: each graph is as the export made it
    again = bash("bin/tdb2.tdbloader --loc tdb prov.nq", jena.folder, env)
    assert again.returncode == 0, again.stderr
    assert _graph_sizes(jena) == _expected_sizes(jena.folder / "prov")
    command = {**env, "YPROV_WF_TDB2_QUERY": str(jena.folder / "bin" / "tdb2.tdbquery")}
    bad = cli("query", tdb, "SELECT * WHERE { ?s ?p }", cwd=tmp_path, env=command)
    (line,) = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and line.startswith(f"yprov-wf: error: tdb2.tdbquery on {tdb} failed: ")
