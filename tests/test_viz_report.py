"""The HTML report opened for real in headless Chromium (Debian ``chromium``): no console errors, every
plot present, nothing fetched from the network; a screenshot is kept under test-artifacts/."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import NS, REPO, only_run_dir, run_python
from test_viz import build_sweep

import yprov_wf as yp
from yprov_wf.viz.report import build_report, write_report
from yprov_wf.viz.runs import load_workflows

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: offline
          "--enable-logging=stderr", "--v=0"]
_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)")


def chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is not installed: run scripts/system-deps.sh (apt-get install chromium)"
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def console_messages(stderr: str) -> list[str]:
    """The page's console messages (log, warnings, errors, uncaught exceptions) Chromium logged."""
    return [m.group(1) for line in stderr.splitlines() if (m := _CONSOLE.search(line))]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("report")
    build_sweep(base / "sweep" / "prov", steps=3000)
    other = base / "solo" / "prov"  # a second workflow: one long run with model versions
    import time

    import torch

    with yp.workflow("solo", namespace=NS, save_dir=other), yp.task("train"):
        yp.start_run(NS, "long")
        t0 = time.time()
        yp.log_param("lr", 0.01)
        model = torch.nn.Linear(2, 1)
        for i in range(20_000):
            yp.log_metric("loss", 1.0 / (1 + i) + (i % 100) * 1e-4, context="training", step=i)
            if i % 500 == 0:
                yp.log_metric("process_rss_mb", 100.0 + i / 1000, timestamp=t0 + i / 1000)
            if i % 5000 == 0:
                yp.save_model_version(model, "net", context="training", step=i)
        yp.end_run()
    out = base / "report.html"
    write_report([base / "sweep" / "prov", other], out)
    return out


def test_chromium_catches_console_errors(tmp_path: Path):
    """The check below can fail: a page that logs an error and throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom-1"); nope();</script></body></html>')
    messages = console_messages(chromium(page, tmp_path, "--dump-dom").stderr)
    assert any("boom-1" in m for m in messages) and any("nope is not defined" in m for m in messages)


def test_report_opens_in_chromium_with_plots_and_no_console_errors(report: Path, tmp_path: Path):
    result = chromium(report, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    dom = result.stdout
    assert "<h1>yprov-wf report</h1>" in dom
    plots = re.findall(r'<svg[^>]*class="plot"', dom)
    # comparison: lr against the metric (seed and optimizer differ only in the run without it);
    # sweep runs: loss and acc by step, loss and cpu_usage over time (×3);
    # the long run: loss by step, loss and process RSS over time
    assert len(plots) == 1 + 3 * 4 + 3, len(plots)
    assert dom.count('<div class="graph">') == 2 and dom.count('class="node"') > 10  # both graphs drawn inline
    assert "Comparison of 4 runs" in dom and "Best run by loss@validation (min)" in dom
    assert "energy_kwh" in dom and "evaluation broke" in dom and "net" in dom and "v4" in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    taken = chromium(report, tmp_path, "--window-size=1400,2400", "--hide-scrollbars", f"--screenshot={shot}")
    assert taken.returncode == 0 and console_messages(taken.stderr) == []
    assert shot.stat().st_size > 50_000  # a drawn page, not a blank one
    shutil.copy(report, ARTIFACTS / "report.html")


def test_report_is_self_contained_and_its_svg_is_xml(report: Path):
    html = report.read_text()
    assert "<script" not in html and "<link" not in html and "<iframe" not in html
    assert not re.search(r'(src|href)\s*=\s*"(?!#)', html)  # nothing to fetch: no src, no outside href
    assert not re.search(r"url\((?!#)", html)
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) >= 16
    for svg in svgs:
        ET.fromstring(svg)


def test_report_thins_long_series_but_the_data_stays_complete(report: Path):
    html = report.read_text()
    polylines = re.findall(r'<polyline[^>]*points="([^"]*)"', html)
    longest = max(len(p.split()) for p in polylines)
    assert longest <= 4 * 600  # at most four points per pixel column of the widest plot
    import pyarrow.parquet as pq

    parquet = next(report.parent.glob("solo/prov/solo/*/metrics/*.parquet"))
    assert pq.read_table(parquet).num_rows == 20_000 + 40


def test_report_escapes_recorded_text(tmp_path: Path):
    evil = "<script>alert(1)</script>"
    with yp.workflow("w", namespace=NS, save_dir=tmp_path / "prov"), yp.task(evil):
        yp.start_run(NS, "exp")
        yp.log_param("note", evil)
        yp.log_metric("loss", 1.0, context="training")
        yp.end_run()
    html = build_report(load_workflows([only_run_dir(tmp_path / "prov")]))
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_of_nothing_is_refused():
    with pytest.raises(ValueError, match="no workflow run to report on"):
        build_report([])


def test_rendering_a_report_imports_neither_pandas_nor_pyarrow_compute(report: Path, tmp_path: Path):
    """Their imports cost more than the rest of a 1M-point report; the hot render path avoids them."""
    code = f"""
import sys
from pathlib import Path
from yprov_wf.viz.report import write_report
write_report([Path({str(report.parent / "solo" / "prov")!r})], Path("r.html"))
print(sorted(m for m in ("pandas", "pyarrow.compute", "pyarrow.dataset", "matplotlib") if m in sys.modules))
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "process_rss_mb" in (tmp_path / "r.html").read_text()


def test_report_of_a_killed_run_reads_its_journal_and_metric_log(tmp_path: Path):
    code = f"""
import os, yprov_wf as yp
with yp.workflow("live", namespace="{NS}", save_dir="prov"):
    with yp.task("train"):
        yp.start_run("{NS}", "exp", save_after_n_logs=100)
        for i in range(500):
            yp.log_metric("loss", 1.0 / (i + 1), context="training", step=i)
        os._exit(0)  # killed: no end_run, no task or workflow file
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    root = only_run_dir(tmp_path / "prov")
    assert not (root / "workflow.json").exists()
    html = build_report(load_workflows([root]))
    assert '<span class="running">running</span>' in html
    points = re.findall(r'<polyline[^>]*points="([^"]*)"', html)
    assert len(points) == 1 and len(points[0].split()) == 500  # every flushed point, from the .ylog
