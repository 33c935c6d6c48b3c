"""Metric series: the in-memory hot-path buffer, its durable append-only log, and the final Parquet file."""

from yprov_wf.metrics.series import SeriesSummary, finalize_series
from yprov_wf.metrics.store import MetricStore, NullMetricStore

__all__ = ["MetricStore", "NullMetricStore", "SeriesSummary", "finalize_series"]
