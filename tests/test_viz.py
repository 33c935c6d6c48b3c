"""The provenance graph, the run comparison and M4 downsampling, on workflows built by the tests with the
real recorder, drawn by the real Graphviz ``dot``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import NS, REPO, only_run_dir, run_python

import yprov_wf as yp
from yprov_wf.viz.compare import RunSummary, compare, format_table, resolve_metric, summaries
from yprov_wf.viz.downsample import m4
from yprov_wf.viz.graph import GraphRenderError, build_graph, render_svg, workflow_graph
from yprov_wf.viz.runs import load_series, load_workflows, run_views

SVG = "{http://www.w3.org/2000/svg}"
LRS = (0.3, 0.03, 0.003)  # the middle one ends with the lowest validation loss and the highest accuracy


def final_val_loss(lr: float) -> float:
    return {0.3: 0.40, 0.03: 0.12, 0.003: 0.25}[lr]


def build_sweep(save_dir: Path, steps: int = 50) -> Path:
    """A workflow: prepare → three train tasks (one ML run each, lr differs) → a failed evaluate."""
    save_dir.parent.mkdir(parents=True, exist_ok=True)
    data = save_dir.parent / "data.csv"
    data.write_text("1,2,3\n")
    with yp.workflow("sweep", namespace=NS, save_dir=save_dir, params={"seed": 7}):
        with yp.task("prepare", outputs=[data]):
            pass
        for lr in LRS:
            with yp.task("train", inputs=[data], params={"lr": lr}) as t:
                t.set_attribute("energy_kwh", 0.5 * lr)
                yp.start_run(NS, "mlp")
                yp.log_param("lr", lr)
                yp.log_param("optimizer", "adam")
                for i in range(steps):
                    frac = (i + 1) / steps
                    yp.log_metric("loss", 1.0 - 0.5 * frac, context=yp.Context.TRAINING, step=i)
                    yp.log_metric("cpu_usage", 50.0 + i % 3, step=i)
                end = final_val_loss(lr)
                yp.log_metric("loss", end + 0.5, context=yp.Context.VALIDATION, step=0)
                yp.log_metric("loss", end, context=yp.Context.VALIDATION, step=steps)
                yp.log_metric("acc", 1.0 - end, context=yp.Context.VALIDATION, step=steps)
                yp.end_run()
        with pytest.raises(RuntimeError), yp.task("evaluate", inputs=[data]):
            raise RuntimeError("evaluation broke")
    return only_run_dir(save_dir)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sweep(tmp_path_factory.mktemp("sweep") / "prov")


def run_for(views, lr: float) -> str:
    return next(v.label for v in views if v.params()["lr"] == lr)


# -- compare -------------------------------------------------------------------------------------------

def test_compare_picks_the_best_run_of_a_recorded_workflow(sweep: Path):
    views = run_views(load_workflows([sweep]))
    assert len(views) == 3
    runs = summaries(views)
    best_loss = compare(runs, "loss@validation", "min")
    assert best_loss.best == run_for(views, 0.03)
    assert best_loss.best_value == pytest.approx(0.12)
    best_acc = compare(runs, "acc", "max")  # a key logged in one context needs no @context
    assert best_acc.metric == "acc@validation" and best_acc.best == run_for(views, 0.03)
    worst = compare(runs, "loss@validation", "max")
    assert worst.best == run_for(views, 0.3)
    assert best_loss.differing_params == {"lr": list(LRS)}
    assert best_loss.common_params == {"seed": 7, "optimizer": "adam"}
    assert best_loss.metrics["loss@validation"] == pytest.approx([0.40, 0.12, 0.25])


def test_compare_is_a_pure_function_over_summaries():
    runs = [RunSummary("a", {"lr": 0.1, "opt": "sgd"}, {"loss": 0.5, "acc": None}),
            RunSummary("b", {"lr": 0.2}, {"loss": float("nan"), "acc": 0.9}),
            RunSummary("c", {"lr": 0.1, "opt": "sgd"}, {"loss": 0.5, "acc": 0.8})]
    cmp = compare(runs, "loss")
    assert cmp.best == "a"  # NaN is never best; a tie goes to the first run
    assert cmp.differing_params == {"lr": [0.1, 0.2, 0.1], "opt": ["sgd", None, "sgd"]}
    assert compare(runs, "acc", "max").best == "b"
    assert compare(runs).best is None and compare(runs).metric is None
    text = format_table(compare(runs, "acc", "max"))
    assert "best run by acc (max): b (acc=0.9)" in text
    assert re.search(r"^lr\s+0\.1\s+0\.2\s+0\.1$", text, re.M), text


@pytest.mark.parametrize(("metric", "mode", "message"), [
    ("loss", "min", "ambiguous: use one of loss@training, loss@validation"),
    ("f1", "min", "no run has a metric 'f1'"),
    ("acc", "best", "mode must be 'min' or 'max'"),
    ("", "min", "metric must be a non-empty name"),
])
def test_compare_bad_metric_or_mode_names_the_value(metric: str, mode: str, message: str):
    runs = [RunSummary("a", {}, {"loss@training": 1.0, "loss@validation": 2.0, "acc": 0.5})]
    with pytest.raises(ValueError, match=re.escape(message)):
        compare(runs, metric, mode)


def test_resolve_metric_prefers_an_exact_name():
    assert resolve_metric("loss", ["loss", "loss@training"]) == "loss"


# -- series read back ---------------------------------------------------------------------------------

def test_series_are_read_back_whole_and_grouped(sweep: Path):
    view = run_views(load_workflows([sweep]))[0]
    series = {s.name: s for s in load_series(view)}
    assert set(series) == {"loss@training", "cpu_usage", "loss@validation", "acc@validation"}
    train = series["loss@training"]
    assert train.steps.tolist() == list(range(50))
    assert train.values[-1] == pytest.approx(0.5) and len(train.times) == 50
    assert series["loss@validation"].values.tolist() == pytest.approx([0.9, 0.4])


# -- downsampling ------------------------------------------------------------------------------------

def test_m4_keeps_first_last_min_max_of_every_bucket():
    rng = np.random.default_rng(1)
    n, buckets = 100_000, 50
    x = np.arange(n, dtype=float)
    y = np.cumsum(rng.normal(size=n))
    y[1234] = 1e6  # a spike must survive
    dx, dy = m4(x, y, buckets)
    assert len(dx) <= 4 * buckets and np.all(np.diff(dx) > 0)
    assert 1e6 in dy and dy.min() == y.min() and dx[0] == 0 and dx[-1] == n - 1
    b = np.minimum(((x - 0) * (buckets / (n - 1))).astype(int), buckets - 1)
    for k in range(buckets):
        sel = b == k
        bx, by = x[sel], y[sel]
        kept = set(dx[(dx >= bx[0]) & (dx <= bx[-1])].tolist())
        assert {bx[0], bx[-1], bx[np.argmin(by)], bx[np.argmax(by)]} <= kept, k


def test_m4_leaves_short_series_and_sorts_drops_non_finite():
    x, y = m4([3, 1, 2, 4], [0.3, 0.1, float("nan"), 0.4], buckets=10)
    assert x.tolist() == [1, 3, 4] and y.tolist() == [0.1, 0.3, 0.4]
    with pytest.raises(ValueError, match="buckets must be a positive int, got 0"):
        m4([1.0], [1.0], 0)
    with pytest.raises(ValueError, match="one length"):
        m4([1.0, 2.0], [1.0], 4)


# -- graph ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["workflow", "task", "run"])
def test_graph_svg_parses_as_xml_with_task_clusters(sweep: Path, level: str):
    svg = render_svg(workflow_graph(sweep, level))
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    clusters = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"]
    assert len(clusters) == 1 + 5  # the workflow, and in it one per task bundle: prepare, 3 × train, evaluate
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "workflow sweep" in texts and "task evaluate" in texts and "failed" in texts
    assert ("wasInformedBy" in texts) and ("data.csv" in texts)
    if level == "task":
        assert "4 metric series" in texts and "lr = 0.03" in texts
    if level == "run":
        assert "loss@validation" in texts and "optimizer = adam" in texts


def test_graph_quotes_hostile_names(tmp_path: Path):
    hostile = 'a"b\\c <b>x</b> ;} digraph {'
    with yp.workflow("w", namespace=NS, save_dir=tmp_path / "prov"), yp.task(hostile):
        yp.start_run(NS, "exp")
        yp.log_param(hostile, hostile)
        yp.log_metric(hostile, 1.0, context="ctx")
        yp.end_run()
    root = only_run_dir(tmp_path / "prov")
    svg = ET.fromstring(render_svg(workflow_graph(root, "run")).encode("utf-8"))
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert any(hostile in t for t in texts), texts


def test_graph_of_100_tasks_collapses_series_to_one_node_each(tmp_path: Path):
    """100 tasks in ten chains rewriting ten files (the layout Graphviz 2.43 cannot rank without newrank)."""
    previous = None
    with yp.workflow("big", namespace=NS, save_dir=tmp_path / "prov"):
        for i in range(100):
            out = tmp_path / f"f{i % 10}.txt"
            out.write_text(str(i % 10))
            with yp.task(f"step{i % 10}", inputs=[previous] if previous else [], outputs=[out]):
                yp.start_run(NS, "exp")
                for step in range(20):
                    yp.log_metric("loss", 1.0 / (step + 1), context="training", step=step)
                    yp.log_metric("acc", step / 20, context="training", step=step)
                yp.end_run()
            previous = out if i % 10 else None
    root = only_run_dir(tmp_path / "prov")
    for level, per_task in (("workflow", 2), ("task", 3), ("run", 4)):  # task, run, (metrics | 2 series)
        svg = ET.fromstring(render_svg(workflow_graph(root, level)).encode("utf-8"))
        nodes = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "node"]
        # never a node per point (4,000 points); each of the 100 writes is a generation of its own
        assert len(nodes) == 1 + 100 * per_task + 100, level
        texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
        assert any("edge labels left out" in t for t in texts) and "wasGeneratedBy" not in texts


def test_a_dot_failure_is_reported_not_raised_raw():
    import graphviz

    with pytest.raises(GraphRenderError, match=r"dot could not draw the graph \(exit 1\): .*syntax error"):
        render_svg(graphviz.Source("digraph { a -> }"))


def test_build_graph_rejects_an_unknown_level(sweep: Path):
    with pytest.raises(ValueError, match="level must be one of workflow, task, run, got 'bundle'"):
        build_graph(None, [], "bundle")


def test_end_run_writes_dot_and_svg_of_the_task_bundle(tmp_path: Path):
    with yp.workflow("g", namespace=NS, save_dir=tmp_path / "prov"), yp.task("train"):
        yp.start_run(NS, "exp")
        yp.log_param("lr", 0.1)
        yp.log_metric("loss", 0.5, context="training")
        run_id = yp.active_run().run_id
        yp.end_run(create_graph=True, create_svg=True)
    root = only_run_dir(tmp_path / "prov")
    dot, svg = root / "graphs" / f"{run_id}.dot", root / "graphs" / f"{run_id}.svg"
    assert "digraph provenance" in dot.read_text()
    tree = ET.parse(svg)
    texts = " ".join(t.text or "" for t in tree.iter(f"{SVG}text"))
    assert "task train" in texts and "loss@training" in texts and "lr = 0.1" in texts


def test_end_run_without_dot_writes_dot_and_says_how_to_install(tmp_path: Path):
    bin_dir = tmp_path / "bin"  # a PATH with python but no Graphviz
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python")
    code = f"""
import warnings, yprov_wf as yp
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    yp.start_run("{NS}", "exp", provenance_save_dir="prov")
    yp.log_metric("loss", 1.0)
    yp.end_run(create_graph=True, create_svg=True)
for w in caught:
    print("WARNING", w.category.__name__, w.message)
"""
    result = run_python(code, tmp_path, env={"PATH": str(bin_dir)})
    assert result.returncode == 0, result.stderr
    assert "WARNING ProvenanceWarning" in result.stdout and "apt-get install graphviz" in result.stdout
    root = only_run_dir(tmp_path / "prov")
    assert len(list((root / "graphs").glob("*.dot"))) == 1 and not list((root / "graphs").glob("*.svg"))
    assert (root / "workflow.json").is_file()  # the provenance itself is written as usual


def test_end_run_graph_flags_must_be_bools(tmp_path: Path):
    yp.start_run(NS, "exp", provenance_save_dir=tmp_path / "prov")
    with pytest.raises(TypeError, match="create_graph must be a bool, got 'yes'"):
        yp.end_run(create_graph="yes")
    yp.end_run()


# -- CLI -----------------------------------------------------------------------------------------------

def yprov_wf(*args: str, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "yprov_wf.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_graph_compare_report(sweep: Path, tmp_path: Path):
    out = yprov_wf("graph", str(sweep), "--level", "workflow", "-o", "g.svg", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "wrote g.svg", out.stderr
    ET.parse(tmp_path / "g.svg")
    assert (tmp_path / "g.dot").read_text().startswith("digraph provenance")
    out = yprov_wf("graph", str(sweep), "-o", "only.dot", cwd=tmp_path)
    assert out.returncode == 0 and not (tmp_path / "only.svg").exists()

    views = run_views(load_workflows([sweep]))
    out = yprov_wf("compare", str(sweep), "--metric", "loss@validation", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"best run by loss@validation (min): {run_for(views, 0.03)} (loss@validation=0.12)" in out.stdout
    assert "params that differ" in out.stdout and "seed" not in out.stdout

    out = yprov_wf("report", str(sweep), "-o", "r.html", "--metric", "acc", "--mode", "max", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "wrote r.html", out.stderr
    html = (tmp_path / "r.html").read_text()
    assert f"Best run by acc@validation (max): <code>{run_for(views, 0.03)}</code>" in html


def test_cli_graph_without_dot_exits_1_after_writing_dot(sweep: Path, tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = yprov_wf("graph", str(sweep), "-o", "g.svg", cwd=tmp_path, path=str(bin_dir))
    assert out.returncode == 1
    assert "apt-get install graphviz" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (tmp_path / "g.dot").is_file() and not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("args", [
    ("graph", "missing", "-o", "g.svg"),
    ("graph", "SWEEP", "-o", "g.png"),
    ("graph", "SWEEP", "--level", "bundle", "-o", "g.svg"),
    ("graph", "TWO", "-o", "g.svg"),  # two workflow runs: which one?
    ("graph", "SWEEP"),
    ("report", "missing", "-o", "r.html"),
    ("report", "SWEEP", "-o", "r.html", "--metric", "loss"),  # ambiguous
    ("report", "SWEEP", "-o", "r.html", "--mode", "best"),
    ("compare", "missing"),
    ("compare", "SWEEP", "--metric", "nope"),
    ("compare", "EMPTY"),
])
def test_cli_viz_bad_input_exits_2_with_one_line(args: tuple[str, ...], sweep: Path, tmp_path: Path):
    two = tmp_path / "two"
    shutil.copytree(sweep, two / "sweep" / "a")
    shutil.copytree(sweep, two / "sweep" / "b")
    (tmp_path / "empty").mkdir()
    names = {"SWEEP": str(sweep), "TWO": str(two), "EMPTY": str(tmp_path / "empty")}
    result = yprov_wf(*(names.get(a, a) for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("yprov-wf: error: "), result.stderr
    assert not (tmp_path / "r.html").exists()



# -- SVG plots -----------------------------------------------------------------------------------------

def test_line_chart_is_svg_with_a_line_per_series_and_a_log_axis_for_decades():
    from yprov_wf.viz.svgplot import Line, line_chart

    steps = np.arange(10_000)
    svg = line_chart([Line("training", steps, 1.0 / (steps + 1)), Line("validation <b>", steps[::100], 2.0 / (steps[::100] + 1))],
                     title="loss", x_label="step")
    root = ET.fromstring(svg)
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 2 and len(lines[0].get("points").split()) <= 4 * 500
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "step" in texts and "(log scale)" in texts and "0.0001" in texts and "validation <b>" in texts
    flat = ET.fromstring(line_chart([Line("x", [0, 1, 2], [5.0, 5.0, 5.0])], title="flat", x_label="step"))
    assert "(log scale)" not in [t.text for t in flat.iter(f"{SVG}text")]
    empty = ET.fromstring(line_chart([Line("x", [0, 1], [float("nan")] * 2)], title="t", x_label="s"))
    assert "no finite values" in [t.text for t in empty.iter(f"{SVG}text")]


def test_scatter_chart_draws_numbers_and_categories():
    from yprov_wf.viz.svgplot import Point, scatter_chart

    numeric = ET.fromstring(scatter_chart([Point("a", 1, 0.5), Point("b", 3, 0.25), Point("c", 2, None)],
                                          title="t", x_label="batch", y_label="loss"))
    assert len(list(numeric.iter(f"{SVG}circle"))) == 2
    cats = ET.fromstring(scatter_chart([Point("a", "adam", 0.5), Point("b", "sgd", 0.7)], title="t",
                                       x_label="optimizer", y_label="loss"))
    texts = [t.text for t in cats.iter(f"{SVG}text")]
    assert "adam" in texts and "sgd" in texts
