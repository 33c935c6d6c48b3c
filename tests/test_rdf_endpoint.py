"""Upload to a real Oxigraph SPARQL server (started on 127.0.0.1 by the tests) with the Graph Store Protocol,
ready queries over HTTP, and each fault: server down, 401 (credentials from the environment and netrc),
5xx retried with backoff, a partial upload reported, a bad query answered with the server's message.

The 401 and 5xx cases go through a small local proxy in front of the real server (Oxigraph has no
authentication and never answers 5xx on purpose)."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rdf_workflows import make_pipeline

from yprov_wf import rdf
from yprov_wf.rdf.endpoint import PASSWORD_VAR, USER_VAR

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "alice", "s3cr3t-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _oxigraph_binary() -> str:
    found = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
    assert Path(found).exists(), "the oxigraph server (PyPI 'oxigraph', the rdf extra) is not installed"
    return found


class OxigraphServer:
    """A real `oxigraph serve` on a free port of 127.0.0.1, in its own folder."""

    def __init__(self, location: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [_oxigraph_binary(), "serve", "--location", str(location), "--bind", f"127.0.0.1:{self.port}",
             "--union-default-graph"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/query?query=ASK%7B%7D", timeout=2).read()
                return
            except (urllib.error.URLError, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"oxigraph did not start: {self.process.stderr.read()!r}") from None
                time.sleep(0.1)

    def count(self, sparql: str) -> int:
        return int(rdf.query(f"{self.url}/query", sparql).rows[0][0])

    def clear(self) -> None:
        req = urllib.request.Request(f"{self.url}/update", data=b"CLEAR ALL", method="POST",
                                     headers={"Content-Type": "application/sparql-update"})
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class FaultProxy:
    """A proxy on 127.0.0.1 in front of the real server: answers 401 without the right Basic credentials
    (when ``require_auth``), 503 for requests number ``fail`` (a set of 1-based request numbers), forwards
    everything else. Records each request's method, path and whether it carried credentials."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.require_auth, self.fail, self.refuse = upstream, False, set(), set()
        self.requests: list[tuple[str, str, bool]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization")
                proxy.requests.append((self.command, self.path, auth is not None))
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if proxy.require_auth and auth != expected:
                    return self._reply(401, b"Unauthorized: bad or missing credentials",
                                       extra={"WWW-Authenticate": 'Basic realm="test"'})
                if len(proxy.requests) in proxy.fail:
                    return self._reply(503, b"Service Unavailable: try later")
                kind = self.command if self.command != "POST" else f"POST {self.headers.get('Content-Type')}"
                if kind in proxy.refuse:
                    return self._reply(405, b"Method Not Allowed")
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body or None, method=self.command,
                                             headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        self._reply(r.status, r.read(), r.headers.get("Content-Type", ""))
                except urllib.error.HTTPError as exc:
                    self._reply(exc.code, exc.read(), exc.headers.get("Content-Type", ""))

            def _reply(self, status: int, body: bytes, content_type: str = "text/plain",
                       extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    return make_pipeline(tmp_path_factory.mktemp("rdfendpoint"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = OxigraphServer(tmp_path_factory.mktemp("oxigraph-server"))
    yield s
    s.stop()


@pytest.fixture
def fresh(server: OxigraphServer) -> OxigraphServer:
    server.clear()
    return server


@pytest.fixture
def proxy(server: OxigraphServer):
    p = FaultProxy(server.url)
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch, tmp_path: Path):
    for name in (USER_VAR, PASSWORD_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))


def no_sleep(seconds: float) -> None:
    pass


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yprov_wf.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(cwd),
                                            **(env or {})})


GRAPHS = "SELECT (COUNT(DISTINCT ?g) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
TRIPLES = "SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } }"
WORKFLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://w3id.org/yprov-wf/ns#WorkflowRun> }"


def test_upload_keeps_named_graphs_and_is_idempotent(pipeline: Path, fresh: OxigraphServer):
    dataset = rdf.to_dataset(pipeline)
    report = rdf.upload(pipeline, f"{fresh.url}/store")
    assert report.ok and len(report.graphs) == 5 and report.graphs[-1].graph == dataset.workflow_graphs[0]
    assert report.lines() == [f"uploaded 5 of 5 graph(s) ({len(dataset.quads)} triples) to {fresh.url}/store"]
    names = rdf.query(f"{fresh.url}/query", "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }").rows
    assert sorted(r[0] for r in names) == sorted(dataset.graphs)
    total = fresh.count(TRIPLES)
    assert total == len(dataset.quads)
    assert rdf.upload(pipeline, f"{fresh.url}/store").ok
    assert fresh.count(TRIPLES) == total  # skolem IRIs: the second upload adds nothing


def test_ready_queries_over_http_match_the_embedded_store(pipeline: Path, fresh: OxigraphServer, tmp_path: Path):
    rdf.upload(pipeline, f"{fresh.url}/store")
    rdf.load(pipeline, tmp_path / "oxi")
    for call in (lambda t: rdf.runs(t, best="accuracy"), lambda t: rdf.lineage(t, "mlp_final"),
                 lambda t: rdf.uses(t, "digits_train")):
        with rdf.open_target(f"{fresh.url}/query") as remote, rdf.open_target(tmp_path / "oxi") as local:
            a, b = call(remote), call(local)
        assert a.rows and a.columns == b.columns and sorted(map(str, a.rows)) == sorted(map(str, b.rows))


def test_bad_sparql_shows_the_server_message(fresh: OxigraphServer, tmp_path: Path):
    with pytest.raises(rdf.SparqlError, match=r"^the server rejected the query \(HTTP 400, GET\): error at 1:\d+"):
        rdf.query(f"{fresh.url}/query", "SELECT * WHERE { ?s ?p }")
    result = cli("query", f"{fresh.url}/query", "SELECT * WHERE { ?s ?p }", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("yprov-wf: error: the server rejected the query (HTTP 400, GET): error at 1:")


def test_server_down_is_a_clear_error_and_nothing_is_silent(pipeline: Path, tmp_path: Path):
    url = f"http://127.0.0.1:{_free_port()}/store"
    waits: list[float] = []
    report = rdf.upload(pipeline, url, retries=3, backoff=0.25, sleep=waits.append)
    assert waits == [0.25, 0.5, 1.0]  # exponential backoff
    assert not report.ok and report.uploaded() == []
    first, *rest = report.graphs
    assert first.status == "failed" and "cannot reach http://127.0.0.1:" in first.detail and "tried 4 times" in first.detail
    assert {g.status for g in rest} == {"not attempted"} and len(rest) == 4
    result = cli("export", str(pipeline), "--endpoint", url, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.startswith("uploaded 0 of 5 graph(s) (0 triples)")
    assert len(result.stdout.strip().splitlines()) == 6 and "not attempted" in result.stdout
    (line,) = result.stderr.strip().splitlines()  # one line: the server, the request form, what happened
    assert line.startswith(f"yprov-wf: error: upload to {url} failed: PUT ?graph=<https://")
    assert "cannot reach http://127.0.0.1:" in line
    query = cli("query", url.replace("/store", "/query"), "runs", cwd=tmp_path)
    (line,) = query.stderr.strip().splitlines()
    assert query.returncode == 2 and line.startswith("yprov-wf: error: cannot reach http://127.0.0.1:")
    assert line.endswith("(GET)")


def test_401_without_credentials_stops_the_upload(pipeline: Path, fresh: OxigraphServer, proxy: FaultProxy):
    proxy.require_auth = True
    report = rdf.upload(pipeline, f"{proxy.url}/store", sleep=no_sleep)
    assert [g.status for g in report.graphs] == ["failed"] + ["not attempted"] * 4
    assert report.graphs[0].detail.startswith("PUT ?graph=<https://")
    assert "HTTP 401: Unauthorized: bad or missing credentials" in report.graphs[0].detail
    assert USER_VAR in report.graphs[0].detail
    assert len(proxy.requests) == 1 and proxy.requests[0][2] is False  # no retry of a 401
    assert fresh.count(TRIPLES) == 0


def test_credentials_from_the_environment(pipeline: Path, fresh: OxigraphServer, proxy: FaultProxy, monkeypatch,
                                          tmp_path: Path):
    proxy.require_auth = True
    monkeypatch.setenv(USER_VAR, USER)
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    report = rdf.upload(pipeline, f"{proxy.url}/store", sleep=no_sleep)
    # credentials go out once the server asked for them (its 401 names the scheme), then with every request
    assert report.ok and [sent for _, _, sent in proxy.requests] == [False] + [True] * 5
    assert fresh.count(TRIPLES) == len(rdf.to_dataset(pipeline).quads)
    result = cli("export", str(pipeline), "--endpoint", f"{proxy.url}/store", "-o", "out.trig", cwd=tmp_path,
                 env={USER_VAR: USER, PASSWORD_VAR: PASSWORD})
    assert result.returncode == 0 and result.stdout.splitlines()[-1].startswith("uploaded 5 of 5 graph(s)")
    assert PASSWORD not in result.stdout + result.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    wrong = cli("export", str(pipeline), "--endpoint", f"{proxy.url}/store", cwd=tmp_path,
                env={USER_VAR: USER, PASSWORD_VAR: "wrong"})
    assert wrong.returncode == 2 and "HTTP 401" in wrong.stderr and "wrong" not in wrong.stdout + wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


def test_credentials_from_netrc(pipeline: Path, fresh: OxigraphServer, proxy: FaultProxy, monkeypatch,
                                tmp_path: Path):
    proxy.require_auth = True
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert rdf.upload(pipeline, f"{proxy.url}/store", sleep=no_sleep).ok
    with rdf.open_target(f"{proxy.url}/query") as t:  # queries authenticate the same way
        assert len(rdf.runs(t).rows) == 3


def test_5xx_is_retried_with_backoff(pipeline: Path, fresh: OxigraphServer, proxy: FaultProxy):
    proxy.fail = {1, 2}
    waits: list[float] = []
    report = rdf.upload(pipeline, f"{proxy.url}/store", backoff=0.5, sleep=waits.append)
    assert report.ok and waits == [0.5, 1.0]
    assert len(proxy.requests) == 5 + 2
    assert fresh.count(TRIPLES) == len(rdf.to_dataset(pipeline).quads)


def test_persistent_5xx_gives_a_partial_upload_report(pipeline: Path, fresh: OxigraphServer, proxy: FaultProxy):
    proxy.fail = set(range(3, 100))  # the first two graphs go through, then the server keeps failing
    report = rdf.upload(pipeline, f"{proxy.url}/store", retries=2, sleep=no_sleep)
    assert [g.status for g in report.graphs] == ["uploaded", "uploaded", "failed", "not attempted", "not attempted"]
    assert report.graphs[2].detail.endswith(">: HTTP 503: Service Unavailable: try later (after 3 tries)")
    lines = report.lines()
    assert lines[0].startswith("uploaded 2 of 5 graph(s)") and len(lines) == 6
    assert [line.split(":")[0] for line in lines[1:]] == ["uploaded"] * 2 + ["failed"] + ["not attempted"] * 2
    assert lines[-1].startswith(f"not attempted: {rdf.to_dataset(pipeline).workflow_graphs[0]} (")
    on_server = {r[0] for r in rdf.query(f"{fresh.url}/query", "SELECT DISTINCT ?g WHERE { GRAPH ?g {?s ?p ?o} }").rows}
    assert on_server == {g.graph for g in report.uploaded()}
    assert fresh.count(WORKFLOW) == 0  # the workflow's graph goes last: its bundles are all in when it is


def test_a_refused_query_form_falls_back_to_the_next(pipeline: Path, fresh: OxigraphServer, proxy: FaultProxy):
    rdf.upload(pipeline, f"{fresh.url}/store")
    proxy.refuse = {"GET"}
    with rdf.open_target(f"{proxy.url}/query") as t:
        assert len(rdf.runs(t).rows) == 3
    assert {m for m, _, _ in proxy.requests} == {"GET", "POST"}
    proxy.refuse = {"GET", "POST application/x-www-form-urlencoded"}  # then the direct POST
    assert rdf.query(f"{proxy.url}/query", "ASK { ?s ?p ?o }") is True
    proxy.refuse.add("POST application/sparql-query")
    with pytest.raises(rdf.EndpointError) as info:
        rdf.query(f"{proxy.url}/query", "ASK { ?s ?p ?o }")
    assert str(info.value) == (f"{proxy.url}/query did not answer the query: GET: HTTP 405; POST (form): HTTP 405; "
                               "POST (direct): HTTP 405")


def test_a_server_that_never_answers_times_out_quickly_naming_each_form(tmp_path: Path):
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/sparql"
    try:
        with pytest.raises(rdf.EndpointError) as info:
            rdf.query(url, "ASK {}", timeout=0.5)
        assert str(info.value) == (f"{url} did not answer the query: GET: no answer within 0.5 s; "
                                   "POST (form): no answer within 0.5 s; POST (direct): no answer within 0.5 s")
        result = cli("query", url, "runs", "--timeout", "0.5", cwd=tmp_path)
        (line,) = result.stderr.strip().splitlines()
        assert result.returncode == 2 and line.startswith(f"yprov-wf: error: {url} did not answer the query: GET:")
    finally:
        silent.close()


def test_digest_answer_matches_rfc_2617s_worked_example(monkeypatch):
    # RFC 2617 section 3.5: the challenge, the request and the response it gives
    from yprov_wf.rdf import auth

    challenge = auth.parse_challenge('Basic realm="x", Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                                     'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert challenge is not None and challenge.scheme == "digest"  # the stronger scheme offered
    challenge.count = 1
    monkeypatch.setattr(auth.secrets, "token_hex", lambda n: "0a4f113b")
    value = auth._digest(challenge, "Mufasa", "Circle Of Life", "GET", "http://www.nowhere.org/dir/index.html")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert 'uri="/dir/index.html"' in value and "nc=00000001" in value and 'opaque="5ccc069c' in value
    assert auth.parse_challenge('Basic realm="oxigraph"').scheme == "basic"
    assert auth.parse_challenge("Bearer realm=x") is None
