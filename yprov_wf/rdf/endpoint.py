"""A SPARQL 1.1 server over HTTP: Graph Store Protocol uploads (one request per graph) and SPARQL queries.

Credentials come from ``YPROV_WF_SPARQL_USER`` / ``YPROV_WF_SPARQL_PASSWORD`` or else from ``~/.netrc`` (or the
file ``$NETRC`` names) for the server's host, and are sent as HTTP Basic authentication only: never printed,
logged or written. A URL with ``user:password@`` in it is refused, so they do not end up in shell histories.
"""

from __future__ import annotations

import base64
import json
import netrc
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyoxigraph

from yprov_wf.rdf.errors import EndpointError, SparqlError

if TYPE_CHECKING:
    from yprov_wf.rdf.export import RdfDataset

USER_VAR = "YPROV_WF_SPARQL_USER"
PASSWORD_VAR = "YPROV_WF_SPARQL_PASSWORD"
UPLOADED, FAILED, NOT_ATTEMPTED = "uploaded", "failed", "not attempted"


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL without credentials in it; ValueError naming it otherwise."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {url!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"endpoint URL for host {parts.hostname} has credentials in it; set {USER_VAR} and "
                         f"{PASSWORD_VAR} or use ~/.netrc instead")
    return url


def _auth_header(url: str) -> str | None:
    """The Basic ``Authorization`` value for ``url``'s host, from the environment or netrc; None without any."""
    user, password = os.environ.get(USER_VAR), os.environ.get(PASSWORD_VAR)
    if user is None:
        path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
        if path.is_file():
            try:
                found = netrc.netrc(str(path)).authenticators(urllib.parse.urlsplit(url).hostname or "")
            except (netrc.NetrcParseError, OSError) as exc:
                raise EndpointError(f"cannot read {path}: {type(exc).__name__}") from None
            if found:
                user, password = found[0], found[2]
    if user is None:
        return None
    token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
    return f"Basic {token}"


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str


def _request(method: str, url: str, body: bytes | None, headers: dict[str, str], *, retries: int, backoff: float,
             timeout: float, sleep: Callable[[float], None] = time.sleep) -> _Response:
    """One HTTP request, retried with exponential backoff on 5xx and on connection failures.

    Returns the final response (any status); raises EndpointError when the server cannot be reached.
    """
    auth = _auth_header(url)
    if auth:
        headers = {**headers, "Authorization": auth}
    attempt = 0
    while True:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return _Response(response.status, response.read(), response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            result = _Response(exc.code, exc.read(), exc.headers.get("Content-Type", "") if exc.headers else "")
            if exc.code < 500 or attempt >= retries:
                return result
        except (urllib.error.URLError, OSError) as exc:
            if attempt >= retries:
                reason = getattr(exc, "reason", exc)
                raise EndpointError(f"cannot reach {_where(url)}: {reason} (tried {attempt + 1} times)") from None
        sleep(backoff * 2 ** attempt)
        attempt += 1


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _message(response: _Response) -> str:
    text = response.body.decode("utf-8", "replace").strip()
    return " ".join(text.split())[:500] or "(no message)"


@dataclass
class GraphUpload:
    """One graph of an upload: its name (``default`` or an IRI), its size, what happened to it."""

    graph: str
    triples: int
    status: str = NOT_ATTEMPTED
    detail: str = ""


@dataclass
class UploadReport:
    """What an upload did, graph by graph: every graph is listed as uploaded, failed or not attempted."""

    endpoint: str
    graphs: list[GraphUpload] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(g.status == UPLOADED for g in self.graphs)

    def uploaded(self) -> list[GraphUpload]:
        return [g for g in self.graphs if g.status == UPLOADED]

    def lines(self) -> list[str]:
        """A summary line, then one line per graph that was not uploaded."""
        done = self.uploaded()
        head = (f"uploaded {len(done)} of {len(self.graphs)} graph(s) "
                f"({sum(g.triples for g in done)} triples) to {self.endpoint}")
        return [head] + [f"{g.status}: {g.graph} ({g.triples} triples){': ' + g.detail if g.detail else ''}"
                         for g in self.graphs if g.status != UPLOADED]


def upload(dataset: RdfDataset, endpoint: str, *, retries: int = 3, backoff: float = 0.5,
           timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> UploadReport:
    """Upload a dataset with the SPARQL 1.1 Graph Store HTTP Protocol, keeping named graphs.

    Each named graph is sent with ``PUT ?graph=IRI`` (it replaces the server's graph of that name), then the
    default graph with ``POST ?default`` (added to it). Blank nodes become skolem IRIs (their labels are content
    hashes), so uploading a run twice changes nothing. 5xx answers and connection failures are retried with
    exponential backoff; an authentication failure or an unreachable server stops the upload. The report lists
    every graph as uploaded, failed or not attempted: a partial upload is never silent.
    """
    check_url(endpoint)
    by_graph: dict[str, list[str]] = {}
    for s, p, o, g in dataset.skolemized().quads:
        by_graph.setdefault(g[1:-1] if g else "default", []).append(f"{s} {p} {o} .\n")
    order = [g for g in by_graph if g != "default"] + (["default"] if "default" in by_graph else [])
    report = UploadReport(_where(endpoint), [GraphUpload(g, len(by_graph[g])) for g in order])
    sep = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    for item in report.graphs:
        body = "".join(by_graph[item.graph]).encode("utf-8")
        if item.graph == "default":
            method, url = "POST", f"{endpoint}{sep}default"
        else:
            method, url = "PUT", f"{endpoint}{sep}graph={urllib.parse.quote(item.graph, safe='')}"
        try:
            response = _request(method, url, body, {"Content-Type": "application/n-triples"}, retries=retries,
                                backoff=backoff, timeout=timeout, sleep=sleep)
        except EndpointError as exc:
            item.status, item.detail = FAILED, str(exc)
            break
        if 200 <= response.status < 300:
            item.status = UPLOADED
            continue
        item.status = FAILED
        item.detail = f"HTTP {response.status}: {_message(response)}"
        if response.status in (401, 403):
            item.detail += f" (credentials: {USER_VAR}/{PASSWORD_VAR} or ~/.netrc)"
            break
        if response.status >= 500:
            item.detail += f" (after {retries + 1} tries)"
            break
    return report


def query(endpoint: str, sparql: str, *, retries: int = 2, backoff: float = 0.5, timeout: float = 60.0) -> Any:
    """Run a SPARQL query on a server (SPARQL 1.1 Protocol, POST): the parsed JSON results for SELECT and ASK,
    a list of pyoxigraph triples for CONSTRUCT and DESCRIBE. A rejected query raises SparqlError with the
    server's own message."""
    check_url(endpoint)
    accept = "application/sparql-results+json, application/n-triples;q=0.9"
    response = _request("POST", endpoint, sparql.encode("utf-8"),
                        {"Content-Type": "application/sparql-query", "Accept": accept},
                        retries=retries, backoff=backoff, timeout=timeout)
    if response.status in (401, 403):
        raise EndpointError(f"{_where(endpoint)} refused the query: HTTP {response.status} {_message(response)} "
                            f"(credentials: {USER_VAR}/{PASSWORD_VAR} or ~/.netrc)")
    if not 200 <= response.status < 300:
        raise SparqlError(f"the server rejected the query (HTTP {response.status}): {_message(response)}")
    if "json" in response.content_type:
        return json.loads(response.body)
    return list(pyoxigraph.parse(response.body, format=pyoxigraph.RdfFormat.N_TRIPLES))
