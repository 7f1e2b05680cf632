"""System shared memory (perf_analyzer's --shared-memory system): the point's regions are
registered with the real server while it is measured and gone after, also after a failed
point and after Ctrl-C; requests name regions instead of carrying data."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tsweep import modelconfig
from tsweep.errors import UsageError
from tsweep.measure import MethodSettings, measure
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.launchers.remote import RemoteLauncher
from tsweep.records import LaunchSettings, LoadLevel, LoadSettings, RunningServer, Trial, Variant
from tsweep.triton import TritonHTTP

from tests.support import MODEL_REPOSITORY, run_tsweep, stored, tree

CONFIG = modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt")
FAST = MethodSettings(window_s=0.3, min_windows=3, max_windows=4, warmup_s=0.1)
GENERATORS = make_plugin_manager().load_generators()


def trial(concurrency: float = 2.0, batch: int = 1) -> Trial:
    return Trial(Variant("add_sub", CONFIG, {}, name="add_sub"), LoadLevel("concurrency", concurrency), batch)


def ours_in_dev_shm() -> list:
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith(f"tsweep_{os.getpid()}_"))


class RegionWatcher:
    """Asks the real server which regions it has registered while the point runs (the
    core calls a collector's stop before it stops the load)."""

    def __init__(self, client: TritonHTTP):
        self.client, self.seen = client, None

    def start(self) -> None:
        pass

    def stop(self, since: float) -> dict:
        self.seen = self.client.system_shared_memory()
        return {}


def test_requests_name_the_regions_instead_of_carrying_data():
    from tsweep.plugins.loads.http import wire_requests
    from tsweep.plugins.loads.regions import point_regions

    server = RunningServer(http_url="http://127.0.0.1:8000")
    settings = LoadSettings(shapes={}, shared_memory="system", output_shared_memory_size=4096)
    regions = point_regions(trial(batch=2), server, settings)  # made, not opened: nothing is sent
    raw = wire_requests(trial(batch=2), server, settings, regions)
    assert len(raw) == len(regions.requests) == len(regions.names) - 1  # a region per distinct request, one for outputs
    head, body = raw[0].split(b"\r\n\r\n", 1)
    assert b"Content-Type: application/json" in head
    request = json.loads(body)
    (out_region,) = {o["parameters"]["shared_memory_region"] for o in request["outputs"]}
    assert [o["parameters"]["shared_memory_offset"] for o in request["outputs"]] == [0, 4096]
    first, second = request["inputs"]
    assert first["shape"] == [2, 4] and "data" not in first  # add_sub: two FP32 inputs of 4, batch 2
    assert first["parameters"]["shared_memory_byte_size"] == 2 * 4 * 4
    assert second["parameters"]["shared_memory_offset"] == 2 * 4 * 4
    assert first["parameters"]["shared_memory_region"] in regions.names and out_region in regions.names


def test_remote_mode_refuses_shared_memory_unless_the_host_is_shared():
    settings = LaunchSettings(model_repository=Path("out"), log_dir=Path("log"), http_endpoint="127.0.0.1:1", shared_memory=True)
    with pytest.raises(UsageError) as err:
        RemoteLauncher(settings).preflight()
    assert str(err.value).startswith("shared_memory system needs the server to see this host's /dev/shm") and "triton_server_on_this_host" in str(err.value)


def test_the_cli_refuses_it_in_remote_mode_with_one_line_and_writes_nothing(workdir):
    result = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub", "--output-model-repository-path", "out",
        "--triton-launch-mode", "remote", "--triton-http-endpoint", "127.0.0.1:1", "--shared-memory", "system", cwd=workdir, timeout=120,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: shared_memory system needs the server"), result.stderr
    assert tree(workdir) == []


@pytest.mark.server
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_regions_are_registered_during_the_point_and_gone_after(add_sub_server, protocol):
    client = TritonHTTP(add_sub_server.http_url)
    load = GENERATORS[protocol](trial(4.0, batch=2), add_sub_server, LoadSettings(protocol=protocol, shapes={}, shared_memory="system"))
    watcher = RegionWatcher(client)
    before = client.stats("add_sub").success_count
    m = measure(trial(4.0, batch=2), load, lambda: client.stats("add_sub"), FAST, collectors=[watcher])
    assert m.status in ("ok", "unstable") and m.errors == 0, m.error
    assert 0 < m.requests <= client.stats("add_sub").success_count - before
    assert m.client.endswith(", system shared memory")
    assert watcher.seen == sorted(load.regions.names) and len(watcher.seen) >= 2
    assert client.system_shared_memory() == [] and ours_in_dev_shm() == []


@pytest.mark.server
def test_outputs_too_small_fail_the_point_and_the_regions_still_go(add_sub_server):
    client = TritonHTTP(add_sub_server.http_url)
    settings = LoadSettings(shapes={}, shared_memory="system", output_shared_memory_size=8)  # each of add_sub's outputs needs 16 bytes
    load = GENERATORS["http"](trial(), add_sub_server, settings)
    m = measure(trial(), load, lambda: client.stats("add_sub"), FAST)
    assert m.status == "failed" and m.error.startswith("all requests failed: ")
    assert client.system_shared_memory() == [] and ours_in_dev_shm() == []


@pytest.mark.server
def test_ctrl_c_during_a_point_unregisters_and_unlinks_its_regions(add_sub_server):
    client = TritonHTTP(add_sub_server.http_url)
    load = GENERATORS["http"](trial(), add_sub_server, LoadSettings(shapes={}, shared_memory="system"))
    calls = []

    def clock(seconds: float) -> None:  # the measurement's own waits; the second ends with a real SIGINT
        time.sleep(seconds)
        calls.append(seconds)
        if len(calls) == 2:
            assert client.system_shared_memory() == sorted(load.regions.names)  # registered mid-point
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        measure(trial(), load, lambda: client.stats("add_sub"), FAST, clock=clock)
    assert client.system_shared_memory() == [] and ours_in_dev_shm() == []


@pytest.mark.server
@pytest.mark.slow
def test_a_sweep_through_shared_memory_records_points_and_says_so(workdir):
    result = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub", "--output-model-repository-path", "out",
        "--run-config-search-disable", "--concurrency", "1,2", "--measurement-window-s", "0.3", "--remeasure-top-configs", "0",
        "--shared-memory", "system", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert [r["load_value"] for r in rows] == [1.0, 2.0]
    assert all(r["client"] == "native http, system shared memory" and r["throughput"] > 0 and r["errors"] == 0 for r in rows)
    assert "measured through native http, system shared memory" in result.stdout
