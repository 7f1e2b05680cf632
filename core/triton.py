"""Triton's HTTP control plane: readiness, model load/unload, statistics, metadata.

Stdlib only (http.client), because these calls are few, must have strict timeouts, and must
give Triton's own error text back to the user; the load itself is the load generator's job.
"""
from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import urlsplit

from tsweep import tls as tlsrules
from tsweep.errors import ServerError
from tsweep.records import TlsSettings


@dataclass(frozen=True)
class ServerStats:
    """Cumulative inference statistics of one model version, as Triton counts them (ns)."""

    success_count: int = 0
    success_ns: int = 0
    fail_count: int = 0
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0
    inference_count: int = 0
    execution_count: int = 0

    def __sub__(self, other: "ServerStats") -> "ServerStats":
        return ServerStats(*(a - b for a, b in zip(self.__dict__.values(), other.__dict__.values())))


class TlsFailure(ServerError):
    """The TLS handshake with the server failed: waiting longer will not help."""


class TritonHTTP:
    """A tiny client for one server's HTTP endpoint (``http://host:port``, or ``https://``
    through a TLS proxy, with ``tls`` saying what to trust)."""

    def __init__(self, url: str, timeout_s: float = 10.0, tls: TlsSettings = TlsSettings()):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        self.scheme = "https" if parts.scheme.lower() == "https" else "http"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 8000
        self.url = f"{self.scheme}://{self.host}:{self.port}"
        self.timeout_s = timeout_s
        self._context = tlsrules.https_context(tls) if self.scheme == "https" else None

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout_s, context=self._context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)

    def _request(self, method: str, path: str, body: Optional[dict] = None, timeout_s: Optional[float] = None):
        conn = self._connection(timeout_s or self.timeout_s)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data
        except ssl.SSLError as exc:
            raise TlsFailure(tlsrules.failure(self.url, exc)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ServerError(f"cannot reach Triton at {self.url}{path}: {exc}") from None
        finally:
            conn.close()

    def probe(self) -> None:
        """One liveness request that fails at once, with one line, when the endpoint speaks
        another protocol: a TLS error (wrong CA, not TLS at all), or a plain HTTP request
        that a TLS port drops. A server that is not up yet (refused, no reply) passes: the
        launcher waits for it."""
        conn = self._connection(5.0)
        try:
            conn.request("GET", "/v2/health/live")
            conn.getresponse().read()
        except ssl.SSLError as exc:
            raise TlsFailure(tlsrules.failure(self.url, exc)) from None
        except (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError) as exc:
            if self.scheme == "http":
                raise ServerError(
                    f"Triton at {self.url} did not answer plain HTTP ({exc or type(exc).__name__}): "
                    f"if it serves TLS, write the endpoint as https://{self.host}:{self.port}"
                ) from None
        except OSError:
            pass
        finally:
            conn.close()

    def _json(self, method: str, path: str, body: Optional[dict] = None, timeout_s: Optional[float] = None) -> Any:
        status, data = self._request(method, path, body, timeout_s)
        parsed = json.loads(data) if data else {}
        if status != 200:
            message = parsed.get("error", data.decode(errors="replace")) if isinstance(parsed, dict) else data
            raise ServerError(f"Triton refused {method} {path}: {message}")
        return parsed

    def _healthy(self, what: str, timeout_s: float) -> bool:
        try:
            status, _ = self._request("GET", f"/v2/health/{what}", timeout_s=timeout_s)
        except TlsFailure:
            raise  # no amount of waiting fixes a certificate
        except ServerError:
            return False
        return status == 200

    def is_ready(self) -> bool:
        return self._healthy("ready", 2.0)

    def is_live(self) -> bool:
        """Does the server answer at all (liveness, not model readiness)?"""
        return self._healthy("live", 5.0)

    def wait_ready(self, timeout_s: float, alive=lambda: True) -> None:
        """Poll readiness until ``timeout_s``; ``alive()`` false means the process died."""
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while time.monotonic() < deadline:
            if self.is_ready():
                return
            if not alive():
                raise ServerError(f"tritonserver exited before it became ready at {self.url}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise ServerError(f"Triton at {self.url} was not ready after {timeout_s:.0f} s: see the server log")

    def metadata(self) -> Dict[str, Any]:
        return self._json("GET", "/v2")

    def load_model(self, name: str, timeout_s: float = 300.0, config: Optional[str] = None, files: Mapping[str, bytes] = {}) -> None:
        """Load (or reload) a model; Triton's message on failure.

        Without ``config`` the server reads the model from its own repository. ``config`` (the
        model config as JSON) replaces the config.pbtxt there; with ``files`` too ({path in the
        model folder: content}, e.g. ``1/model.onnx``) the request carries the whole model, so
        the server needs no copy of it (Triton's model repository extension)."""
        parameters: Dict[str, str] = {}
        if config is not None:
            parameters["config"] = config
        for path, content in files.items():
            parameters[f"file:{path}"] = base64.b64encode(content).decode("ascii")
        self._json("POST", f"/v2/repository/models/{name}/load", {"parameters": parameters} if parameters else {}, timeout_s=timeout_s)

    def repository_index(self) -> List[Dict[str, Any]]:
        """Every model of the served repository with its state (READY, UNLOADING, UNAVAILABLE, ...)."""
        return self._json("POST", "/v2/repository/index", {}, timeout_s=5.0) or []

    def is_model_ready(self, name: str) -> bool:
        status, _ = self._request("GET", f"/v2/models/{name}/ready", timeout_s=5.0)
        return status == 200

    def unload_model(self, name: str, timeout_s: float = 120.0) -> None:
        self._json("POST", f"/v2/repository/models/{name}/unload", {"parameters": {"unload_dependents": True}}, timeout_s=timeout_s)

    def register_system_shared_memory(self, name: str, key: str, byte_size: int, offset: int = 0) -> None:
        """Let the server use the system shared memory region ``key`` (/dev/shm) as ``name``."""
        self._json("POST", f"/v2/systemsharedmemory/region/{name}/register", {"key": key, "offset": offset, "byte_size": byte_size})

    def unregister_system_shared_memory(self, name: str) -> None:
        self._json("POST", f"/v2/systemsharedmemory/region/{name}/unregister", {})

    def system_shared_memory(self) -> List[str]:
        """The names of the system shared memory regions the server has registered."""
        return sorted(r["name"] for r in self._json("GET", "/v2/systemsharedmemory/status"))

    def model_config(self, name: str) -> Dict[str, Any]:
        return self._json("GET", f"/v2/models/{name}/config")

    def stats(self, name: str) -> ServerStats:
        data = self._json("GET", f"/v2/models/{name}/stats")
        total = ServerStats()
        for entry in data.get("model_stats", []):
            s = entry.get("inference_stats", {})

            def ns(key: str) -> int:
                return int(s.get(key, {}).get("ns", 0))

            total = ServerStats(
                total.success_count + int(s.get("success", {}).get("count", 0)),
                total.success_ns + ns("success"),
                total.fail_count + int(s.get("fail", {}).get("count", 0)),
                total.queue_ns + ns("queue"),
                total.compute_input_ns + ns("compute_input"),
                total.compute_infer_ns + ns("compute_infer"),
                total.compute_output_ns + ns("compute_output"),
                total.inference_count + int(entry.get("inference_count", 0)),
                total.execution_count + int(entry.get("execution_count", 0)),
            )
        return total
