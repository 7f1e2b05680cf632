"""The docker launch mode against a stand-in for the Docker engine.

No Docker engine runs on the machines these tests run on, so the engine is faked at the
Docker SDK's boundary: ``FakeDocker`` stands in for ``docker.DockerClient`` (``ping``,
``containers.run``/``get``) and ``FakeContainer`` for ``docker.models.containers.Container``
(``logs``/``reload``/``attrs``/``status``/``stop``/``remove``). Everything else is real: the
launcher, the real SDK's types and errors, the core's ``profile()``, and a small HTTP server
on 127.0.0.1 answering Triton's readiness and metadata requests where the container's
published port would be. The one test with the real SDK and no engine is in
tests/test_cli_errors.py.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest

from tsweep.config import load_config
from tsweep.errors import ServerError, UsageError
from tsweep.plugin import hookimpl
from tsweep.plugins.launchers.docker import DockerLauncher
from tsweep.pluginmanager import make_plugin_manager
from tsweep.records import ContainerSettings, LaunchSettings
from tsweep.run import Run
from tsweep.sweep import profile

LOG = [b"I1125 server starting\n", b"E1125 error: creating server: Internal - failed to load all models\n"]


class TritonStub(BaseHTTPRequestHandler):
    """Where the container's HTTP port would be: ready (or not) and a version."""


    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/v2/health/ready":
            self.send_response(200 if self.server.ready else 503)
            self.end_headers()
        elif self.path == "/v2":
            body = json.dumps({"name": "triton", "version": "2.51.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def triton_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TritonStub)
    server.ready = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class FakeContainer:
    def __init__(self, engine: "FakeDocker", name: str):
        self.engine, self.name = engine, name
        self.status, self.attrs, self.calls = "created", {}, []

    def reload(self):
        self.calls.append("reload")
        if self.engine.interrupt_on_reload:
            raise KeyboardInterrupt  # what the CLI's SIGINT handler raises, wherever it lands
        if self.status != "created":
            return
        self.status = self.engine.status_after_start
        running = self.status == "running"
        ports = {f"{p}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(self.engine.http_port + i)}] for i, p in enumerate((8000, 8001, 8002))}
        self.attrs = {"NetworkSettings": {"Ports": ports if running else {}}}

    def logs(self, stream, follow, stdout, stderr):
        assert stream and follow and stdout and stderr
        return iter(LOG)

    def stop(self, timeout):
        self.calls.append(("stop", timeout))
        self.status = "exited"

    def remove(self, force):
        self.calls.append(("remove", force))
        self.engine.containers.existing.pop(self.name)


class FakeContainers:
    def __init__(self, engine: "FakeDocker"):
        self.engine, self.existing, self.runs, self.gets = engine, {}, [], []

    def run(self, image, command, **kwargs):
        self.runs.append({"image": image, "command": command, **kwargs})
        container = self.existing[kwargs["name"]] = FakeContainer(self.engine, kwargs["name"])
        if self.engine.interrupt_in_run:
            raise KeyboardInterrupt  # created on the engine, but run() never returned it
        return container

    def get(self, name):
        self.gets.append(name)
        if name not in self.existing:
            raise docker.errors.NotFound(f"No such container: {name}")
        return self.existing[name]


class FakeDocker:
    """Stands in for docker.DockerClient."""

    def __init__(self, http_port: int):
        self.http_port = http_port
        self.status_after_start = "running"
        self.interrupt_on_reload = self.interrupt_in_run = False
        self.containers = FakeContainers(self)

    def ping(self):
        return True


@pytest.fixture
def engine(triton_port) -> FakeDocker:
    return FakeDocker(triton_port.server_address[1])


@pytest.fixture
def repos(tmp_path: Path):
    out, src, extra = tmp_path / "out", tmp_path / "models", tmp_path / "datasets"
    for d in (out, src, extra):
        d.mkdir()
    return out, src, extra


def settings(tmp_path: Path, repos, gpus=(), **container) -> LaunchSettings:
    out, src, _ = repos
    return LaunchSettings(
        model_repository=out, source_repository=src, log_dir=tmp_path / "ck", ready_timeout_s=30,
        server_flags={"log-verbose": 1, "strict_readiness": True}, environment={"OMP_NUM_THREADS": 2},
        container=ContainerSettings(**{"image": "nvcr.io/nvidia/tritonserver:24.10-py3", **container}), gpus=gpus,
    )  # fmt: skip


def test_runs_the_image_with_exact_arguments_and_removes_the_container(tmp_path, repos, engine):
    out, src, extra = repos
    launcher = DockerLauncher(
        settings(tmp_path, repos, gpus=("GPU-a", "GPU-b"), shm_size="2g", mounts=(f"{extra}:/data:ro",), labels={"team": "ml"},
                 args={"cpuset_cpus": "0,1", "mem_limit": "8g"}),
        client_factory=lambda: engine,
    )
    launcher.preflight()
    server = launcher.start()
    (run,) = engine.containers.runs
    name = run["name"]
    assert name.startswith("tsweep-triton-")
    assert run == {
        "image": "nvcr.io/nvidia/tritonserver:24.10-py3",
        "command": ["tritonserver", f"--model-repository={out}", "--model-control-mode=explicit", "--http-port=8000",
                    "--grpc-port=8001", "--metrics-port=8002", "--exit-timeout-secs=10", "--log-verbose=1", "--strict-readiness=true"],
        "name": name,
        "detach": True,
        "ports": {"8000/tcp": ("127.0.0.1", None), "8001/tcp": ("127.0.0.1", None), "8002/tcp": ("127.0.0.1", None)},
        "volumes": {str(out): {"bind": str(out), "mode": "ro"}, str(src): {"bind": str(src), "mode": "ro"},
                    str(extra): {"bind": "/data", "mode": "ro"}},
        "device_requests": [{"Driver": "", "Count": 0, "DeviceIDs": ["GPU-a", "GPU-b"], "Capabilities": [["gpu"]], "Options": {}}],
        "environment": {"OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"},
        "shm_size": "2g",
        "labels": {"team": "ml", "tsweep": "1", "tsweep.owner": run["labels"]["tsweep.owner"]},
        "cpuset_cpus": "0,1", "mem_limit": "8g",  # triton_docker_args
    }  # fmt: skip
    port = engine.http_port
    assert (server.http_url, server.grpc_url, server.metrics_url) == (
        f"http://127.0.0.1:{port}", f"127.0.0.1:{port + 1}", f"http://127.0.0.1:{port + 2}/metrics"
    )
    assert server.description == f"tritonserver 2.51.0, container {name} (nvcr.io/nvidia/tritonserver:24.10-py3)"
    container = engine.containers.existing[name]

    launcher.stop()
    assert container.calls[-2:] == [("stop", 10), ("remove", True)]
    assert engine.containers.existing == {}
    assert server.log_path == tmp_path / "ck" / "tritonserver.log"
    assert server.log_path.read_bytes() == b"".join(LOG)  # the container's output, followed to the end
    launcher.stop()  # idempotent: nothing left to remove
    assert container.calls.count(("remove", True)) == 1


def test_no_gpu_means_no_device_request_and_no_visible_device(tmp_path, repos, engine):
    """The run's GPUs arrive resolved (tsweep.gpus.select, tested in test_nvml.py); none: the
    container gets no GPU and CUDA inside it sees none either."""
    launcher = DockerLauncher(settings(tmp_path, repos, gpus=()), client_factory=lambda: engine)
    launcher.preflight()
    arguments = launcher.run_arguments()
    assert arguments["device_requests"] == [] and arguments["environment"]["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mounts": ("/nope-tsweep:/x",)}, "triton_docker_mounts entry '/nope-tsweep:/x': /nope-tsweep does not exist"),
        ({"mounts": ("/tmp:relative",)}, "triton_docker_mounts entry '/tmp:relative' must be host:container[:ro|rw] with an absolute container path"),
        ({"shm_size": "lots"}, "triton_docker_shm_size must be a size such as 1g or 512m, got 'lots'"),
        ({"args": {"ports": {}}}, "triton_docker_args 'ports' is set by tsweep itself: use the triton_docker_* keys or remove it"),
        ({"flags": {"http-port": 9}}, "tritonserver flag 'http-port' is set by tsweep itself: remove it from triton_server_flags"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_before_the_engine_is_asked(tmp_path, repos, change, message):
    flags = change.pop("flags", None)
    s = settings(tmp_path, repos, **change)
    if flags:
        s = LaunchSettings(model_repository=s.model_repository, log_dir=s.log_dir, server_flags=flags, container=s.container)
    launcher = DockerLauncher(s, client_factory=lambda: pytest.fail("the engine was asked"))
    with pytest.raises(UsageError) as err:
        launcher.preflight()
    assert str(err.value) == message


def test_container_that_exits_before_ready_is_removed_and_its_log_quoted(tmp_path, repos, engine):
    engine.status_after_start = "exited"
    launcher = DockerLauncher(settings(tmp_path, repos), client_factory=lambda: engine)
    with pytest.raises(ServerError) as err:
        launcher.start()
    (run,) = engine.containers.runs
    assert str(err.value) == (
        f"container {run['name']} exited before publishing its ports (status exited): I1125 server starting | "
        f"E1125 error: creating server: Internal - failed to load all models (log: {tmp_path / 'ck' / 'tritonserver.log'})"
    )
    assert engine.containers.existing == {}


def test_readiness_timeout_removes_the_container(tmp_path, repos, engine, triton_port):
    triton_port.ready = False
    s = settings(tmp_path, repos)
    s = LaunchSettings(model_repository=s.model_repository, log_dir=s.log_dir, ready_timeout_s=0.5, container=s.container)
    launcher = DockerLauncher(s, client_factory=lambda: engine)
    with pytest.raises(ServerError, match=rf"^Triton at http://127.0.0.1:{engine.http_port} was not ready after"):
        launcher.start()
    assert engine.containers.existing == {} and len(engine.containers.runs) == 1


def test_ctrl_c_while_waiting_removes_the_container(tmp_path, repos, engine):
    engine.interrupt_on_reload = True
    launcher = DockerLauncher(settings(tmp_path, repos), client_factory=lambda: engine)
    with pytest.raises(KeyboardInterrupt):
        launcher.start()
    assert len(engine.containers.runs) == 1 and engine.containers.existing == {}


def test_ctrl_c_inside_run_finds_the_container_by_name_and_removes_it(tmp_path, repos, engine):
    engine.interrupt_in_run = True
    launcher = DockerLauncher(settings(tmp_path, repos), client_factory=lambda: engine)
    with pytest.raises(KeyboardInterrupt):
        launcher.start()
    (run,) = engine.containers.runs
    assert engine.containers.gets == [run["name"]] and engine.containers.existing == {}


def test_profile_passes_both_repositories_and_stops_the_launcher_when_start_fails(tmp_path, model_repo, engine):
    """Through the core: its settings reach the container, and its finally removes it."""

    class FakeEngineDocker:  # replaces the built-in 'docker' mode (registered later, so it wins)
        @hookimpl
        def tsweep_launchers(self):
            return {"docker": lambda launch: DockerLauncher(launch, client_factory=lambda: engine)}

    engine.status_after_start = "exited"
    config = load_config(None, {
        "model_repository": str(model_repo), "profile_models": "add_sub", "triton_launch_mode": "docker",
        "output_model_repository_path": str(tmp_path / "out"), "checkpoint_directory": str(tmp_path / "ck"),
        "run_config_search_disable": True, "concurrency": "1",
    })  # fmt: skip
    hooks = make_plugin_manager([("fake_engine_docker", FakeEngineDocker())], autoload=False)
    with pytest.raises(ServerError, match="exited before publishing its ports"):
        profile(Run.build(config, hooks, sweep=True))
    (run,) = engine.containers.runs
    out = str((tmp_path / "out").resolve())
    assert run["volumes"] == {out: {"bind": out, "mode": "ro"}, str(model_repo.resolve()): {"bind": str(model_repo.resolve()), "mode": "ro"}}
    assert run["shm_size"] == "1g" and run["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert engine.containers.existing == {}
