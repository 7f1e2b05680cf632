"""The Triton-metrics and server-process collectors, against the real embedded tritonserver.

No GPU here: the NVML collector is tested with a stand-in module in test_nvml.py. These tests
use the session's add_sub server (python backend: tritonserver plus one stub process).
"""
from __future__ import annotations

import time
import warnings

import pytest

from tsweep import goals, gpus, modelconfig
from tsweep.analysis import known_metrics
from tsweep.components import CollectorWarning
from tsweep.config import load_config
from tsweep.measure import MethodSettings, measure, server_baseline
from tsweep.plugin import hookimpl
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.collectors import host, process, triton_metrics
from tsweep.plugins.collectors.sampling import SampledCollector
from tsweep.records import LoadLevel, LoadSettings, MetricInfo, RunningServer, Trial, Variant
from tsweep.triton import TritonHTTP

from tests.support import MODEL_REPOSITORY

CONFIG = modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt")
REMOTE = RunningServer(http_url="http://127.0.0.1:1", description="tritonserver 2.51.0, remote at http://127.0.0.1:1")

# What a Triton with two GPUs exports (written for this test, in Triton's metric names).
TWO_GPU_TEXT = """\
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-a"} 0.25
nv_gpu_utilization{gpu_uuid="GPU-b"} 0.75
# HELP nv_gpu_memory_used_bytes GPU used memory, in bytes
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-a"} 1500000000
nv_gpu_memory_used_bytes{gpu_uuid="GPU-b"} 500000000
# HELP nv_gpu_power_usage GPU power usage in watts
# TYPE nv_gpu_power_usage gauge
nv_gpu_power_usage{gpu_uuid="GPU-a"} 60.5
nv_gpu_power_usage{gpu_uuid="GPU-b"} 39.5
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.5
# HELP nv_cpu_memory_total_bytes CPU total memory (RAM), in bytes
# TYPE nv_cpu_memory_total_bytes gauge
nv_cpu_memory_total_bytes 8000000000
# HELP nv_cpu_memory_used_bytes CPU used memory (RAM), in bytes
# TYPE nv_cpu_memory_used_bytes gauge
nv_cpu_memory_used_bytes 2000000000
"""


def test_prometheus_text_becomes_our_metrics():
    assert triton_metrics.parse(TWO_GPU_TEXT) == pytest.approx({
        "triton_gpu_utilization": 50.0, "triton_gpu_memory_used_mb": 2000.0, "triton_gpu_power_w": 100.0,
        "triton_cpu_utilization": 50.0, "triton_cpu_memory_used_mb": 2000.0,
    })  # fmt: skip
    before_first_refresh = "nv_cpu_utilization 0\nnv_cpu_memory_total_bytes 0\nnv_cpu_memory_used_bytes 0\n"
    assert triton_metrics.parse(before_first_refresh) == {}


def test_remote_server_without_pid_or_metrics_url_gets_no_collector_and_one_line_each():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert process.tsweep_metric_collectors(REMOTE, 1.0) == []
        assert triton_metrics.tsweep_metric_collectors(REMOTE, 1.0) == []
    assert [str(w.message) for w in caught if w.category is CollectorWarning] == [
        "no server process metrics: no local process for tritonserver 2.51.0, remote at http://127.0.0.1:1",
        "no Triton metrics: the server's metrics URL is unknown (remote mode: pass --triton-metrics-url)",
    ]


def test_host_cpu_is_the_busy_share_of_all_cores_and_works_with_a_remote_server():
    reader = host.HostCpu()
    assert reader() == {}  # the first read only sets the baseline
    reader.prime()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # keep one core busy for 0.3 s of CPU time
        pass
    busy = reader()["host_cpu_utilization"]
    assert 0 < busy <= 100
    (collector,) = host.tsweep_metric_collectors(REMOTE, 1.0)  # about this machine: always offered
    assert [m.name for m in collector.describe()] == ["host_cpu_utilization"]


def loaded_point(server: RunningServer, collectors):
    t = Trial(Variant("add_sub", CONFIG, {}, name="add_sub"), LoadLevel("concurrency", 4.0), 1)
    client = TritonHTTP(server.http_url)
    load = make_plugin_manager().load_generator("http")(t, server, LoadSettings(protocol="http", shapes={}))
    settings = MethodSettings(window_s=1.0, min_windows=3, max_windows=4, warmup_s=0.2, throughput_precision=0.5, latency_precision=0.5)
    return measure(t, load, lambda: client.stats("add_sub"), settings, collectors)


@pytest.mark.server
@pytest.mark.slow
def test_server_process_and_triton_metrics_idle_and_under_load(add_sub_server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollectorWarning)  # no GPU here: NVML offers nothing
        collectors = make_plugin_manager(autoload=False).metric_collectors(add_sub_server, 0.25)
    names = {m.name for c in collectors for m in c.describe()}
    assert {"server_cpu_pct", "server_memory_mb", "triton_cpu_utilization", "host_cpu_utilization"} <= names
    assert ("gpu_utilization" in names) == gpus.gpu_available()

    tree = process.ProcessTree(add_sub_server.pid).processes()
    assert len(tree) >= 2  # tritonserver and the python backend stub of add_sub

    idle = server_baseline(collectors, 1.0)
    loaded = loaded_point(add_sub_server, collectors)
    print(f"idle {idle}\nloaded {loaded.metrics}")
    assert loaded.status in ("ok", "unstable") and loaded.throughput > 0
    assert idle["server_memory_mb"] > 0 and loaded.metrics["server_memory_mb"] > 0
    assert loaded.metrics["server_cpu_pct"] > idle["server_cpu_pct"] + 10  # the stub and the server work
    assert 0 <= loaded.metrics["triton_cpu_utilization"] <= 100
    assert idle["host_cpu_utilization"] < loaded.metrics["host_cpu_utilization"] <= 100  # client and server at work
    assert loaded.metrics["triton_cpu_memory_used_mb"] > 0


@pytest.mark.server
def test_triton_exports_host_cpu_and_ram_after_its_first_refresh(add_sub_server):
    deadline = time.monotonic() + 15  # Triton refreshes its gauges every 2 s by default
    values = {}
    while "triton_cpu_memory_used_mb" not in values and time.monotonic() < deadline:
        values = triton_metrics.parse(triton_metrics.scrape(add_sub_server.metrics_url))
        time.sleep(0.2)
    assert values["triton_cpu_memory_used_mb"] > 0 and 0 <= values["triton_cpu_utilization"] <= 100
    if not gpus.gpu_available():
        assert not any(name.startswith("triton_gpu") for name in values)


class HostLoad:
    """The collector of docs/plugins.md's example, reduced to constants."""

    def describe(self):
        return [HOST_LOAD]

    def start(self):
        pass

    def stop(self, since):
        return {"host_load_1m": 0.5}


HOST_LOAD = MetricInfo("host_load_1m", "tasks", False, "Host load average")


class HostLoadPlugin:
    """A third-party collector plugin whose hook leaves out interval_s, as the guide allows."""

    @hookimpl
    def tsweep_metric_infos(self):
        return [HOST_LOAD, MetricInfo("throughput", "req/s", False)]  # cannot redefine a core metric

    @hookimpl
    def tsweep_metric_collectors(self, server):
        return [HostLoad()]


def test_third_party_collector_is_offered_and_its_metric_is_known():
    hooks = make_plugin_manager([("hostload", HostLoadPlugin())], autoload=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollectorWarning)
        offered = hooks.metric_collectors(REMOTE, 1.0)
    assert [type(c) for c in offered if not isinstance(c, SampledCollector)] == [HostLoad]
    known = known_metrics(hooks.metric_infos())
    assert known["host_load_1m"] == HOST_LOAD and known["throughput"].higher_is_better
    assert goals.for_model(load_config(None, {"constraints": {"host_load_1m": {"max": 4}}}), known).constraints[0].max == 4
