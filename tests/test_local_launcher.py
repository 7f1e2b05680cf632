"""The local launcher against the real embedded tritonserver."""
from __future__ import annotations

import http.client
import json
import os

import pytest

from tsweep import modelconfig, repository
from tsweep.errors import ServerError
from tsweep.plugins.launchers.local import LocalLauncher, client_host, free_ports
from tsweep.records import LaunchSettings, Variant
from tsweep.triton import TritonHTTP

from tests.support import eventually

pytestmark = pytest.mark.server


def listening_addresses(port: int) -> set:
    """Local addresses bound to ``port``, read from /proc/net/tcp (LISTEN state)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.fixture
def served_repo(tmp_path, model_repo):
    out = tmp_path / "out"
    repository.prepare_output(out, override=False)
    (add_sub,) = repository.find_models(str(model_repo), ["add_sub"])
    repository.write_variant(out, add_sub, Variant("add_sub", add_sub.config, {}, name="add_sub_config_default"))
    broken = modelconfig.copy(add_sub.config)
    broken.input[0].dims[0] = -7  # Triton rejects this dimension when loading
    repository.write_variant(out, add_sub, Variant("add_sub", broken, {}, name="add_sub_config_0"))
    return out


def test_starts_on_loopback_serves_models_and_stops_its_process_group(tmp_path, served_repo):
    log_file = tmp_path / "elsewhere" / "triton.txt"  # triton_output_path
    launcher = LocalLauncher(LaunchSettings(model_repository=served_repo, log_dir=tmp_path / "logs", ready_timeout_s=60, log_path=log_file,
                                            gpus=("GPU-b",)))  # fmt: skip
    launcher.preflight()
    server = launcher.start()
    try:
        # the gpus key reaches the server as CUDA_VISIBLE_DEVICES (no such GPU here: it starts all the same)
        environ = dict(v.split("=", 1) for v in open(f"/proc/{server.pid}/environ").read().split("\0") if "=" in v)
        assert environ["CUDA_VISIBLE_DEVICES"] == "GPU-b"
        port = int(server.http_url.rsplit(":", 1)[1])
        grpc_port = int(server.grpc_url.rsplit(":", 1)[1])
        metrics_port = int(server.metrics_url.split(":")[2].split("/")[0])
        loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, and as IPv4-mapped IPv6 (gRPC)
        for p in (port, grpc_port, metrics_port):  # HTTP, gRPC and metrics: 127.0.0.1 only
            assert listening_addresses(p) and listening_addresses(p) <= loopback, p
        client = TritonHTTP(server.http_url)
        client.load_model("add_sub_config_default")
        body = {"inputs": [{"name": n, "shape": [1, 4], "datatype": "FP32", "data": d}
                           for n, d in (("INPUT0", [1, 2, 3, 4]), ("INPUT1", [1, 1, 1, 1]))]}  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v2/models/add_sub_config_default/infer", json.dumps(body))
        outputs = {o["name"]: o["data"] for o in json.loads(conn.getresponse().read())["outputs"]}
        assert outputs == {"OUTPUT0": [2, 3, 4, 5], "OUTPUT1": [0, 1, 2, 3]}
        assert eventually(lambda: client.stats("add_sub_config_default").success_count) == 1
        with pytest.raises(ServerError, match="Triton refused POST /v2/repository/models/add_sub_config_0/load: .*add_sub_config_0"):
            client.load_model("add_sub_config_0")
        assert server.log_path == log_file and "Started HTTPService" in log_file.read_text()
    finally:
        launcher.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # the whole group is gone (python backend stubs included)
    launcher.stop()  # idempotent


def test_client_host_reaches_the_address_the_server_binds():
    assert client_host("127.0.0.1") == "127.0.0.1"
    assert client_host("127.0.0.2") == "127.0.0.2"
    assert client_host("0.0.0.0") == "127.0.0.1"  # every interface: loopback is one
    assert client_host("::") == "[::1]"
    assert client_host("fe80::1") == "[fe80::1]"


def test_a_server_bound_to_another_address_is_polled_there(tmp_path, served_repo):
    """127.0.0.2 is loopback too on Linux, but 127.0.0.1 does not reach a server bound to it."""
    settings = LaunchSettings(model_repository=served_repo, log_dir=tmp_path / "logs", ready_timeout_s=60, bind_address="127.0.0.2")
    launcher = LocalLauncher(settings)
    launcher.preflight()
    server = launcher.start()
    try:
        assert server.http_url.startswith("http://127.0.0.2:") and server.grpc_url.startswith("127.0.0.2:")
        assert server.metrics_url.startswith("http://127.0.0.2:")
        port = int(server.http_url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0200007F"}  # 127.0.0.2 only
        assert TritonHTTP(server.http_url).metadata()["version"]
    finally:
        launcher.stop()


def test_free_ports_are_distinct_and_keep_the_pinned_ones():
    # The kernel once handed gRPC and metrics the same ephemeral port; every probe now stays bound
    # until all three are drawn. Many draws make a repeat likely if the rule were broken.
    for _ in range(200):
        ports = free_ports([None, None, None])
        assert len(set(ports)) == 3
    pinned = free_ports([None])[0]
    for _ in range(50):
        ports = free_ports([None, pinned, None])
        assert ports[1] == pinned and len(set(ports)) == 3
