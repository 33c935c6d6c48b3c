"""A SPARQL 1.1 server over HTTP: Graph Store Protocol uploads (one request per named graph) and SPARQL queries.

Tested against Oxigraph server, Virtuoso 7.2 and (through the same protocol) anything that speaks it. Credentials
(see ``yprov_wf.rdf.auth``) go out only when the server asks, as Basic or Digest; a URL with ``user:password@``
in it is refused, so they do not end up in shell histories.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yprov_wf.rdf.auth import HINT, PASSWORD_VAR, USER_VAR, Authenticator, credentials, parse_challenge
from yprov_wf.rdf.errors import EndpointError, SparqlError

if TYPE_CHECKING:
    from yprov_wf.rdf.export import RdfDataset

__all__ = ["PASSWORD_VAR", "USER_VAR", "GraphUpload", "UploadReport", "check_url", "is_graph_query", "query", "upload"]

UPLOADED, FAILED, NOT_ATTEMPTED = "uploaded", "failed", "not attempted"
#: queries whose GET URL stays below this go as GET, longer ones as a form-encoded POST (servers cap URLs)
GET_LIMIT = 2000
_AUTH = Authenticator()


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL without credentials in it; ValueError naming it otherwise."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {url!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"endpoint URL for host {parts.hostname} has credentials in it; set {USER_VAR} and "
                         f"{PASSWORD_VAR} or use ~/.netrc instead")
    return url


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str
    challenge: str | None = None


class _TimedOut(EndpointError):
    """The server accepted the connection but did not answer within the time-out."""


def _send(method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float) -> _Response:
    """One HTTP exchange, authenticated in the scheme the server asked for before; a 401 that offers Basic or
    Digest is answered once more with the credentials, when there are any (a fresh Digest nonce included)."""
    result = _exchange(method, url, body, headers, _AUTH.header(method, url), timeout)
    if result.status != 401:
        return result
    challenge = parse_challenge(result.challenge)
    if challenge is None or credentials(url) is None:
        return result
    _AUTH.remember(url, challenge)
    return _exchange(method, url, body, headers, _AUTH.header(method, url), timeout)


def _exchange(method: str, url: str, body: bytes | None, headers: dict[str, str], auth: str | None,
              timeout: float) -> _Response:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={**headers, "Authorization": auth} if auth else headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _Response(response.status, response.read(), response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        hdrs = exc.headers
        return _Response(exc.code, exc.read(), hdrs.get("Content-Type", "") if hdrs else "",
                         hdrs.get("WWW-Authenticate") if hdrs else None)


def _request(method: str, url: str, body: bytes | None, headers: dict[str, str], *, retries: int, backoff: float,
             timeout: float, sleep: Callable[[float], None] = time.sleep) -> _Response:
    """One HTTP request, retried with exponential backoff on 5xx and on connection failures.

    Returns the final response (any status); raises EndpointError when the server cannot be reached, and
    _TimedOut (not retried) when it does not answer in time.
    """
    attempt = 0
    while True:
        try:
            result = _send(method, url, body, headers, timeout)
            if result.status < 500 or result.status in (501, 505) or attempt >= retries:
                return result
        except TimeoutError:
            raise _TimedOut(f"no answer within {timeout:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise _TimedOut(f"no answer within {timeout:g} s") from None
            if attempt >= retries:
                raise EndpointError(f"cannot reach {_where(url)}: {reason} (tried {attempt + 1} times)") from None
        sleep(backoff * 2 ** attempt)
        attempt += 1


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _message(response: _Response) -> str:
    text = response.body.decode("utf-8", "replace").strip()
    return " ".join(text.split())[:300] or "(no message)"


@dataclass
class GraphUpload:
    """One graph of an upload: its name (an IRI), its size, what happened to it."""

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

    def error(self) -> str | None:
        """One line for the first failure (the server, the request form, the HTTP status); None if all went in."""
        failed = next((g for g in self.graphs if g.status == FAILED), None)
        return None if failed is None else f"upload to {self.endpoint} failed: {failed.detail}"

    def lines(self) -> list[str]:
        """A summary line; after a partial upload, one line per graph saying whether it is in."""
        done = self.uploaded()
        head = (f"uploaded {len(done)} of {len(self.graphs)} graph(s) "
                f"({sum(g.triples for g in done)} triples) to {self.endpoint}")
        if self.ok:
            return [head]
        return [head] + [f"{g.status}: {g.graph} ({g.triples} triples){': ' + g.detail if g.detail else ''}"
                         for g in self.graphs]


def upload(dataset: RdfDataset, endpoint: str, *, retries: int = 3, backoff: float = 0.5,
           timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> UploadReport:
    """Upload a dataset with the SPARQL 1.1 Graph Store HTTP Protocol, one ``PUT ?graph=IRI`` per named graph.

    The task bundles go first, the workflow's own graph last: once it is on the server, so is every bundle it
    lists. Each PUT replaces the server's graph of that name, so re-uploading a run (or uploading it from many workers
    at once, each its own bundles) is idempotent; nothing goes to the server's default graph, which stores treat
    differently (Virtuoso refuses it, Jena's union default graph hides it). Blank nodes become skolem IRIs.
    5xx answers and connection failures are retried with exponential backoff; an authentication failure, an
    unreachable server or a wrong URL stops the upload. The report lists every graph as uploaded, failed or
    not attempted: a partial upload is never silent.
    """
    check_url(endpoint)
    by_graph: dict[str, list[str]] = {}
    for s, p, o, g in dataset.skolemized().quads:
        by_graph.setdefault(g[1:-1] if g else "", []).append(f"{s} {p} {o} .\n")
    if "" in by_graph:
        raise ValueError(f"{len(by_graph['']) } triples are in the default graph; an upload sends named graphs only")
    last = [g for g in dataset.workflow_graphs if g in by_graph]  # once it is in, so is every bundle it lists
    order = [g for g in by_graph if g not in last] + last
    report = UploadReport(_where(endpoint), [GraphUpload(g, len(by_graph[g])) for g in order])
    sep = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    for item in report.graphs:
        body = "".join(by_graph[item.graph]).encode("utf-8")
        url = f"{endpoint}{sep}graph={urllib.parse.quote(item.graph, safe='')}"
        form = f"PUT ?graph=<{item.graph}>"
        try:
            response = _request("PUT", url, body, {"Content-Type": "application/n-triples"}, retries=retries,
                                backoff=backoff, timeout=timeout, sleep=sleep)
        except EndpointError as exc:
            item.status, item.detail = FAILED, f"{form}: {exc}"
            break
        if 200 <= response.status < 300:
            item.status = UPLOADED
            continue
        item.status = FAILED
        item.detail = f"{form}: HTTP {response.status}: {_message(response)}"
        if response.status in (401, 403):
            item.detail += f" ({HINT})"
        elif response.status >= 500 and response.status not in (501, 505):
            item.detail += f" (after {retries + 1} tries)"
        if response.status in (401, 403, 404, 405) or response.status >= 500:
            break  # credentials, a wrong URL, a failing server: the next graph would get the same
    return report


#: the SPARQL 1.1 Protocol query forms, in the order they are tried
GET, POST_FORM, POST_DIRECT = "GET", "POST (form)", "POST (direct)"
#: answers after which the next form is tried: the form is not supported, or the URL too long
_TRY_NEXT = frozenset((404, 405, 406, 411, 413, 414, 415, 501))


def query(endpoint: str, sparql: str, *, retries: int = 2, backoff: float = 0.5, timeout: float = 30.0,
          sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run a SPARQL query on a server with the SPARQL 1.1 Protocol: the parsed JSON results (SELECT, ASK), or
    N-Triples lines (CONSTRUCT, DESCRIBE).

    Short queries go as ``GET ?query=``, longer ones as a URL-encoded ``POST``, which every server answers
    (Virtuoso never answers the direct ``application/sparql-query`` POST); when a form is refused as such
    (405, 414, 415…) or times out, the next is tried. A rejected query raises SparqlError with the server's
    message; otherwise EndpointError names the server, each form tried and what it got.
    """
    check_url(endpoint)
    if is_graph_query(sparql):  # Turtle: Virtuoso's N-Triples and JSON cut doubles to 6 digits, not its Turtle
        accept = {"Accept": "text/turtle, application/n-triples;q=0.9, text/plain;q=0.5"}
    else:
        accept = {"Accept": "application/sparql-results+json"}
    encoded = urllib.parse.urlencode({"query": sparql})
    sep = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    forms = ([GET] if len(endpoint) + len(encoded) + 1 <= GET_LIMIT else []) + [POST_FORM, POST_DIRECT]
    tried: list[str] = []
    for form in forms:
        if form == GET:
            args: tuple = ("GET", f"{endpoint}{sep}{encoded}", None, accept)
        elif form == POST_FORM:
            args = ("POST", endpoint, encoded.encode("ascii"),
                    {**accept, "Content-Type": "application/x-www-form-urlencoded"})
        else:
            args = ("POST", endpoint, sparql.encode("utf-8"), {**accept, "Content-Type": "application/sparql-query"})
        try:
            response = _request(*args, retries=retries, backoff=backoff, timeout=timeout, sleep=sleep)
        except _TimedOut as exc:
            tried.append(f"{form}: {exc}")
            continue
        except EndpointError as exc:
            raise EndpointError(f"{exc} ({form})") from None
        if response.status in (401, 403):
            raise EndpointError(f"{_where(endpoint)} refused the query ({form}): HTTP {response.status} "
                                f"{_message(response)} ({HINT})")
        if response.status in _TRY_NEXT:
            tried.append(f"{form}: HTTP {response.status}")
            continue
        if not 200 <= response.status < 300:
            raise SparqlError(f"the server rejected the query (HTTP {response.status}, {form}): {_message(response)}")
        return _parse(response)
    raise EndpointError(f"{_where(endpoint)} did not answer the query: {'; '.join(tried)}")


def is_graph_query(sparql: str) -> bool:
    """Whether ``sparql`` is a CONSTRUCT or DESCRIBE (answered on an empty store: the parser knows the form)."""
    import pyoxigraph

    try:
        return isinstance(pyoxigraph.Store().query(sparql), pyoxigraph.QueryTriples)
    except (SyntaxError, OSError, ValueError):
        return False  # a server extension; the server will say


def _parse(response: _Response) -> Any:
    if "json" in response.content_type:
        try:
            return json.loads(response.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EndpointError(f"the server's answer is not valid JSON ({exc})") from None
    import pyoxigraph

    fmt = pyoxigraph.RdfFormat.TURTLE if "turtle" in response.content_type else pyoxigraph.RdfFormat.N_TRIPLES
    try:
        return list(pyoxigraph.parse(response.body, format=fmt))
    except SyntaxError as exc:
        kind = response.content_type or "no content type"
        raise EndpointError(f"the server answered with {kind}, not SPARQL results ({exc})") from None
