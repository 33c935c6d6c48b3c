"""Keep Prefect's logs as they are without prefect_yprov: its engines log two INFO lines around every
state hook ("Running hook …", "Hook … finished running successfully"); those about the recording hooks
are dropped, every other line (the user's hooks included) passes unchanged."""

from __future__ import annotations

import logging

HOOK_NAMES = ("yprov_record_task_state", "yprov_record_flow_state")
LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class RecordingHookLines(logging.Filter):
    """Drops the engine's INFO lines about the recording hooks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        msg = record.msg if isinstance(record.msg, str) else ""
        return not any(msg.startswith((f"Running hook {name!r}", f"Hook {name!r}")) for name in HOOK_NAMES)


_FILTER = RecordingHookLines()


def install() -> None:
    """Add the filter to Prefect's run loggers (once; logging.config keeps a logger's filters)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
