"""The metric log → Parquet conversion: batches, late series, missing contexts, torn logs."""

from __future__ import annotations

import pandas as pd

from yprov_wf.metrics import MetricStore, finalize_series
from yprov_wf.metrics import series as series_module


def _store(tmp_path, flush_every=100):
    errors = []
    return MetricStore(tmp_path / "run.ylog", flush_every, errors.append), errors


def test_series_that_appear_in_later_batches_keep_their_names(tmp_path, monkeypatch):
    monkeypatch.setattr(series_module, "_BATCH_POINTS", 1000)  # many row groups, each with its own dictionary
    store, errors = _store(tmp_path)
    for i in range(2500):
        store.log("a", float(i), "training", i)
    for i in range(1500):
        store.log("b/ü", float(-i))  # no context, first seen in the third batch
        store.log("a", 1.0, "validation")
    assert store.close() and not errors
    summaries = {(s.key, s.context): s for s in finalize_series(tmp_path / "run.ylog", tmp_path / "m.parquet")}
    df = pd.read_parquet(tmp_path / "m.parquet")
    assert len(df) == 5500
    pairs = list(zip(df.key.astype(str), df.context.astype(object).where(df.context.notna(), None)))
    assert {p: pairs.count(p) for p in set(pairs)} == {
        ("a", "training"): 2500, ("a", "validation"): 1500, ("b/ü", None): 1500}
    assert df[df.key == "a"].context.notna().all()
    assert summaries[("a", "training")].maximum == 2499.0 and summaries[("b/ü", None)].minimum == -1499.0
    assert summaries[("a", "validation")].count == 1500 and summaries[("a", "validation")].first_step == 0


def test_a_torn_final_chunk_is_ignored(tmp_path):
    store, _ = _store(tmp_path, flush_every=10)
    for i in range(35):
        store.log("x", float(i))
    # no close(): the process is killed with 5 points still in memory
    log = tmp_path / "run.ylog"
    data = log.read_bytes()
    last_chunk = data[-(5 + 10 * 28):]  # header + 10 points
    log.write_bytes(data + last_chunk[:100])  # a chunk cut short, as a kill mid-write would leave it
    (summary,) = finalize_series(log, tmp_path / "m.parquet")
    assert summary.count == 30, "the 5 unflushed points were never written; the torn chunk is skipped"
    assert pd.read_parquet(tmp_path / "m.parquet").value.tolist() == [float(i) for i in range(30)]


def test_an_unwritable_log_warns_through_the_callback_and_drops(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    errors = []
    store = MetricStore(blocker / "run.ylog", 10, errors.append)
    for i in range(100):
        store.log("x", float(i))
    assert not store.close() and len(errors) == 1
