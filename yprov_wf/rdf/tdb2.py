"""Apache Jena TDB2 without a server: queries through Jena's own ``tdb2.tdbquery`` command-line tool.

A TDB2 database folder (``Data-0001/`` and ``tdb.lock`` in it, as ``tdb2.tdbloader --loc DIR`` makes) is a query
target like an Oxigraph store: ``yprov-wf query DIR runs``. The default graph of each query is the union of the
named graphs (``tdb:unionDefaultGraph``), as on every other target; yprov-wf writes nothing to the default graph.
The command is ``tdb2.tdbquery`` on PATH (Jena's distribution ships it), or the command line in
``YPROV_WF_TDB2_QUERY`` (split like a shell would, never run through one), e.g. a ``java -cp … tdb2.tdbquery``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yprov_wf.rdf.errors import EndpointError, SparqlError

QUERY_VAR = "YPROV_WF_TDB2_QUERY"


def is_tdb2(path: Path) -> bool:
    """Whether ``path`` is a TDB2 database folder."""
    path = Path(path)
    return path.is_dir() and (path / "tdb.lock").exists() and any(path.glob("Data-[0-9]*"))


def command() -> list[str]:
    """The ``tdb2.tdbquery`` command line; EndpointError saying how to provide it when there is none."""
    text = os.environ.get(QUERY_VAR)
    if text:
        argv = shlex.split(text)
        if argv and shutil.which(argv[0]):
            return argv
        raise EndpointError(f"{QUERY_VAR}: {argv[0] if argv else text!r} is not a command")
    found = shutil.which("tdb2.tdbquery")
    if found is None:
        raise EndpointError(f"a TDB2 folder needs Jena's tdb2.tdbquery: put it on PATH or set {QUERY_VAR}")
    return [found]


def runner(location: Path, argv: list[str] | None = None, timeout: float = 300.0) -> Callable[[str], Any]:
    """A ``Target`` runner for the TDB2 database at ``location``: SPARQL → JSON results, or triples for
    CONSTRUCT (asked for as Turtle, which keeps every digit)."""
    base = argv or command()
    location = Path(location)

    def run(sparql: str) -> Any:
        import pyoxigraph

        from yprov_wf.rdf.endpoint import is_graph_query

        graph = is_graph_query(sparql)
        with tempfile.NamedTemporaryFile("w", suffix=".rq", encoding="utf-8", delete=False) as f:
            f.write(sparql)
        try:
            done = subprocess.run([*base, "--loc", str(location), "--set", "tdb:unionDefaultGraph=true",
                                   "--results", "TTL" if graph else "JSON", "--query", f.name],
                                  capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise EndpointError(f"tdb2.tdbquery on {location} did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise EndpointError(f"cannot run {base[0]}: {exc}") from None
        finally:
            os.unlink(f.name)
        if done.returncode != 0:
            message = " ".join(done.stderr.decode("utf-8", "replace").split())[:300] or f"exit {done.returncode}"
            raise SparqlError(f"tdb2.tdbquery on {location} failed: {message}")
        if graph:
            try:
                return list(pyoxigraph.parse(done.stdout, format=pyoxigraph.RdfFormat.TURTLE))
            except SyntaxError as exc:
                raise EndpointError(f"tdb2.tdbquery wrote no Turtle: {exc}") from None
        try:
            return json.loads(done.stdout)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EndpointError(f"tdb2.tdbquery wrote no JSON results: {exc}") from None

    return run
