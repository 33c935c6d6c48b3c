"""Resource collectors: the registry and plugins, log_system_metrics, background sampling, faulty
collectors, the NVML mapping (with a stand-in pynvml: there is no GPU on this machine) and SIGKILL."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import signal
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import pandas as pd
import pytest

import yprov_wf as yp
from tests.conftest import NS, bundle_of, by_type, only_run_dir, run_python
from yprov_wf.cli import main as cli
from yprov_wf.collectors import CollectorUnavailable, collector_names, registry, sampler
from yprov_wf.collectors.gpu import GpuCollector, gpu_sample
from yprov_wf.collectors.system import KEYS as SYSTEM_KEYS
from yprov_wf.collectors.system import SystemCollector
from yprov_wf.prov.reading import literal as value

# -- helpers ------------------------------------------------------------------------------------------


def _task_bundle(save_dir: Path) -> dict:
    return bundle_of(next((only_run_dir(save_dir) / "tasks").glob("*.json")))


def _series(bundle: dict) -> dict[tuple[str, str | None], dict]:
    """(key, context) → MetricSeries attributes."""
    out = {}
    for attrs in by_type(bundle, "MetricSeries").values():
        ctx = attrs.get("ywf:context")
        out[(attrs["ywf:key"], value(ctx) if ctx is not None else None)] = attrs
    return out


def _task_attrs(bundle: dict) -> dict:
    (task,) = by_type(bundle, "TaskRun").values()
    return task


def _wait_samples(run, n: int, timeout: float = 120) -> None:
    """Wait until the run's background sampler has flushed ``n`` samples (a loaded machine may delay it)."""
    deadline = time.monotonic() + timeout
    while run.collectors.sampler.samples < n:
        assert time.monotonic() < deadline, f"only {run.collectors.sampler.samples} samples after {timeout} s"
        time.sleep(0.01)


def _sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("yprov-wf-sampler")]


@pytest.fixture
def plugin(tmp_path):
    """Install a tiny collector plugin: a module and a .dist-info with an entry point, on sys.path."""
    installed: list[str] = []
    site = tmp_path / "site"

    def install(name: str, body: str) -> str:
        site.mkdir(exist_ok=True)
        module = f"yprov_test_plugin_{name}"
        (site / f"{module}.py").write_text(textwrap.dedent(body))
        info = site / f"yprov_test_plugin_{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: yprov-test-plugin-{name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[yprov_wf.collectors]\n{name} = {module}:Plugin\n")
        if str(site) not in sys.path:
            sys.path.insert(0, str(site))
        importlib.invalidate_caches()
        registry.refresh()
        installed.append(module)
        return name

    yield install
    if str(site) in sys.path:
        sys.path.remove(str(site))
    for module in installed:
        sys.modules.pop(module, None)
    registry.refresh()


TINY = """
class Plugin:
    name = "tiny"
    def setup(self):
        self.n = 0
    def sample(self):
        self.n += 1
        return {"tiny_value": float(self.n)}
    def teardown(self):
        pass
"""

# -- registry and plugins -----------------------------------------------------------------------------


def test_builtin_collectors_register_through_the_entry_point_group():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="yprov_wf.collectors")}
    assert eps["system"] == "yprov_wf.collectors.system:SystemCollector"
    assert eps["gpu"] == "yprov_wf.collectors.gpu:GpuCollector"
    assert eps["energy"] == "yprov_wf.collectors.energy:EnergyCollector"
    assert {"system", "gpu", "energy"} <= set(collector_names())


def test_an_installed_plugin_is_discovered_and_sampled(plugin, save_dir):
    plugin("tiny", TINY)
    assert "tiny" in collector_names()
    with yp.start_run(NS, "plugged", provenance_save_dir=save_dir):
        for step in range(3):
            yp.log_system_metrics(yp.Context.TRAINING, step)
    series = _series(_task_bundle(save_dir))
    tiny = series[("tiny_value", "training")]
    assert value(tiny["ywf:count"]) == 3 and value(tiny["ywf:last"]) == 3.0
    assert ("cpu_usage", "training") in series


def test_collectors_option_chooses_by_name_and_rejects_unknown_names(plugin, save_dir):
    plugin("tiny", TINY)
    with yp.start_run(NS, "only-tiny", provenance_save_dir=save_dir, collectors=["tiny"]):
        yp.log_system_metrics()
    keys = {k for k, _ in _series(_task_bundle(save_dir))}
    assert keys == {"tiny_value"}
    with pytest.raises(ValueError, match="'nope'"):
        yp.start_run(NS, "x", provenance_save_dir=save_dir, collectors=["nope"])


# -- log_system_metrics -------------------------------------------------------------------------------


def test_log_system_metrics_records_the_system_series_and_why_gpu_is_absent(save_dir):
    with yp.start_run(NS, "sys", provenance_save_dir=save_dir):
        for step in range(5):
            yp.log_system_metrics(yp.Context.TRAINING, step)
        yp.log_system_metrics(yp.Context.VALIDATION)
    bundle = _task_bundle(save_dir)
    series = _series(bundle)
    for key in SYSTEM_KEYS:
        assert value(series[(key, "training")]["ywf:count"]) == 5
        assert value(series[(key, "training")]["ywf:lastStep"]) == 4
        assert (key, "validation") in series
    assert 0 < value(series[("memory_usage", "training")]["ywf:last"]) <= 100
    assert value(series[("process_rss_mb", "training")]["ywf:last"]) > 10
    assert not any(k.startswith("gpu") for k, _ in series), "no GPU here: GPU series are absent, not zeros"
    reason = _task_attrs(bundle)["ywf:gpuUnavailable"]
    assert "NVML" in reason or "pynvml" in reason
    text = (next((only_run_dir(save_dir) / "tasks").glob("*.json"))).read_text()
    assert text.count("gpuUnavailable") == 1


def test_system_collector_matches_psutil():
    import psutil

    c = SystemCollector()
    c.setup()
    time.sleep(0.05)
    s = c.sample()
    c.teardown()
    assert set(s) == set(SYSTEM_KEYS)
    vm = psutil.virtual_memory()
    assert abs(s["memory_used_mb"] - (vm.total - vm.available) / 2**20) < 200
    rss = psutil.Process().memory_info().rss / 2**20
    assert abs(s["process_rss_mb"] - rss) < 50
    assert 0.0 <= s["cpu_usage"] <= 100.0
    assert abs(s["disk_usage"] - psutil.disk_usage(os.getcwd()).percent) < 1.0


# -- the NVML mapping, with a stand-in for pynvml -------------------------------------------------------


class _NotSupported(Exception):
    pass


def _fake_nvml(count: int = 2, power_supported: tuple[bool, ...] = (True, False)) -> types.SimpleNamespace:
    """An object with pynvml's functions and constants, for two GPUs (the second without power readings)."""
    state = {"init": 0, "shutdown": 0}

    def power(h):
        if not power_supported[h]:
            raise type("NVMLError_NotSupported", (_NotSupported,), {})("Not Supported")
        return 150_500  # milliwatts

    return types.SimpleNamespace(
        state=state,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: state.__setitem__("init", state["init"] + 1),
        nvmlShutdown=lambda: state.__setitem__("shutdown", state["shutdown"] + 1),
        nvmlDeviceGetCount=lambda: count,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3" if h == 0 else "NVIDIA A100-SXM4-40GB",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=70 + h, memory=10),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=(h + 1) * 2**30, total=80 * 2**30),
        nvmlDeviceGetPowerUsage=power,
        nvmlDeviceGetTemperature=lambda h, sensor: 60 + h,
    )


def test_nvml_readings_map_to_per_gpu_series_in_their_units():
    fake = _fake_nvml()
    c = GpuCollector(nvml=fake)
    c.setup()
    assert c.models == ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"]
    first = c.sample()
    assert first == {
        "gpu0_utilization": 70.0, "gpu0_memory_used_mb": 1024.0, "gpu0_memory_total_mb": 81920.0,
        "gpu0_power_w": 150.5, "gpu0_temperature_c": 60.0,
        "gpu1_utilization": 71.0, "gpu1_memory_used_mb": 2048.0, "gpu1_memory_total_mb": 81920.0,
        "gpu1_temperature_c": 61.0,
    }, "an unsupported field (power of GPU 1) is absent, not zero"
    assert c.sample() == first
    c.teardown()
    assert fake.state == {"init": 1, "shutdown": 1}


def test_nvml_errors_other_than_not_supported_propagate():
    fake = _fake_nvml()
    fake.nvmlDeviceGetTemperature = lambda h, s: (_ for _ in ()).throw(RuntimeError("GPU is lost"))
    with pytest.raises(RuntimeError, match="GPU is lost"):
        gpu_sample(fake, [0], [{"temperature_c": lambda nvml, h: nvml.nvmlDeviceGetTemperature(h, 0)}])


def test_no_nvml_library_or_no_gpu_makes_the_collector_unavailable():
    class NVMLError_LibraryNotFound(Exception):
        pass

    fake = _fake_nvml()
    fake.nvmlInit = lambda: (_ for _ in ()).throw(NVMLError_LibraryNotFound("NVML Shared Library Not Found"))
    with pytest.raises(CollectorUnavailable, match="NVMLError_LibraryNotFound: NVML Shared Library Not Found"):
        GpuCollector(nvml=fake).setup()
    with pytest.raises(CollectorUnavailable, match="no GPU"):
        GpuCollector(nvml=_fake_nvml(count=0)).setup()


def test_the_real_pynvml_without_a_gpu_reports_why():
    """The real nvidia-ml-py on this GPU-less machine: NVML cannot load, the reason is NVML's."""
    with pytest.raises(CollectorUnavailable, match="NVMLError"):
        GpuCollector().setup()


def test_a_stand_in_pynvml_module_flows_into_the_bundle(save_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    with yp.start_run(NS, "gpu", provenance_save_dir=save_dir):
        yp.log_system_metrics(yp.Context.TRAINING, 0)
        yp.log_system_metrics(yp.Context.TRAINING, 1)
    bundle = _task_bundle(save_dir)
    series = _series(bundle)
    assert value(series[("gpu0_power_w", "training")]["ywf:last"]) == 150.5
    assert value(series[("gpu1_utilization", "training")]["ywf:count"]) == 2
    assert ("gpu1_power_w", "training") not in series
    assert "ywf:gpuUnavailable" not in _task_attrs(bundle)


# -- background sampling ------------------------------------------------------------------------------


def test_background_sampling_fills_its_own_series_and_stops_with_the_run(save_dir):
    run = yp.start_run(NS, "bg", provenance_save_dir=save_dir, system_metrics_interval=0.05)
    assert _sampler_threads() == [f"yprov-wf-sampler-{run.run_id}"]
    for i in range(2000):  # the hot path runs while the sampler samples
        yp.log_metric("loss", 1.0 / (i + 1), yp.Context.TRAINING, i)
        if i % 100 == 0:
            time.sleep(0.02)
    _wait_samples(run, 3)
    yp.end_run()
    assert _sampler_threads() == [], "the sampler never outlives its run"
    series = _series(_task_bundle(save_dir))
    assert value(series[("loss", "training")]["ywf:count"]) == 2000
    cpu = series[("cpu_usage", "system")]
    assert value(cpu["ywf:count"]) >= 4
    assert value(cpu["ywf:firstStep"]) == 0 and value(cpu["ywf:lastStep"]) == value(cpu["ywf:count"]) - 1
    df = pd.read_parquet(only_run_dir(save_dir) / "metrics" / f"{run.run_id}.parquet")
    assert len(df[df.key == "loss"]) == 2000
    assert set(df[df.context == "system"].key) >= set(SYSTEM_KEYS)
    assert not list((only_run_dir(save_dir) / "metrics").glob("*.ylog")), "both logs were finalised"


def test_task_and_workflow_options_set_the_interval_of_runs_inside(save_dir):
    with yp.workflow("wf", namespace=NS, save_dir=save_dir, system_metrics_interval=0.05):
        with yp.task("inherits"):
            with yp.start_run(NS, "a") as run:
                _wait_samples(run, 2)
        with yp.task("overrides", system_metrics_interval=10):
            with yp.start_run(NS, "b"):
                time.sleep(0.2)
    counts = {}
    for f in (only_run_dir(save_dir) / "tasks").glob("*.json"):
        b = bundle_of(f)
        counts[value(_task_attrs(b)["ywf:name"])] = value(_series(b)[("cpu_usage", "system")]["ywf:count"])
    assert counts["inherits"] >= 3
    assert counts["overrides"] == 1, "only the closing sample: the 10 s interval never elapsed"
    assert _sampler_threads() == []


def test_a_raising_collector_is_switched_off_with_one_warning(plugin, save_dir):
    plugin("broken", """
        class Plugin:
            name = "broken"
            def setup(self): pass
            def sample(self): raise RuntimeError("sensor on fire")
            def teardown(self): pass
    """)
    with pytest.warns(yp.ProvenanceWarning, match="'broken' raised RuntimeError: sensor on fire") as record:
        with yp.start_run(NS, "broken", provenance_save_dir=save_dir, system_metrics_interval=0.05) as run:
            for step in range(50):
                yp.log_system_metrics(yp.Context.TRAINING, step)
            _wait_samples(run, 2)
    assert len([w for w in record if "broken" in str(w.message)]) == 1
    bundle = _task_bundle(save_dir)
    series = _series(bundle)
    assert value(series[("cpu_usage", "training")]["ywf:count"]) == 50, "the other collectors go on"
    assert value(series[("cpu_usage", "system")]["ywf:count"]) >= 3
    assert "sensor on fire" in _task_attrs(bundle)["ywf:brokenUnavailable"]


def test_a_hanging_collector_is_abandoned_and_the_sampler_goes_on(plugin, save_dir, monkeypatch):
    monkeypatch.setattr(sampler, "SAMPLE_TIMEOUT_S", 0.2)
    plugin("stuck", """
        import threading
        RELEASE = threading.Event()
        class Plugin:
            name = "stuck"
            def setup(self): pass
            def sample(self):
                RELEASE.wait(300)
                return {}
            def teardown(self): pass
    """)
    try:
        t0 = time.perf_counter()
        with pytest.warns(yp.ProvenanceWarning, match="'stuck' did not return within 0.2 s") as record:
            with yp.start_run(NS, "stuck", provenance_save_dir=save_dir, system_metrics_interval=0.05,
                              collectors=["system", "stuck"]) as run:
                for i in range(100):
                    yp.log_metric("loss", float(i))
                _wait_samples(run, 2)
        assert time.perf_counter() - t0 < 60, "end_run did not wait for the hung call (300 s)"
        assert len([w for w in record if "stuck" in str(w.message)]) == 1
        assert _sampler_threads() == []
        series = _series(_task_bundle(save_dir))
        assert value(series[("cpu_usage", "system")]["ywf:count"]) >= 3, "sampling went on after the hang"
    finally:
        sys.modules["yprov_test_plugin_stuck"].RELEASE.set()


def test_sampled_points_survive_sigkill_and_recover(tmp_path):
    code = """
import os, signal, time, yprov_wf as yp
run = yp.start_run("https://example.org/", "killed", provenance_save_dir="prov", system_metrics_interval=0.05)
while run.collectors.sampler.samples < 4:
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = run_python(code, tmp_path)
    assert result.returncode == -signal.SIGKILL
    assert cli(["recover", str(tmp_path / "prov")]) == 0
    series = _series(_task_bundle(tmp_path / "prov"))
    assert value(series[("cpu_usage", "system")]["ywf:count"]) >= 4


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, "1", True, float("nan")])
def test_bad_interval_is_rejected_with_its_value(save_dir, bad):
    with pytest.raises(ValueError, match=f"system_metrics_interval.*{bad!r}"):
        yp.start_run(NS, "x", provenance_save_dir=save_dir, system_metrics_interval=bad)
    with pytest.raises(ValueError, match="system_metrics_interval"):
        yp.task("t", system_metrics_interval=bad)


def test_bad_energy_options_are_rejected(save_dir):
    with pytest.raises(ValueError, match="'France'"):
        yp.workflow("w", namespace=NS, save_dir=save_dir, energy_country="France")
    with pytest.raises(TypeError, match="'yes'"):
        yp.task("t", energy="yes")
    with pytest.raises(TypeError, match="collectors"):
        yp.start_run(NS, "x", provenance_save_dir=save_dir, collectors="system")
