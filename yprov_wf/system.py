"""One sample of the machine's state for ``log_system_metrics`` (CPU, memory, disk, process RSS)."""

from __future__ import annotations

from pathlib import Path


def system_sample(disk_path: Path) -> dict[str, float]:
    """CPU %, memory %, used memory (MB), disk usage % of ``disk_path``'s file system, and process RSS (MB)."""
    import psutil

    vm = psutil.virtual_memory()
    path = disk_path
    while not path.exists() and path != path.parent:
        path = path.parent
    return {
        "cpu_usage": psutil.cpu_percent(interval=None),
        "memory_usage": vm.percent,
        "memory_used_mb": vm.used / 2**20,
        "disk_usage": psutil.disk_usage(str(path)).percent,
        "process_rss_mb": psutil.Process().memory_info().rss / 2**20,
    }
