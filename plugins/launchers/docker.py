"""Launch mode ``docker``: run Triton's container image through the Docker SDK.

For a server version or backends that the embedded server lacks, without installing
Triton on the host. The container serves tsweep's output model repository, mounted (with
the user's model repository) at the same path inside as outside, read-only: Triton only
reads it, and a root-owned ``__pycache__`` would otherwise land in the user's folder. Its
HTTP, gRPC and metrics ports are published on 127.0.0.1 only, on host ports Docker picks
(no race between choosing a free port and binding it). The log is followed into
``settings.server_log`` (``<log_dir>/tritonserver.log`` unless ``triton_output_path`` says).
The container carries the label ``tsweep`` and is removed on every way out: normal stop, a
failed or interrupted start, Ctrl-C.

The Docker SDK (``pip install 'tsweep[docker]'``) is imported only when this mode is
chosen, so tsweep works without it.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from tsweep import tls
from tsweep.errors import ServerError, UsageError
from tsweep.plugin import hookimpl
from tsweep.records import LaunchSettings, RunningServer
from tsweep.triton import TritonHTTP

from tsweep.plugins.launchers.local import client_host, last_log_lines, server_environment, user_flags

#: Every container tsweep starts has this label: ``docker ps -a --filter label=tsweep``.
LABEL = "tsweep"
INSTALL_HINT = "pip install 'tsweep[docker]'"
#: Triton's ports inside the container, published on the host.
CONTAINER_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
_SHM_SIZE = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)
_STOP_TIMEOUT_S = 10


def import_docker():
    """The Docker SDK module, or a UsageError saying how to install it."""
    try:
        import docker
    except ImportError:
        raise UsageError(f"docker launch mode needs the Docker SDK: {INSTALL_HINT}") from None
    return docker


def connect():
    """A client of the Docker engine that answers a ping, or a one-line UsageError."""
    docker = import_docker()
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        raise UsageError(
            f"no Docker engine reachable at {where}: start Docker or choose --triton-launch-mode local"
        ) from None
    return client


def device_requests(uuids: Sequence[str], types) -> List[Any]:
    """The run's GPUs (the ``gpus`` key, resolved to UUIDs) as Docker device requests, the
    container's ``--gpus``; none when the run has no GPU."""
    if not uuids:
        return []
    return [types.DeviceRequest(device_ids=list(uuids), capabilities=[["gpu"]])]


def volumes(served: Path, source: Optional[Path], extra: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """The repositories at the same path inside as outside (read-only), then ``triton_docker_mounts``."""
    binds = {str(path): {"bind": str(path), "mode": "ro"} for path in (served, source) if path is not None}
    for mount in extra:
        parts = str(mount).split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise UsageError(f"triton_docker_mounts entry {mount!r} must be host:container[:ro|rw] with an absolute container path")
        host = Path(parts[0]).resolve()
        if not host.exists():
            raise UsageError(f"triton_docker_mounts entry {mount!r}: {host} does not exist")
        binds[str(host)] = {"bind": parts[1], "mode": parts[2] if len(parts) == 3 else "rw"}
    return binds


class DockerLauncher:
    """Runs one Triton container; see the module docstring.

    ``client_factory`` returns a ``docker.DockerClient``; the default connects to the engine
    from the environment (``DOCKER_HOST`` or the default socket). Tests pass a stand-in.
    """

    def __init__(self, settings: LaunchSettings, client_factory: Optional[Callable[[], Any]] = None):
        self.settings = settings
        self._client_factory = client_factory or connect
        self._client = None
        self._container = None
        self._name: Optional[str] = None
        self._log_thread: Optional[threading.Thread] = None

    # -- before anything is written -----------------------------------------------------
    def preflight(self) -> None:
        s = self.settings
        tls.refuse_https(s.http_endpoint, "docker")
        tls.refuse_shared_memory(s, "docker")
        self._docker = import_docker()
        self._flags = user_flags(s.server_flags)
        self._env = server_environment(s.environment, s.gpus)
        self._volumes = volumes(s.model_repository.resolve(), s.source_repository, s.container.mounts)
        self._devices = device_requests(s.gpus, self._docker.types)
        own = {"image", "command", *self.run_arguments(own_only=True)}
        for name in s.container.args:
            if name in own:
                raise UsageError(f"triton_docker_args {name!r} is set by tsweep itself: use the triton_docker_* keys or remove it")
        if s.container.shm_size is not None and not _SHM_SIZE.match(str(s.container.shm_size)):
            raise UsageError(f"triton_docker_shm_size must be a size such as 1g or 512m, got {s.container.shm_size!r}")
        if not s.container.image:
            raise UsageError("docker launch mode needs an image: set triton_docker_image")
        self._client = self._client_factory()

    def command(self) -> List[str]:
        """tritonserver's argv inside the container; user flags come last."""
        return [
            "tritonserver",
            f"--model-repository={self.settings.model_repository.resolve()}",
            "--model-control-mode=explicit",
            *(f"--{name}-port={port}" for name, port in CONTAINER_PORTS.items()),
            "--exit-timeout-secs=10",
        ] + self._flags

    def run_arguments(self, own_only: bool = False) -> Dict[str, Any]:
        """Everything ``containers.run`` gets besides the image and the command: tsweep's
        own arguments, then the user's ``triton_docker_args`` (checked not to overlap)."""
        s = self.settings
        labels = {str(k): str(v) for k, v in s.container.labels.items()}
        labels.update({LABEL: "1", f"{LABEL}.owner": f"{socket.gethostname()}:{os.getpid()}"})
        own = {
            "name": self._name,
            "detach": True,
            "ports": {f"{port}/tcp": (s.bind_address, None) for port in CONTAINER_PORTS.values()},
            "volumes": self._volumes,
            "device_requests": self._devices,
            "environment": self._env,
            "shm_size": s.container.shm_size,
            "labels": labels,
        }
        return own if own_only else {**own, **dict(s.container.args)}

    # -- run ----------------------------------------------------------------------------
    def start(self) -> RunningServer:
        if self._client is None:
            self.preflight()
        log_path = self.settings.server_log
        log_path.parent.mkdir(parents=True, exist_ok=True)
        image = self.settings.container.image
        self._name = f"tsweep-triton-{uuid.uuid4().hex[:12]}"
        print(f"tsweep: starting container {self._name} from {image} (Docker pulls the image first if it is not here)", file=sys.stderr)
        try:
            try:
                self._container = self._client.containers.run(image, self.command(), **self.run_arguments())
            except self._docker.errors.DockerException as exc:
                raise ServerError(f"Docker could not start {image}: {_explain(exc)}") from None
            self._follow_logs(log_path)
            ports = self._host_ports()
            host = client_host(self.settings.bind_address)
            client = TritonHTTP(f"http://{host}:{ports['http']}")
            client.wait_ready(self.settings.ready_timeout_s, alive=self._running)
            version = client.metadata().get("version", "?")
        except ServerError as exc:
            self.stop()  # the log is complete once the container is gone
            detail = last_log_lines(log_path)
            raise ServerError(f"{exc}{': ' + detail if detail else ''} (log: {log_path})") from None
        except BaseException:  # Ctrl-C or a bug half-way: no container may outlive us
            self.stop()
            raise
        return RunningServer(
            http_url=client.url,
            grpc_url=f"{host}:{ports['grpc']}",
            metrics_url=f"http://{host}:{ports['metrics']}/metrics",
            log_path=log_path,
            description=f"tritonserver {version}, container {self._name} ({image})",
        )

    def _running(self) -> bool:
        self._container.reload()
        return self._container.status in ("created", "running")

    def died(self) -> Optional[str]:
        """Why the container is gone (its status and exit code), or None while it runs or
        when the engine cannot be asked (the core's liveness probe decides then)."""
        if self._container is None:
            return None
        try:
            if self._running():
                return None
            code = (self._container.attrs.get("State") or {}).get("ExitCode")
        except self._docker.errors.DockerException:
            return None
        return f"container {self._name} is {self._container.status} (exit code {code})"

    def _host_ports(self) -> Dict[str, int]:
        """The host ports Docker chose, from the container's inspect data."""
        self._container.reload()
        published = (self._container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        ports = {}
        for name, port in CONTAINER_PORTS.items():
            bindings = published.get(f"{port}/tcp") or []
            if not bindings:
                raise ServerError(f"container {self._name} exited before publishing its ports (status {self._container.status})")
            ports[name] = int(bindings[0]["HostPort"])
        return ports

    def _follow_logs(self, log_path: Path) -> None:
        """Copy the container's output into the log file until the container stops."""
        stream = self._container.logs(stream=True, follow=True, stdout=True, stderr=True)

        def copy() -> None:
            with open(log_path, "ab") as log:
                try:
                    for chunk in stream:
                        log.write(chunk)
                        log.flush()
                except Exception:  # the engine went away: the container is being removed anyway
                    pass

        self._log_thread = threading.Thread(target=copy, name="tsweep-docker-log", daemon=True)
        self._log_thread.start()

    def stop(self) -> None:
        """Stop and remove the container; also one whose ``run`` was interrupted. Idempotent."""
        container, self._container = self._container, None
        name, self._name = self._name, None
        if self._client is None or (container is None and name is None):
            return
        errors = self._docker.errors.DockerException
        if container is None:  # run() was interrupted: the container may exist all the same
            try:
                container = self._client.containers.get(name)
            except errors:
                container = None
        if container is not None:
            try:
                container.stop(timeout=_STOP_TIMEOUT_S)
            except errors:
                pass  # already stopped or gone; remove(force) below settles it
            if self._log_thread is not None:
                self._log_thread.join(timeout=_STOP_TIMEOUT_S)
            try:
                container.remove(force=True)
            except errors:
                pass
        self._log_thread = None


def _explain(exc: Exception) -> str:
    """The engine's own words (e.g. 'pull access denied'), on one line."""
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())


@hookimpl
def tsweep_launchers():
    return {"docker": DockerLauncher}
