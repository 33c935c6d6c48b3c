"""The ``system`` collector: machine CPU and memory use, disk use of the provenance file system, and
this process's CPU and resident memory.

On Linux it reads ``/proc`` through file descriptors opened once (``os.pread``, ~10 µs a file) because
psutil's ``virtual_memory()`` alone costs ~70 µs; elsewhere it uses psutil.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

KEYS = ("cpu_usage", "memory_usage", "memory_used_mb", "disk_usage", "process_rss_mb", "process_cpu_usage")


class SystemCollector:
    """CPU % since the previous sample, memory %, memory used (MB, total minus available), disk use %
    and process RSS (MB) and process CPU % (of one core) since the previous sample."""

    name = "system"

    def __init__(self, disk_path: str | os.PathLike | None = None,
                 baseline: tuple[float, float, float, float] | None = None) -> None:
        self.disk_path = disk_path
        self.baseline = baseline  # cpu_baseline() taken when the run started: the first sample covers the run
        self._proc: _ProcReader | None = None
        self._psutil = None
        self._last_cpu = (0.0, 0.0)  # busy, total (jiffies or seconds)
        self._cpu_pct = 0.0
        self._last_proc = (0.0, 0.0)  # process cpu seconds, wall seconds
        self._proc_pct = 0.0
        self._disk = "."

    def setup(self) -> None:
        self._disk = _existing(Path(self.disk_path) if self.disk_path is not None else Path.cwd())
        if os.path.exists("/proc/stat") and os.path.exists("/proc/meminfo"):
            self._proc = _ProcReader()
        else:
            import psutil

            self._psutil = psutil
            self._process = psutil.Process()
        if self.baseline is not None:
            busy, total, proc_cpu, wall = self.baseline
            self._last_cpu, self._last_proc = (busy, total), (proc_cpu, wall)
        else:
            self._last_cpu = self._cpu_times()
            t = os.times()
            self._last_proc = (t.user + t.system, time.perf_counter())

    def sample(self) -> dict[str, float]:
        busy, total = self._cpu_times()
        last_busy, last_total = self._last_cpu
        if total > last_total:
            pct = 100.0 * (busy - last_busy) / (total - last_total)
            self._cpu_pct = 0.0 if pct < 0.0 else 100.0 if pct > 100.0 else pct  # 10 ms counters: rounding
            self._last_cpu = (busy, total)
        t = os.times()
        cpu, now = t.user + t.system, time.perf_counter()
        last_cpu, last_now = self._last_proc
        if now - last_now > 0.005:  # below the clock tick the ratio is noise
            self._proc_pct = 100.0 * (cpu - last_cpu) / (now - last_now)
            self._last_proc = (cpu, now)
        st = os.statvfs(self._disk)
        disk_total = (st.f_blocks - st.f_bfree + st.f_bavail) or 1
        if self._proc is not None:
            mem_total, mem_avail, rss = self._proc.memory()
        else:
            vm = self._psutil.virtual_memory()
            mem_total, mem_avail, rss = vm.total, vm.available, self._process.memory_info().rss
        used = mem_total - mem_avail
        return {
            "cpu_usage": self._cpu_pct,
            "memory_usage": 100.0 * used / mem_total,
            "memory_used_mb": used / 1048576,
            "disk_usage": 100.0 * (st.f_blocks - st.f_bfree) / disk_total,
            "process_rss_mb": rss / 1048576,
            "process_cpu_usage": self._proc_pct,
        }

    def teardown(self) -> None:
        if self._proc is not None:
            self._proc.close()
            self._proc = None

    def _cpu_times(self) -> tuple[float, float]:
        if self._proc is not None:
            return self._proc.cpu()
        t = self._psutil.cpu_times()
        total = sum(t)
        return total - t.idle - getattr(t, "iowait", 0.0), total


def cpu_baseline() -> tuple[float, float, float, float] | None:
    """Machine CPU counters (busy, total) and this process's CPU and wall seconds now, read at start_run so
    that the run's first sample reports the CPU use since the run started rather than 0 %. ~10 µs."""
    try:
        with open("/proc/uptime", "rb") as f:
            up, idle = f.read(64).split()
        total = float(up) * (os.cpu_count() or 1)
        busy = total - float(idle)
    except (OSError, ValueError):  # not Linux: psutil's counters, as SystemCollector reads them there
        try:
            import psutil

            t = psutil.cpu_times()
            total = sum(t)
            busy = total - t.idle - getattr(t, "iowait", 0.0)
        except Exception:
            return None
    t = os.times()
    return busy, total, t.user + t.system, time.perf_counter()


class _ProcReader:
    """/proc/uptime, /proc/meminfo and /proc/<pid>/statm, opened once, re-opened after a fork.

    Machine CPU use comes from /proc/uptime (uptime and the idle time summed over CPUs, 10 ms
    resolution): the kernel formats it in ~2 µs, where /proc/stat (every CPU, every interrupt) takes ~15.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._cpus = os.cpu_count() or 1
        self._stat = os.open("/proc/uptime", os.O_RDONLY)
        self._meminfo = os.open("/proc/meminfo", os.O_RDONLY)
        self._statm = os.open(f"/proc/{self._pid}/statm", os.O_RDONLY)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def cpu(self) -> tuple[float, float]:
        up, idle = os.pread(self._stat, 64, 0).split()
        total = float(up) * self._cpus
        return total - float(idle), total

    def memory(self) -> tuple[int, int, int]:
        if os.getpid() != self._pid:  # forked child: /proc/<pid> is the parent's
            self.close()
            self.__init__()
        info = os.pread(self._meminfo, 256, 0).split(b"\n", 3)
        total = int(info[0].split()[1]) * 1024
        avail_line = info[2] if info[2].startswith(b"MemAvailable") else _line(self._meminfo, b"MemAvailable")
        available = int(avail_line.split()[1]) * 1024
        rss = int(os.pread(self._statm, 64, 0).split()[1]) * self._page
        return total, available, rss

    def close(self) -> None:
        for fd in (self._stat, self._meminfo, self._statm):
            try:
                os.close(fd)
            except OSError:
                pass


def _line(fd: int, prefix: bytes) -> bytes:
    for line in os.pread(fd, 8192, 0).split(b"\n"):
        if line.startswith(prefix):
            return line
    raise OSError(f"{prefix.decode()} not found in /proc/meminfo")


def _existing(path: Path) -> str:
    while not path.exists() and path != path.parent:
        path = path.parent
    return str(path)
