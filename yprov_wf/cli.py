"""The ``yprov-wf`` command: argument parsing and printing; the work is done by the library.

Bad input prints one line on stderr and exits 2; ``validate`` exits 1 when it has findings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from yprov_wf import __version__


class _UsageError(Exception):
    """A user mistake: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; we print one line
        raise _UsageError(message)


def commands() -> list[str]:
    """The names of the ``yprov-wf`` subcommands."""
    (sub,) = [a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            raise _UsageError(f"a command is required ({', '.join(commands())}); see --help")
        return args.func(args)
    except _UsageError as exc:
        print(f"yprov-wf: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"yprov-wf: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # malformed input the readers did not foresee: one line, never a traceback
        if os.environ.get("YPROV_WF_DEBUG"):
            raise
        print(f"yprov-wf: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__


def _build_parser() -> _Parser:
    p = _Parser(prog="yprov-wf", description="Inspect, merge, validate and recover yprov-wf provenance.")
    p.add_argument("--version", action="version", version=f"yprov-wf {__version__}")
    sub = p.add_subparsers(parser_class=_Parser, metavar="COMMAND")

    s = sub.add_parser("show", help="the tree workflow → tasks → runs with status, duration, last metrics")
    s.add_argument("dir", type=Path, help="a provenance folder, a workflow's folder or one workflow run")
    s.set_defaults(func=_show)

    s = sub.add_parser("merge", help="one PROV-JSON document with the workflow and every task bundle")
    s.add_argument("dir", type=Path)
    s.add_argument("-o", "--output", type=Path, required=True, help="the PROV-JSON file to write")
    s.set_defaults(func=_merge)

    s = sub.add_parser("validate", help="parse with prov, check referenced files and digests (exit 1 on findings)")
    s.add_argument("path", type=Path, help="a provenance folder, a workflow run, or one PROV-JSON file")
    s.set_defaults(func=_validate)

    s = sub.add_parser("recover", help="close runs whose process died, from their journals and metric logs")
    s.add_argument("dir", type=Path)
    s.set_defaults(func=_recover)
    _add_viz_commands(sub)

    _add_crate_parser(sub)
    _add_rdf_commands(sub)
    return p


def _existing(path: Path) -> Path:
    if not path.exists():
        raise _UsageError(f"{path} does not exist")
    return path


def _show(args: argparse.Namespace) -> int:
    from yprov_wf.recording.agents import describe as describe_agents
    from yprov_wf.recording.summary import load_workflow_runs

    runs = load_workflow_runs(_existing(args.dir))
    if not runs:
        raise _UsageError(f"no workflow run found under {args.dir}")
    for wf, tasks, root in runs:
        print(f"{wf.name}  {wf.workflow_id}  {wf.status}  {_duration(wf.started, wf.ended)}  ({root})")
        if wf.agents:
            print(f"    agents: {describe_agents(wf.agents)}")
        for i, task in enumerate(tasks):
            last_task = i == len(tasks) - 1
            branch, pad = ("└── ", "    ") if last_task else ("├── ", "│   ")
            attempt = f" attempt {task.attempt}" if task.attempt > 1 else ""
            error = f"  {task.error.splitlines()[0]}" if task.error else ""
            own = [a for a in task.agents if a not in wf.agents]  # a launcher of the task's own process
            via = f"  via {describe_agents(own)}" if own else ""
            print(f"{branch}{task.name} [{task.task_id}]{attempt}  {task.status}  "
                  f"{_duration(task.started, task.ended)}{via}{error}")
            for j, run in enumerate(task.runs):
                rb = "└── " if j == len(task.runs) - 1 else "├── "
                metrics = "  ".join(
                    f"{s.key}{'@' + s.context if s.context else ''}={_number(s.last)}" for s in run.series[:8]
                )
                more = f"  (+{len(run.series) - 8} more)" if len(run.series) > 8 else ""
                print(f"{pad}{rb}run {run.run_id}  {run.status}  {_duration(run.started, run.ended)}"
                      f"{'  ' + metrics if metrics else ''}{more}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from yprov_wf.prov.merge import write_merged

    n = write_merged(_existing(args.dir), args.output)
    print(f"wrote {args.output} ({n} bundles)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from yprov_wf.layout import find_workflow_dirs
    from yprov_wf.prov.validate import validate

    path = _existing(args.path)
    if path.is_dir() and not find_workflow_dirs(path):
        raise _UsageError(f"no workflow run found under {path}")
    findings = validate(path)
    for f in findings:
        print(f)
    print(f"{len(findings)} finding(s)" if findings else "valid")
    return 1 if findings else 0


def _recover(args: argparse.Namespace) -> int:
    from yprov_wf.recording.recover import recover

    path = _existing(args.dir)
    if not path.is_dir():
        raise _UsageError(f"{path} is not a folder (recover takes a provenance folder or a workflow run folder)")
    report = recover(path)
    print(f"recovered {len(report.recovered_tasks)} task(s) and {len(report.recovered_workflows)} workflow run(s)")
    for task_id in report.still_running:
        print(f"left alone (its process is still running): {task_id}")
    if report.unreadable:
        print(f"yprov-wf: error: {len(report.unreadable)} journal(s) could not be recovered and were left as "
              f"they are: {'; '.join(report.unreadable)}", file=sys.stderr)
        return 2
    return 0


# -- graph, report, compare (yprov_wf.viz) ---------------------------------------------------------------

def _add_viz_commands(sub) -> None:
    s = sub.add_parser("graph", help="the provenance graph of one workflow run as SVG (or DOT: -o FILE.dot)")
    s.add_argument("dir", type=Path, help="one workflow run (or a folder holding exactly one)")
    s.add_argument("--level", choices=("workflow", "task", "run"), default="task",
                   help="workflow: tasks and data flow; task (default): runs, params, metrics, models; "
                        "run: every param and series a node")
    s.add_argument("-o", "--output", type=Path, required=True, help="FILE.svg (needs Graphviz) or FILE.dot")
    s.set_defaults(func=_graph)

    s = sub.add_parser("report", help="one self-contained HTML report (overview, graph, plots, comparison)")
    s.add_argument("dirs", type=Path, nargs="+", metavar="DIR")
    s.add_argument("-o", "--output", type=Path, required=True, help="the .html file to write")
    s.add_argument("--metric", help="rank runs by this metric (key or key@context)")
    s.add_argument("--mode", choices=("min", "max"), help="lower (min) or higher (max) is better")
    s.add_argument("--no-graph", action="store_true", help="leave the provenance graph out")
    s.set_defaults(func=_report)

    s = sub.add_parser("compare", help="ML runs side by side: params that differ, final metrics, best run")
    s.add_argument("dirs", type=Path, nargs="+", metavar="DIR")
    s.add_argument("--metric", help="pick the best run by this metric (key or key@context)")
    s.add_argument("--mode", choices=("min", "max"), default="min", help="lower (min, default) or higher is better")
    s.set_defaults(func=_compare)


def _graph(args: argparse.Namespace) -> int:
    from yprov_wf.viz.graph import DotNotFoundError, GraphRenderError, workflow_graph, write_graph

    out: Path = args.output
    if out.suffix.lower() not in (".svg", ".dot", ".gv"):
        raise _UsageError(f"output {str(out)!r} must end in .svg, .dot or .gv")
    graph = _needs_viz(lambda: workflow_graph(_existing(args.dir), args.level))
    try:
        dot, svg = write_graph(graph, out.with_suffix(".dot") if out.suffix.lower() == ".svg" else out,
                               svg=out.suffix.lower() == ".svg")
    except (DotNotFoundError, GraphRenderError) as exc:
        print(f"yprov-wf: wrote {out.with_suffix('.dot')} but no SVG: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {svg or dot}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from yprov_wf.viz.report import write_report

    for d in args.dirs:
        _existing(d)
    out = _needs_viz(lambda: write_report(args.dirs, args.output, metric=args.metric, mode=args.mode,
                                          graph=not args.no_graph))
    print(f"wrote {out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from yprov_wf.viz.compare import compare, format_table, summaries
    from yprov_wf.viz.runs import load_workflows, run_views

    for d in args.dirs:
        _existing(d)
    views = run_views(load_workflows(args.dirs))
    if not views:
        raise _UsageError(f"no ML run found under {', '.join(map(str, args.dirs))}")
    print(format_table(compare(summaries(views), args.metric, args.mode)))
    return 0


def _needs_viz(make):
    try:
        return make()
    except ModuleNotFoundError as exc:
        if exc.name != "graphviz":
            raise
        raise _UsageError("the graphviz package is missing: pip install 'yprov-wf[viz]'") from None


# -- crate (Workflow Run RO-Crate export) ------------------------------------------------------------------
def _add_crate_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("crate", help="a Workflow Run RO-Crate zip (Provenance Run Crate) of one workflow run")
    s.add_argument("dir", type=Path, help="one workflow run folder (or a folder holding exactly one)")
    s.add_argument("-o", "--output", type=Path, required=True, help="the .zip to write (must not exist)")
    s.add_argument("--license", help="the crate's license: an SPDX identifier (CC-BY-4.0), a URL or a short "
                                     "text (default: the crate says 'No license given')")
    s.add_argument("--workflow-file", type=Path, help="the workflow's definition (Snakefile, flow or script) "
                                                      "when the run did not record it")
    s.set_defaults(func=_crate)


def _crate(args: argparse.Namespace) -> int:
    from yprov_wf.crate import write_crate

    try:
        summary = write_crate(_existing(args.dir), args.output, license=args.license,
                              workflow_file=args.workflow_file)
    except FileExistsError as exc:
        raise _UsageError(str(exc)) from None
    print(f"wrote {summary.path} ({summary.files} files, {summary.entities} entities)")
    for line in summary.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    seconds = (end if end is not None else time.time()) - start
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


def _number(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


# -- PROV-O export, triple stores and SPARQL (yprov_wf.rdf) ---------------------------------------------------

_READY_QUERIES = ("lineage", "runs", "uses")
_CELL_WIDTH = 80  # longer table cells (a run's every metric) are cut with "…"; --json has them whole


def _add_rdf_commands(sub) -> None:
    s = sub.add_parser("export", help="PROV-O (RDF) to a file, an on-disk Oxigraph store or a SPARQL server")
    s.add_argument("dir", type=Path, help="a provenance folder, a workflow run, or one (merged) PROV-JSON file")
    s.add_argument("--format", choices=("trig", "nquads", "jsonld", "turtle"), default=None,
                   help="output format (default: from the -o extension, else trig); turtle merges the named graphs")
    s.add_argument("-o", "--output", type=Path, help="the RDF file to write")
    s.add_argument("--store", type=Path, help="an Oxigraph store folder to load into (created if missing)")
    s.add_argument("--endpoint", help="a SPARQL 1.1 Graph Store endpoint URL to upload to (named graphs kept)")
    s.add_argument("--skolemize", action="store_true",
                   help="-o: blank nodes as stable skolem IRIs (as --store and --endpoint send them), so loading "
                        "the file twice into a store, e.g. with tdb2.tdbloader, adds nothing")
    s.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                   help="--endpoint: seconds to wait for the server's answer to each request (default 60)")
    s.set_defaults(func=_export)

    s = sub.add_parser("query", help="SPARQL, or a ready query (lineage, runs, uses), on a store, server or files")
    s.add_argument("target", help="an Oxigraph store folder, an http(s) SPARQL endpoint, an RDF file or PROV-JSON")
    s.add_argument("query", help="SPARQL text, or lineage FILE_OR_MODEL, runs, uses DATASET")
    s.add_argument("argument", nargs="?", help="what lineage or uses is about")
    s.add_argument("--best", metavar="METRIC", help="runs: only runs with METRIC (key or key@context), best first")
    s.add_argument("--minimize", action="store_true", help="runs --best: lowest final value first")
    s.add_argument("--json", action="store_true",
                   help=f"print JSON instead of a table (whose cells stop at {_CELL_WIDTH} characters)")
    s.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="an endpoint URL: seconds to wait for each answer before trying the next form (default 30)")
    s.set_defaults(func=_query)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _rdf():
    """The yprov_wf.rdf package, or a usage error naming the extra to install."""
    try:
        from yprov_wf import rdf
    except ImportError as exc:
        raise _UsageError(f"this command needs the rdf extra ({exc.name} is missing): pip install 'yprov-wf[rdf]'") from None
    return rdf


def _export(args: argparse.Namespace) -> int:
    import warnings

    if args.output is None and args.store is None and args.endpoint is None:
        raise _UsageError("export needs -o FILE, --store PATH or --endpoint URL")
    rdf = _rdf()

    _existing(args.dir)
    if args.endpoint is not None:
        from yprov_wf.rdf.endpoint import check_url

        check_url(args.endpoint)
    dataset = rdf.to_dataset(args.dir)
    status = 0
    if args.output is not None:
        fmt = args.format or {".nq": "nquads", ".jsonld": "jsonld", ".ttl": "turtle"}.get(args.output.suffix, "trig")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", rdf.NamedGraphsFlattened)
            data = rdf.serialize(dataset.skolemized() if args.skolemize else dataset, fmt)
        for w in caught:
            print(f"yprov-wf: warning: {w.message}", file=sys.stderr)
        from yprov_wf.layout import atomic_write

        atomic_write(args.output, data)
        print(f"wrote {args.output} ({fmt}, {len(dataset.quads)} triples, {len(dataset.graphs)} named graphs)")
    if args.store is not None:
        from yprov_wf.rdf.store import load_dataset, open_store

        try:
            store = open_store(args.store)
            load_dataset(store, dataset)
        except (FileNotFoundError, NotADirectoryError):
            raise
        except OSError as exc:
            print(f"yprov-wf: error: cannot load into the store {args.store}: {exc}", file=sys.stderr)
            return 1
        print(f"loaded {len(dataset.quads)} triples ({len(dataset.graphs)} named graphs) into {args.store}; "
              f"it holds {len(store)} triples")
        del store
    if args.endpoint is not None:
        from yprov_wf.rdf.endpoint import upload

        report = upload(dataset, args.endpoint, timeout=args.timeout)
        print("\n".join(report.lines()))  # which graphs are in, which failed, which were not attempted
        if not report.ok:
            raise _UsageError(report.error() or "the upload is incomplete")
    return status


def _query(args: argparse.Namespace) -> int:
    rdf = _rdf()

    ready = args.query if args.query in _READY_QUERIES else None
    if ready in ("lineage", "uses") and not args.argument:
        raise _UsageError(f"query {ready} needs an argument: {'FILE_OR_MODEL' if ready == 'lineage' else 'DATASET'}")
    if (ready is None or ready == "runs") and args.argument:
        raise _UsageError(f"unexpected argument {args.argument!r}")
    if args.best is not None and ready != "runs":
        raise _UsageError("--best goes with the runs query")
    try:
        with rdf.open_target(args.target, timeout=args.timeout) as target:
            if ready == "lineage":
                result = rdf.lineage(target, args.argument)
            elif ready == "uses":
                result = rdf.uses(target, args.argument)
            elif ready == "runs":
                result = rdf.runs(target, args.best, args.minimize)
            else:
                result = target.run(args.query)
    except rdf.SparqlError as exc:
        raise _UsageError(str(exc)) from None
    except (FileNotFoundError, NotADirectoryError):
        raise
    except rdf.EndpointError as exc:  # a server that is down, refuses the credentials, or a wrong URL
        raise _UsageError(str(exc)) from None
    except OSError as exc:
        print(f"yprov-wf: error: {exc}", file=sys.stderr)
        return 1
    from yprov_wf.rdf.query import to_json

    if args.json:
        print(to_json(result))
    elif isinstance(result, rdf.Table):
        print(result.text(max_width=_CELL_WIDTH))
    elif isinstance(result, bool):
        print("true" if result else "false")
    else:
        print("\n".join(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
