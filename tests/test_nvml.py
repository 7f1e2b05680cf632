"""GPU detection and the NVML collector.

This machine (like CI) has no GPU, so these tests put a stand-in for the ``pynvml`` module
(tests/nvml_stand_in.py) into ``sys.modules``: a fake at NVML's boundary. It answers the NVML
calls tsweep makes with scripted devices; everything above it (detection, the automatic
space, the collector, sampling and aggregation) is the real code.
"""
from __future__ import annotations

import sys
import warnings

import pytest

from tsweep import gpus, modelconfig
from tsweep.components import CollectorWarning, MetricCollector
from tsweep.config import load_config
from tsweep.errors import UsageError
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.collectors.sampling import aggregate
from tsweep.records import ModelSpec, RunningServer
from tsweep.settings import space_settings

from tests.nvml_stand_in import TWO_GPUS, stand_in
from tests.support import MODEL_REPOSITORY

SERVER = RunningServer(http_url="http://127.0.0.1:1")


@pytest.fixture
def nvml(monkeypatch):
    def install(module):
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    return install


def collectors(hooks, interval_s=3600.0):
    """The NVML plugin's offer (a long interval: only the sample at stop is taken)."""
    plugin = hooks.pm.get_plugin("nvml_collector")
    return plugin.tsweep_metric_collectors(server=SERVER, interval_s=interval_s)


def test_detection_follows_what_nvml_sees(nvml):
    module = nvml(stand_in(TWO_GPUS))
    assert gpus.gpu_count() == 2 and gpus.gpu_available()
    assert module.state["inits"] == module.state["shutdowns"] == 2  # each question opens and closes NVML
    nvml(stand_in([]))
    assert not gpus.gpu_available()
    nvml(stand_in(TWO_GPUS, init_error="Driver Not Loaded"))
    assert not gpus.gpu_available()
    nvml(None)  # not installed: import fails
    assert not gpus.gpu_available() and "nvidia-ml-py" in gpus.open_nvml()[1]


def test_automatic_space_uses_gpu_instance_groups_when_a_gpu_is_seen(nvml):
    config = load_config(None, {"run_config_search_max_instance_count": 1})
    hooks = make_plugin_manager(autoload=False)
    add_sub = ModelSpec("add_sub", MODEL_REPOSITORY / "add_sub", modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt"))

    def kinds():
        space = hooks.config_space(add_sub, space_settings(config, "add_sub"))
        return {g.kind for v in space.variants if not v.is_default for g in v.config.instance_group}

    nvml(stand_in(TWO_GPUS))
    assert kinds() == {modelconfig.KIND_GPU}
    nvml(stand_in(TWO_GPUS, init_error="Driver Not Loaded"))
    assert kinds() == {modelconfig.KIND_CPU}


@pytest.mark.parametrize(
    "spec, kind",
    [(("all",), "KIND_GPU"), (("1",), "KIND_GPU"), (("none",), "KIND_CPU"), ((), "KIND_CPU")],
)
def test_instance_kind_follows_the_gpus_the_run_chooses(nvml, tmp_path, spec, kind):
    """As Model Analyzer: KIND_GPU variants (count per GPU) when the run has a GPU, KIND_CPU
    when ``gpus`` chooses none, whatever the machine has; cpu_only keeps KIND_CPU."""
    nvml(stand_in(TWO_GPUS))
    hooks = make_plugin_manager(autoload=False)
    add_sub = ModelSpec("add_sub", MODEL_REPOSITORY / "add_sub", modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt"))
    for cpu_only, expected in ((False, kind), (True, "KIND_CPU")):
        path = tmp_path / "config.yaml"
        path.write_text(f"profile_models:\n  add_sub: {{cpu_only: {str(cpu_only).lower()}}}\n")
        config = load_config(path, {"run_config_search_max_instance_count": 2, "gpus": list(spec)})
        space = hooks.config_space(add_sub, space_settings(config, "add_sub"))
        generated = [v.coordinates for v in space.variants if not v.is_default]
        assert {c.kind for c in generated} == {expected}
        assert sorted({c.instances for c in generated}) == [1, 2]  # the count as written: per GPU for KIND_GPU
        assert space.gpus == {"all": 2, "1": 1}.get(spec[0] if spec else "", 0)  # the server's GPUs, cpu_only or not


def test_a_kind_gpu_count_is_per_gpu_for_whoever_counts_instances():
    """Triton starts a KIND_GPU group's count on each GPU (or on its own gpus list), and
    KIND_AUTO is KIND_GPU where there is one: what the adaptive search's bounds count."""
    mixed = modelconfig.parse("instance_group [{count: 2 kind: KIND_GPU}, {count: 1 kind: KIND_CPU}, {count: 3 kind: KIND_GPU gpus: [0]}]")
    assert modelconfig.instance_count(mixed) == 6  # as written: Model Analyzer's and the coordinates' count
    assert modelconfig.instance_count(mixed, gpus=4) == 2 * 4 + 1 + 3
    auto = modelconfig.parse("instance_group [{count: 2}]")
    assert modelconfig.instance_count(auto, gpus=0) == 2 and modelconfig.instance_count(auto, gpus=2) == 4
    assert modelconfig.instance_count(modelconfig.parse(""), gpus=2) == 2 and modelconfig.instance_count(modelconfig.parse("")) == 1


def test_gpus_key_chooses_by_index_or_uuid(nvml):
    """``gpus`` resolved against what NVML (the stand-in) sees: indices as nvidia-smi numbers
    them, UUIDs in any case, all, none; the answer is UUIDs in NVML's order."""
    nvml(stand_in(TWO_GPUS))
    assert gpus.select(("all",)) == ("GPU-a", "GPU-b")
    assert gpus.select(("1",)) == ("GPU-b",)
    assert gpus.select(("gpu-B", "0")) == ("GPU-a", "GPU-b")
    assert gpus.select(("none",)) == gpus.select(()) == gpus.select(("[]",)) == ()
    assert gpus.select(load_config(None, {"gpus": [1]}).gpus) == ("GPU-b",)  # YAML's numbers, as Model Analyzer's files write them
    assert load_config(None, {}).gpus == ("all",)  # Model Analyzer's default
    with pytest.raises(UsageError) as raised:
        gpus.select(("0", "GPU-zzz"))
    assert str(raised.value) == (
        "gpus names 'GPU-zzz', which is not a GPU of this machine: NVML sees 0 (GPU-a), 1 (GPU-b); use all, none, or those indices/UUIDs"
    )
    with pytest.raises(UsageError, match="not a mix: got all,1"):
        gpus.select(("all", "1"))
    nvml(stand_in(TWO_GPUS, init_error="Driver Not Loaded"))
    assert gpus.select(("all",)) == ()  # all of nothing: a CPU machine
    with pytest.raises(UsageError, match=r"gpus names '0', which is not a GPU of this machine: NVML sees no GPU here \(NVML is not available"):
        gpus.select(("0",))


def test_collector_reads_only_the_runs_gpus(nvml):
    nvml(stand_in(TWO_GPUS))
    plugin = make_plugin_manager(autoload=False).pm.get_plugin("nvml_collector")
    (collector,) = plugin.tsweep_metric_collectors(server=RunningServer(http_url="http://127.0.0.1:1", gpus=("GPU-b",)), interval_s=3600.0)
    collector.start()
    assert collector.stop(0.0) == pytest.approx({
        "gpu/GPU-b/utilization": 50.0, "gpu/GPU-b/memory_used_mb": 2000.0, "gpu/GPU-b/power_w": 100.0,
        "gpu_utilization": 50.0, "gpu_memory_used_mb": 2000.0, "gpu_memory_total_mb": 16000.0, "gpu_power_w": 100.0,
    })  # fmt: skip
    with pytest.warns(CollectorWarning, match="no GPU metrics: the gpus key chooses none"):
        assert plugin.tsweep_metric_collectors(server=RunningServer(http_url="http://127.0.0.1:1", gpus=()), interval_s=1.0) == []


def test_collector_reports_each_gpu_and_the_aggregates(nvml):
    nvml(stand_in(TWO_GPUS))
    (collector,) = collectors(make_plugin_manager(autoload=False))
    assert isinstance(collector, MetricCollector)
    assert [m.name for m in collector.describe()] == ["gpu_utilization", "gpu_memory_used_mb", "gpu_memory_total_mb", "gpu_power_w"]
    collector.start()
    first = collector.stop(0.0)
    assert first == pytest.approx({
        "gpu/GPU-a/utilization": 10.0, "gpu/GPU-a/memory_used_mb": 1000.0, "gpu/GPU-a/power_w": 50.0,
        "gpu/GPU-b/utilization": 50.0, "gpu/GPU-b/memory_used_mb": 2000.0, "gpu/GPU-b/power_w": 100.0,
        "gpu_utilization": 30.0,  # mean over the GPUs
        "gpu_memory_used_mb": 3000.0, "gpu_memory_total_mb": 32000.0, "gpu_power_w": 150.0,  # sums
    })  # fmt: skip


def test_collector_averages_utilization_and_power_and_keeps_peak_memory(nvml):
    nvml(stand_in(TWO_GPUS))
    (collector,) = collectors(make_plugin_manager(autoload=False))
    first, second = collector.read(), collector.read()  # what two samples of a point hold
    point = aggregate([(1.0, first), (2.0, second)])
    assert point["gpu_utilization"] == pytest.approx((30 + 50) / 2)
    assert point["gpu_power_w"] == pytest.approx((150 + 170) / 2)
    assert point["gpu_memory_used_mb"] == pytest.approx(3500.0)  # peak: 3000 then 3500
    assert point["gpu/GPU-b/memory_used_mb"] == pytest.approx(2000.0)  # peak per GPU too
    assert aggregate([(1.0, first), (2.0, second)], since=1.5)["gpu_utilization"] == pytest.approx(50.0)


def test_no_driver_means_no_collector_and_one_line(nvml):
    nvml(stand_in(TWO_GPUS, init_error="Driver Not Loaded"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert collectors(make_plugin_manager(autoload=False)) == []
    assert [str(w.message) for w in caught if w.category is CollectorWarning] == [
        "no GPU metrics: NVML is not available (Driver Not Loaded); no NVIDIA driver on this machine?"
    ]


def test_no_device_closes_nvml_again(nvml):
    module = nvml(stand_in([]))
    with pytest.warns(CollectorWarning, match="NVML sees no GPU"):
        assert collectors(make_plugin_manager(autoload=False)) == []
    assert module.state["inits"] == module.state["shutdowns"] == 1


def test_gpu_metrics_are_known_without_a_server():
    from tsweep.analysis import known_metrics

    known = known_metrics(make_plugin_manager(autoload=False).metric_infos())
    assert known["gpu_memory_used_mb"].unit == "MB" and not known["gpu_memory_used_mb"].higher_is_better
    assert known["gpu_utilization"].higher_is_better and known["gpu_power_w"].unit == "W"
