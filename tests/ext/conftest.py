"""A real tritonserver (the one nvidia-pytriton ships, python backend) for the load-generator tests.

The ``triton`` fixture is session scoped: it writes three tiny python-backend models into a tmp
model repository and serves them with tsweep's local launcher (127.0.0.1, free ports,
readiness polled with a deadline, process group stopped at the end).

Models:
  add_sub  max_batch_size 8, INPUT0/INPUT1 FP32 [4] -> OUTPUT0 = a+b, OUTPUT1 = a-b
  flaky    same signature; answers with an error ("boom") for every request whose INPUT0[0] < 0
  slow     same signature as add_sub, sleeps 0.5 s per request (returns early, with an error,
           if Triton reports the request as cancelled, so abandoned requests do not pile up)
"""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsweep.plugins.launchers.local import LocalLauncher
from tsweep.records import LaunchSettings
from tsweep.triton import TritonHTTP

_MODEL_PY = r'''
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

KIND = {kind!r}


class TritonPythonModel:
    def initialize(self, args):
        self.config = json.loads(args["model_config"])

    def _cancelled(self, request):
        try:
            return request.is_cancelled()
        except Exception:
            return False

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            if KIND == "flaky" and float(a.reshape(-1)[0]) < 0:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("boom")))
                continue
            if KIND == "slow":
                end = time.monotonic() + 0.5
                cancelled = False
                while time.monotonic() < end:
                    if self._cancelled(request):
                        cancelled = True
                        break
                    time.sleep(0.01)
                if cancelled:
                    responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("cancelled")))
                    continue
            out0 = pb_utils.Tensor("OUTPUT0", (a + b).astype(np.float32))
            out1 = pb_utils.Tensor("OUTPUT1", (a - b).astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses
'''

_CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: 8
input [
  {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }},
  {{ name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }}
]
output [
  {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }},
  {{ name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] }}
]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

MODELS = ("add_sub", "flaky", "slow")


@dataclass
class TritonServer:
    host: str
    http_port: int

    def get_json(self, path: str, timeout: float = 5.0):
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, (json.loads(body) if body else None)
        finally:
            conn.close()

    def success_count(self, model: str) -> int:
        status, stats = self.get_json(f"/v2/models/{model}/stats")
        assert status == 200, stats
        return int(stats["model_stats"][0]["inference_stats"]["success"]["count"])

    def failure_count(self, model: str) -> int:
        status, stats = self.get_json(f"/v2/models/{model}/stats")
        assert status == 200, stats
        return int(stats["model_stats"][0]["inference_stats"]["fail"]["count"])


def write_model_repository(root: Path, models=MODELS) -> Path:
    repo = root / "models"
    for name in models:
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "config.pbtxt").write_text(_CONFIG.format(name=name))
        (repo / name / "1" / "model.py").write_text(_MODEL_PY.format(kind=name))
    return repo


def start_triton(root: Path, models=MODELS) -> tuple[TritonServer, LocalLauncher]:
    """tsweep's own local launcher serving the test models (loaded explicitly)."""
    repo = write_model_repository(root, models)
    # Do not wait long for abandoned slow requests when stopping.
    settings = LaunchSettings(model_repository=repo, log_dir=root / "log", ready_timeout_s=120, server_flags={"exit-timeout-secs": 2})
    launcher = LocalLauncher(settings)
    server = launcher.start()
    control = TritonHTTP(server.http_url)
    for name in models:
        control.load_model(name)
    return TritonServer(control.host, control.port), launcher


@pytest.fixture(scope="session")
def triton(tmp_path_factory):
    server, launcher = start_triton(tmp_path_factory.mktemp("triton"))
    try:
        yield server
    finally:
        launcher.stop()
