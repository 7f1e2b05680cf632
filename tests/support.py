"""Helpers shared by the tests (fixtures live in conftest.py)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Tuple

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL_REPOSITORY = EXAMPLES / "model_repository"
TSWEEP = [sys.executable, "-m", "tsweep"]

#: A four-point sweep of add_sub in a known order: default and one variant (1 instance,
#: max_batch_size 8), each at concurrency 1 and 2, with no final race (its looks depend on
#: the machine's noise; tests/test_repeats.py races). Add a window length.
TINY_SWEEP = [
    "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
    "--output-model-repository-path", "out", "--run-config-search-mode", "brute",
    "--run-config-search-max-instance-count", "1", "--run-config-search-min-model-batch-size", "8",
    "--run-config-search-max-model-batch-size", "8", "--concurrency", "1,2", "--remeasure-top-configs", "0",
]  # fmt: skip


def run_tsweep(*args: str, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [*TSWEEP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def stored(workdir: Path) -> list:
    """The rows of the results store under ``workdir``, after SQLite's integrity check."""
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    conn.row_factory = sqlite3.Row
    found = conn.execute("SELECT * FROM measurements ORDER BY id").fetchall()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    return found


def wait_gone(pid: int, timeout_s: float = 30.0) -> bool:
    """True once process ``pid`` has exited (bounded wait; it need not be our child)."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def eventually(read, want=1, timeout_s: float = 5.0):
    """``read()`` once it returns ``want``, or its last value after ``timeout_s``: for facts
    that settle just after the call that causes them (Triton's statistics after a response,
    a joined thread's /proc entry), polled, bounded."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.01)
        value = read()
    return value


def tree(path: Path) -> list:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def install_fake_distribution(site: Path, dist: str, modules: dict, entry_points: dict) -> None:
    """Write modules and a minimal .dist-info, as pip would have installed them."""
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tsweep]\n{lines}\n")


# ----------------------------------------------------------------------------- TLS


def make_certificates(folder: Path) -> dict:
    """A CA, a server certificate it signed for 127.0.0.1/localhost, a client certificate it
    signed (mutual TLS), and a second CA that signed neither ("wrong"), made with the
    openssl CLI; {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for ca in ("ca", "wrong-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=tsweep test {ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tsweep client", "-keyout", "client.key", "-out", "client.csr")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "client.crt")
    return {name: folder / f"{name}" for name in ("ca.crt", "wrong-ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


class TlsProxy:
    """A TLS-terminating proxy on 127.0.0.1 in front of a plain TCP port (Triton's HTTP
    endpoint has no TLS; a user's would be nginx or the like), optionally asking clients for
    a certificate signed by ``client_ca`` (mutual TLS). A thread accepts; each
    connection gets two threads copying bytes each way. ``stop()`` closes everything."""

    def __init__(self, target_port: int, certificate: Path, key: Path, client_ca: Path | None = None):
        import socket
        import ssl
        import threading

        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(certificate), str(key))
        if client_ca is not None:  # mutual TLS: clients must show a certificate this CA signed
            self.context.load_verify_locations(str(client_ca))
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list = []
        self._handshaking = None
        self._lock = threading.Lock()
        self._stopped = False
        self._accepting = threading.Thread(target=self._accept, name="tls-proxy", daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        import socket
        import ssl
        import threading

        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: stopping
            with self._lock:
                self._handshaking = raw  # stop() closes it: a client that never finishes its handshake must not hold the thread
            try:
                raw.settimeout(10)
                client = self.context.wrap_socket(raw, server_side=True)
                client.settimeout(None)
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except (OSError, ssl.SSLError):
                raw.close()  # a failed handshake (wrong CA on the client side, plain HTTP): drop it
                continue
            with self._lock:
                if self._stopped:
                    client.close(); upstream.close()  # noqa: E702
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            TlsProxy._end(source, sink)

    @staticmethod
    def _end(*sockets) -> None:
        """Shut down, then close: the other direction's thread may be blocked in recv() on the
        same socket, and a merely closed socket stays open under it (tritonserver then waits
        its whole exit timeout for that connection)."""
        import socket

        for s in sockets:
            for end in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                try:
                    end()
                except OSError:
                    pass

    def stop(self) -> None:
        import socket

        with self._lock:
            self._stopped = True
            sockets, self._sockets = self._sockets, []
            if self._handshaking is not None:
                sockets.append(self._handshaking)
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept(); close() alone does not
        except OSError:
            pass
        self.listener.close()
        self._end(*sockets)
        self._accepting.join(timeout=5)


@contextmanager
def serving_example(tmp: Path, name: str) -> Iterator[Tuple]:
    """(server, model): a real tritonserver serving the example model ``name``, loaded under its own name;
    stopped (by its PID, through the launcher) when the block ends."""
    from tsweep import repository
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings, Variant
    from tsweep.triton import TritonHTTP

    out = tmp / "repo"
    repository.prepare_output(out, override=False)
    (model,) = repository.find_models(str(MODEL_REPOSITORY), [name])
    repository.write_variant(out, model, Variant(name, model.config, {}, name=name))
    launcher = LocalLauncher(LaunchSettings(model_repository=out, log_dir=tmp / "log", ready_timeout_s=60))
    server = launcher.start()
    try:
        TritonHTTP(server.http_url).load_model(name)
        yield server, model
    finally:
        launcher.stop()
