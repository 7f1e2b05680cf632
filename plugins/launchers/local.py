"""Launch mode ``local``: run tritonserver as a child process on this machine.

The server binds 127.0.0.1 on free ports, serves the output model repository with explicit
model control, logs to ``settings.server_log`` (``<log_dir>/tritonserver.log`` unless
``triton_output_path`` says), and runs in its own process group so that stopping it stops
everything it started (python backend stubs included).
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tsweep import tls
from tsweep.errors import ServerError, UsageError
from tsweep.plugin import hookimpl
from tsweep.records import LaunchSettings, RunningServer
from tsweep.triton import TritonHTTP

from tsweep.plugins.launchers.embedded import ServerBinary, assemble_backends, find_server

#: Flags the launcher sets itself; a user flag may not fight them.
MANAGED_FLAGS = {
    "model-repository", "model-store", "model-control-mode", "http-port", "grpc-port",
    "metrics-port", "http-address", "grpc-address", "metrics-address", "load-model",
}  # fmt: skip
_FLAG_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Lines the server always prints on a machine without a GPU; noise, not alarms.
_HARMLESS = ("NVML", "DCGM", "CUDA driver", "cuda", "GPU metrics", "pinned memory", "CudaMemoryPool")
_START_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


def client_host(bind_address: str) -> str:
    """Where tsweep reaches a server bound to ``bind_address``, as a URL host.

    The server's own address, except a wildcard (0.0.0.0 or ::), which means "every
    interface": loopback is one of them, and the one that stays on this machine. IPv6
    literals are bracketed, as URLs and gRPC targets need."""
    if bind_address in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind_address == "::":
        return "[::1]"
    return f"[{bind_address}]" if ":" in bind_address else bind_address


def free_ports(pinned: Sequence[Optional[int]], address: str = "127.0.0.1") -> List[int]:
    """One port per slot: the pinned one where given, else a free one distinct from all the others.

    Every probe socket stays bound until all slots are filled, so the kernel cannot hand the same
    ephemeral port out twice (it did: gRPC and metrics once drew one port and the server refused
    to start); a drawn port that equals a pinned one is drawn again.
    """
    probes: List[socket.socket] = []
    try:
        ports: List[int] = []
        for want in pinned:
            port = want
            while port is None or (want is None and port in ports + [p for p in pinned if p]):
                sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
                probes.append(sock)
                sock.bind((address, 0))
                port = sock.getsockname()[1]
            ports.append(port)
        return ports
    finally:
        for sock in probes:
            sock.close()


def pinned_port(endpoint: Optional[str], key: str) -> Optional[int]:
    """The port of a ``host:port`` (or URL) endpoint the user gave for local mode, if any."""
    if not endpoint:
        return None
    found = re.search(r":(\d+)(?:/|$)", endpoint)
    if not found or not 0 < int(found.group(1)) < 65536:
        raise UsageError(f"{key} {endpoint!r} has no valid port: write it as host:port, e.g. 127.0.0.1:8000")
    return int(found.group(1))


def check_port_free(address: str, port: int, key: str) -> None:
    """Refuse, before anything starts, a pinned port another process already holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise UsageError(
                f"port {port} of {key} is not free on {address} ({exc.strerror}): stop what uses it, choose another port, "
                f"or leave {key} unset so that tsweep picks free ports"
            ) from None


def user_flags(flags) -> List[str]:
    """``triton_server_flags`` as argv items, refusing option injection and managed flags."""
    argv = []
    for name, value in dict(flags).items():
        name = str(name).lstrip("-") if str(name).startswith("--") else str(name)
        if not _FLAG_NAME.match(name):
            raise UsageError(f"invalid tritonserver flag name {name!r} in triton_server_flags: use names like 'log-verbose'")
        if name.replace("_", "-") in MANAGED_FLAGS:
            raise UsageError(f"tritonserver flag {name!r} is set by tsweep itself: remove it from triton_server_flags")
        if isinstance(value, (dict, list)):
            raise UsageError(f"tritonserver flag {name!r} needs a single value, got {value!r}")
        if isinstance(value, bool):
            value = str(value).lower()
        argv.append(f"--{name.replace('_', '-')}={value}")
    return argv


def server_environment(values, gpus: Sequence[str] = ()) -> Dict[str, str]:
    """``triton_server_environment`` as strings, refusing names a shell or Docker would reject,
    then ``CUDA_VISIBLE_DEVICES``: the UUIDs of the run's GPUs (``gpus``; empty: none), as
    Model Analyzer sets it. The ``gpus`` key is the one way to choose them."""
    env = {}
    for name, value in dict(values).items():
        if not _ENV_NAME.match(str(name)):
            raise UsageError(f"invalid environment variable name {name!r} in triton_server_environment: use names like 'OMP_NUM_THREADS'")
        if isinstance(value, (dict, list)) or value is None:
            raise UsageError(f"environment variable {name!r} needs a single value, got {value!r}")
        if name == "CUDA_VISIBLE_DEVICES":
            raise UsageError("CUDA_VISIBLE_DEVICES in triton_server_environment: choose the server's GPUs with the gpus key instead")
        env[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return env


def last_log_lines(path: Path, count: int = 3) -> str:
    """The last meaningful lines of a server log, without the no-GPU noise."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    useful = [l.strip() for l in lines if l.strip() and not any(h in l for h in _HARMLESS)]
    return " | ".join(useful[-count:])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when tsweep dies, even by ``kill -9``.

    The server runs in its own process group (so that stop() reaches its backend stubs),
    which also means nothing else would stop it if tsweep were killed. Linux only; elsewhere
    this is a no-op and stop() remains the only way.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


#: The most seconds stop() spends unloading models before it signals the server.
UNLOAD_BEFORE_STOP_S = 3.0


def unload_everything(client: TritonHTTP, timeout_s: float = UNLOAD_BEFORE_STOP_S) -> None:
    """Unload every loaded model and wait until they are gone, best effort.

    On SIGTERM tritonserver unloads its models itself, but it looks at them only once a
    second, so a python-backend model that takes 1.1 s to unload keeps the server 2-3 s;
    unloaded first, the server exits at its first look (1.5 s in all, measured on add_sub).
    Any failure leaves the rest to SIGTERM."""
    deadline = time.monotonic() + timeout_s
    try:
        for entry in client.repository_index():
            if entry.get("state") == "READY":
                client.unload_model(entry["name"], timeout_s=timeout_s)
        while time.monotonic() < deadline:
            if not any(e.get("state") in ("READY", "UNLOADING", "LOADING") for e in client.repository_index()):
                return
            time.sleep(0.02)  # polling the server's own state, not standing in for it
    except (ServerError, OSError, ValueError, KeyError):
        return


def _reap_group(pgid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL what is left of the process group (e.g. backend stubs) until it is empty."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class LocalLauncher:
    """Starts one tritonserver child process; see the module docstring.

    A vendor launcher may subclass it and override the three public seams, which are all it
    needs to change how the process starts: :meth:`command` (the argv, e.g. behind a wrapper
    that execs the server), :meth:`environment` and :meth:`working_directory`.
    """

    def __init__(self, settings: LaunchSettings):
        self.settings = settings
        self._binary: Optional[ServerBinary] = None
        self._proc: Optional[subprocess.Popen] = None
        self._backends: Optional[Path] = None
        self._log = None
        self._pinned = [None, None, None]
        self._client: Optional[TritonHTTP] = None  # the started server's, for unloading before it is stopped

    def preflight(self) -> None:
        tls.refuse_https(self.settings.http_endpoint, "local")
        self._binary = find_server(self.settings.server_path)
        self._extra = user_flags(self.settings.server_flags)
        self._pinned = [
            pinned_port(self.settings.http_endpoint, "triton_http_endpoint"),
            pinned_port(self.settings.grpc_endpoint, "triton_grpc_endpoint"),
            pinned_port(self.settings.metrics_url, "triton_metrics_url"),
        ]
        self._env = server_environment(self.settings.environment, self.settings.gpus)
        if self.settings.bind_address != "127.0.0.1":
            print(f"tsweep: binding tritonserver to {self.settings.bind_address} (not loopback) as asked", file=sys.stderr)
        keys = ("triton_http_endpoint", "triton_grpc_endpoint", "triton_metrics_url")
        for port, key in zip(self._pinned, keys):
            if port is not None:
                check_port_free(self.settings.bind_address, port, key)

    def command(self, ports) -> List[str]:
        """The server's argv for ``ports`` = (http, grpc, metrics); user flags come last."""
        http, grpc, metrics = ports
        address = self.settings.bind_address
        argv = [
            os.path.abspath(self._binary.path),  # a relative path must survive another working directory
            f"--model-repository={self.settings.model_repository.resolve()}",
            "--model-control-mode=explicit",
            f"--http-address={address}", f"--http-port={http}",
            f"--grpc-address={address}", f"--grpc-port={grpc}",
            f"--metrics-address={address}", f"--metrics-port={metrics}",
            "--exit-timeout-secs=10",
        ]  # fmt: skip
        if self._backends:
            argv.append(f"--backend-directory={self._backends}")
        return argv + self._extra

    def environment(self) -> dict:
        """The server's environment: ours, ``triton_server_environment`` and the GPUs
        (``CUDA_VISIBLE_DEVICES``), python3 first on PATH."""
        env = {**os.environ, **self._env}
        # The python backend stub imports numpy through the first python3 on PATH.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def working_directory(self) -> Optional[Path]:
        """Where the server runs; None: tsweep's own working directory."""
        return None

    def start(self) -> RunningServer:
        if self._binary is None:
            self.preflight()
        if self._binary.embedded_root and not self._backends:
            self._backends = assemble_backends(self._binary.embedded_root)
        log_path = self.settings.server_log
        log_path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(_START_ATTEMPTS):
            ports = free_ports(self._pinned, self.settings.bind_address)
            self._log = open(log_path, "ab")
            self._proc = subprocess.Popen(
                self.command(ports),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                cwd=self.working_directory(),
                start_new_session=True,  # own process group: stop() reaches the stubs too
                preexec_fn=_die_with_parent,
            )
            host = client_host(self.settings.bind_address)
            client = TritonHTTP(f"http://{host}:{ports[0]}")
            try:
                client.wait_ready(self.settings.ready_timeout_s, alive=lambda: self._proc.poll() is None)
            except ServerError as exc:
                port_clash = "address already in use" in last_log_lines(log_path, 20).lower()
                self.stop()
                if port_clash and any(self._pinned):
                    raise ServerError(f"a port given in triton_*_endpoint was taken before tritonserver could bind it: {exc} (log: {log_path})") from None
                if port_clash and attempt + 1 < _START_ATTEMPTS:
                    continue  # another process took a port between our probe and the bind
                detail = last_log_lines(log_path)
                raise ServerError(f"{exc}{': ' + detail if detail else ''} (log: {log_path})") from None
            self._client = client
            version = client.metadata().get("version", "?")
            return RunningServer(
                http_url=client.url,
                grpc_url=f"{host}:{ports[1]}",
                metrics_url=f"http://{host}:{ports[2]}/metrics",
                pid=self._proc.pid,
                log_path=log_path,
                description=f"tritonserver {version}, {self._binary.origin}, pid {self._proc.pid}",
            )
        raise ServerError("could not start tritonserver")  # pragma: no cover (loop returns or raises)

    def died(self) -> Optional[str]:
        """Why the server process is gone (exit code or signal, last log lines), or None."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        code = proc.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        detail = last_log_lines(self.settings.server_log)
        return f"{how}{'; log: ' + detail if detail else ''}"

    def stop(self) -> None:
        """Unload the models, SIGTERM the process group, SIGKILL it if it lingers; always cleans up."""
        proc, self._proc = self._proc, None
        client, self._client = self._client, None
        if proc is not None and client is not None and proc.poll() is None:
            unload_everything(client)
        if proc is not None:
            for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
            _reap_group(proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._backends is not None:
            shutil.rmtree(self._backends, ignore_errors=True)
            self._backends = None


@hookimpl
def tsweep_launchers():
    return {"local": LocalLauncher}
