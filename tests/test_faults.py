"""Faults injected for real: a killed server, models that fail to load, hang or err.

Every test runs the real CLI (or profile()) against the real embedded tritonserver, with
python-backend models written here that misbehave on purpose.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.support import TINY_SWEEP, TSWEEP, run_tsweep
from tests.support import stored as rows
from tsweep.triton import TritonHTTP

pytestmark = [pytest.mark.server, pytest.mark.slow]

_MODEL_PY = r'''
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

KIND = {kind!r}


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        if KIND == "picky" and config["max_batch_size"] > 4:
            raise ValueError(f"picky: max_batch_size {{config['max_batch_size']}} is more than 4")
        self.count = 0

    def execute(self, requests):
        responses = []
        for request in requests:
            self.count += 1
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            if KIND == "flaky" and self.count % 4 == 0:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("flaky: every 4th request fails")))
                continue
            if KIND == "hang":
                end = time.monotonic() + 20.0
                while time.monotonic() < end and not request.is_cancelled():
                    time.sleep(0.05)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", a.astype(np.float32))]))
        return responses
'''

_CONFIG = """
backend: "python"
max_batch_size: 4
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""


@pytest.fixture
def faulty_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "faulty"
    for kind in ("picky", "hang", "flaky"):
        (repo / kind / "1").mkdir(parents=True)
        (repo / kind / "1" / "model.py").write_text(_MODEL_PY.format(kind=kind))
        (repo / kind / "config.pbtxt").write_text(_CONFIG.format())
    return repo


def test_server_killed_mid_window_fails_that_point_restarts_and_goes_on(workdir: Path):
    args = [*TINY_SWEEP, "--measurement-window-s", "0.5"]
    proc = subprocess.Popen([*TSWEEP, *args], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_pid, lines = None, []
    for line in proc.stderr:
        lines.append(line)
        if found := re.search(r"pid (\d+) at (http://\S+)", line):
            pid, url = int(found.group(1)), found.group(2).rstrip(")")
        if line.startswith("[  2/") and killed_pid is None:
            # the second point (add_sub_config_default, concurrency 2) is loading or measuring:
            # kill the server once its requests are being served, i.e. inside a window
            client, deadline = TritonHTTP(url), time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if client.stats("add_sub_config_default").success_count > 0:
                        break
                except Exception:
                    pass
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
            killed_pid = pid
            break
    out, err = proc.communicate(timeout=300)
    err = "".join(lines) + err
    assert proc.returncode == 0, err
    stored = rows(workdir)
    assert len(stored) == 4  # the lost point is recorded, the sweep went on
    lost = [r for r in stored if r["status"] == "failed"]
    assert len(lost) == 1 and lost[0]["load_value"] == 2.0
    assert lost[0]["error"].startswith("tritonserver died during this point (killed by SIGKILL")
    assert all(r["status"] in ("ok", "unstable") for r in stored if r["id"] != lost[0]["id"])  # later points on the new server
    assert "1 failed; the server was restarted 1 time(s)" in err
    assert "failed: add_sub_config_default concurrency=2 b1: tritonserver died during this point (killed by SIGKILL" in err
    assert len(re.findall(r"pid (\d+) at http", err)) == 2 and not psutil.pid_exists(killed_pid)


def test_variant_that_fails_to_load_is_recorded_with_tritons_message_and_not_retried(workdir: Path, faulty_repo: Path):
    args = [
        "profile", "--model-repository", str(faulty_repo), "--profile-models", "picky", "--output-model-repository-path", "out",
        "--run-config-search-mode", "brute", "--run-config-search-max-instance-count", "1",
        "--run-config-search-min-model-batch-size", "4", "--run-config-search-max-model-batch-size", "8",
        "--concurrency", "1", "--measurement-window-s", "0.3", "--remeasure-top-configs", "0",  # one look each
    ]  # fmt: skip
    first = run_tsweep(*args, cwd=workdir)
    assert first.returncode == 0, first.stderr
    by_variant = {r["variant"]: r for r in rows(workdir)}
    assert set(by_variant) == {"picky_config_default", "picky_config_0", "picky_config_1"}  # each once
    bad = by_variant["picky_config_1"]  # max_batch_size 8
    assert bad["status"] == "failed" and bad["error"].startswith("variant failed to load: ")
    assert "picky: max_batch_size 8 is more than 4" in bad["error"]  # Triton's message, with the model's own text
    assert by_variant["picky_config_0"]["status"] in ("ok", "unstable")
    assert "Best config for picky: " in first.stdout

    again = run_tsweep(*args, cwd=workdir)  # not retried: the failure is the result
    assert again.returncode == 0 and "0 points measured" in again.stderr
    assert len(rows(workdir)) == 3


def test_hung_model_is_bounded_by_the_request_timeout_and_leaves_nothing_behind(workdir: Path, faulty_repo: Path, monkeypatch):
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run
    from tsweep.sweep import profile

    monkeypatch.chdir(workdir)
    threads, children = threading.active_count(), set(psutil.Process().children(recursive=True))
    config = load_config(None, {
        "model_repository": str(faulty_repo), "profile_models": "hang", "output_model_repository_path": "out",
        "run_config_search_disable": True, "concurrency": "1,2", "request_timeout_s": 1.0,
        "measurement_window_s": 0.3, "max_windows": 3,
    })  # fmt: skip
    started = time.monotonic()
    outcome = profile(Run.build(config, make_plugin_manager(), sweep=True))
    assert time.monotonic() - started < 120  # bounded (mostly server start and stop), not 20 s per request
    stored = rows(workdir)
    assert [r["status"] for r in stored] == ["failed"]  # the walk ends at the failed point
    assert stored[0]["error"] == "all requests failed: timeout"
    assert outcome.failed and outcome.failed[0].error == stored[0]["error"]
    assert threading.active_count() == threads  # load generator and sampler threads are gone
    assert set(psutil.Process().children(recursive=True)) == children  # tritonserver and stubs too


def test_model_that_fails_some_requests_fails_the_point_past_the_threshold(workdir: Path, faulty_repo: Path):
    args = [
        "profile", "--model-repository", str(faulty_repo), "--profile-models", "flaky", "--output-model-repository-path", "out",
        "--run-config-search-disable", "--concurrency", "1", "--measurement-window-s", "0.3", "--max-error-fraction", "0.05",
    ]  # fmt: skip
    result = run_tsweep(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    (row,) = rows(workdir)
    assert row["status"] == "failed" and row["errors"] > 0 and row["throughput"] > 0  # figures kept
    # the rate over every window of the point (the model fails exactly every 4th request)
    assert re.match(r"^2[45]\.\d% of requests failed \(more than 5%\), e\.g\. .*flaky: every 4th request fails", row["error"]), row["error"]
    assert "No successful measurement of flaky" in result.stdout


def test_pinned_port_taken_by_another_process_is_refused_before_anything_is_written(workdir: Path):
    import socket

    from tests.support import tree

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_tsweep(*TINY_SWEEP, "--triton-http-endpoint", f"127.0.0.1:{port}", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: port {port} of triton_http_endpoint is not free on 127.0.0.1 (Address already in use): stop what uses it, "
        f"choose another port, or leave triton_http_endpoint unset so that tsweep picks free ports\n"
    )
    assert tree(workdir) == []


def test_binding_beyond_loopback_needs_the_flag_and_is_logged(workdir: Path):
    import socket

    with socket.socket() as squatter:  # makes the run stop in preflight: no server binds 0.0.0.0 here
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_tsweep(*TINY_SWEEP, "--triton-bind-address", "0.0.0.0", "--triton-http-endpoint", f"127.0.0.1:{port}", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "tsweep: binding tritonserver to 0.0.0.0 (not loopback) as asked"
    bad = run_tsweep(*TINY_SWEEP, "--triton-bind-address", "localhost; rm -rf /", cwd=workdir)
    assert bad.returncode == 2 and bad.stderr == "error: triton_bind_address 'localhost; rm -rf /' is not an IP address: use e.g. 127.0.0.1\n"
