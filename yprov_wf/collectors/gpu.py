"""The ``gpu`` collector: per NVIDIA GPU utilisation, memory used/total, power and temperature, read
through NVML (``pynvml`` from the ``nvidia-ml-py`` package, extra ``yprov-wf[gpu]``).

With no NVML library or no GPU, ``setup`` raises CollectorUnavailable with NVML's reason: the GPU
series are then absent (never zeros) and the bundle says why once (``ywf:gpuUnavailable``).
"""

from __future__ import annotations

from typing import Any

from yprov_wf.collectors.base import CollectorUnavailable

# metric suffix -> reader(nvml, handle) -> float
_FIELDS = {
    "utilization": lambda nvml, h: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
    "memory_used_mb": lambda nvml, h: nvml.nvmlDeviceGetMemoryInfo(h).used / 1048576,
    "memory_total_mb": lambda nvml, h: nvml.nvmlDeviceGetMemoryInfo(h).total / 1048576,
    "power_w": lambda nvml, h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,  # NVML reports milliwatts
    "temperature_c": lambda nvml, h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
}


def load_nvml() -> Any:
    """The ``pynvml`` module, initialised; CollectorUnavailable with the reason when it cannot be."""
    try:
        import pynvml
    except ImportError as exc:
        raise CollectorUnavailable(f"pynvml is not installed (pip install 'yprov-wf[gpu]'): {exc}") from None
    init(pynvml)
    return pynvml


def init(nvml: Any) -> None:
    try:
        nvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError_LibraryNotFound, _DriverNotLoaded, …
        raise CollectorUnavailable(f"{type(exc).__name__}: {exc}") from None


def device_names(nvml: Any) -> list[str]:
    """The model name of every GPU NVML sees (NVML already initialised)."""
    names = []
    for i in range(nvml.nvmlDeviceGetCount()):
        name = nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))
        names.append(name.decode() if isinstance(name, bytes) else str(name))
    return names


def gpu_sample(nvml: Any, handles: list[Any], fields: list[dict[str, Any]]) -> dict[str, float]:
    """One reading of every GPU: ``gpu<i>_<field>``. A field NVML does not support on a device (e.g.
    power on some boards) is dropped from ``fields[i]`` the first time and never asked again."""
    out: dict[str, float] = {}
    for i, (h, readers) in enumerate(zip(handles, fields)):
        for suffix, read in list(readers.items()):
            try:
                out[f"gpu{i}_{suffix}"] = read(nvml, h)
            except Exception as exc:
                if "NotSupported" in type(exc).__name__ or "NoPermission" in type(exc).__name__:
                    del readers[suffix]
                else:
                    raise
    return out


class GpuCollector:
    """Per-GPU utilisation (%), memory used and total (MB), power (W) and temperature (°C)."""

    name = "gpu"

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml  # a stand-in for pynvml (tests); None: import the real one
        self._handles: list[Any] = []
        self._fields: list[dict[str, Any]] = []
        self.models: list[str] = []

    def setup(self) -> None:
        if self._nvml is None:
            self._nvml = load_nvml()
        else:
            init(self._nvml)
        nvml = self._nvml
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            nvml.nvmlShutdown()
            raise CollectorUnavailable("NVML found no GPU")
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._fields = [dict(_FIELDS) for _ in self._handles]
        self.models = device_names(nvml)

    def sample(self) -> dict[str, float]:
        return gpu_sample(self._nvml, self._handles, self._fields)

    def teardown(self) -> None:
        if self._handles:
            self._handles = []
            self._nvml.nvmlShutdown()
