"""Stateful models (issue 16, point 3): perf_analyzer's sequence flags, the sequences both
load generators send, the space of a sequence model, and a profile of the example
accumulator on the embedded server (docs/sequence-models.md).

The native generator's wire format is checked against a recording socket server: Triton
does not tell which sequence ids and flags it received, the bytes on the wire do. That the
real server takes them is shown by the accumulator, which fails any request whose controls
are wrong (a sequence not started, or started twice)."""
from __future__ import annotations

import csv
import json
import socket
import threading
from pathlib import Path

import pytest

from tsweep import repository, sequences
from tsweep.config import load_config
from tsweep.errors import UsageError
from tsweep.ext.loadgen import HttpLoad, build_http_request, sequence_placeholder
from tsweep.records import SequenceSettings
from tsweep.settings import load_settings

from tests.support import MODEL_REPOSITORY, eventually, run_tsweep, serving_example, stored
from tests.test_reports import pdf_text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- config


def test_flags_reach_each_models_load_settings(tmp_path):
    config = load_config(write(tmp_path, """
perf_analyzer_flags: {sequence-length: 10, sequence-length-variation: 0}
profile_models:
  accumulator:
    perf_analyzer_flags: {sequence-id-range: "1000:1999", serial-sequences: true, num-of-sequences: 8}
  mlp: {}
"""), {})  # fmt: skip
    assert load_settings(config, "accumulator").sequences == SequenceSettings(10, 0.0, 1000, 1999, True, 8)
    assert load_settings(config, "mlp").sequences == SequenceSettings(length=10, variation=0.0)
    assert load_settings(load_config(None, {}), "mlp").sequences is None
    start = load_config(write(tmp_path, "perf_analyzer_flags: {start-sequence-id: 7}\n"), {})
    assert load_settings(start).sequences == SequenceSettings(id_start=7)


@pytest.mark.parametrize(
    "flags, message",
    [
        ("sequence-id-range: 'a:b'", "sequence_id_range 'a:b' is not 'start:end' or 'start': use e.g. 1:1000"),
        ("sequence-id-range: '9:3'", "sequence_id_range '9:3' must be 1 or more and start <= end: use e.g. 1:1000"),
        ("sequence-length-variation: 150", "sequence_length_variation must be a percent from 0 to 100, got 150"),
        ("sequence-length: 0", "config key 'sequence_length' must be greater than 0, got 0"),
    ],
)  # fmt: skip
def test_bad_sequence_values_are_one_line(tmp_path, flags, message):
    with pytest.raises(UsageError) as err:
        load_settings(load_config(write(tmp_path, f"perf_analyzer_flags: {{{flags}}}\n"), {}))
    assert str(err.value) == message


def test_a_sequence_model_gets_sequences_without_flags_and_others_refuse_them():
    (accumulator, mlp) = repository.find_models(str(MODEL_REPOSITORY), ["accumulator", "mlp"])
    plain = load_settings(load_config(None, {}))
    assert sequences.for_model(accumulator.config, plain) == SequenceSettings()  # perf_analyzer's defaults
    assert sequences.for_model(mlp.config, plain) is None
    asked = load_settings(load_config(None, {"sequence_length": 5}))
    sequences.check("accumulator", accumulator.config, asked)
    with pytest.raises(UsageError, match="^sequence settings .* given for model 'mlp', whose config has no sequence_batching"):
        sequences.check("mlp", mlp.config, asked)
    with pytest.raises(UsageError, match="holds fewer ids than the 4 sequences in flight"):
        sequences.check_ids(SequenceSettings(id_start=1, id_end=3), 4)


def test_global_flags_are_for_the_stateful_models_of_a_run_and_own_flags_must_fit(tmp_path):
    models = repository.find_models(str(MODEL_REPOSITORY), ["accumulator", "mlp"])
    both = load_config(write(tmp_path, "perf_analyzer_flags: {sequence-length: 5}\n"), {})
    sequences.check_run(both, models, lambda name: load_settings(both, name))  # mlp gets none: for_model says so
    with pytest.raises(UsageError, match="given for model 'mlp', whose config has no sequence_batching"):
        sequences.check_run(both, models[1:], lambda name: load_settings(both, name))
    own = load_config(write(tmp_path, "profile_models:\n  accumulator: {}\n  mlp:\n    perf_analyzer_flags: {sequence-length: 5}\n"), {})
    with pytest.raises(UsageError, match="given for model 'mlp', whose config has no sequence_batching"):
        sequences.check_run(own, models, lambda name: load_settings(own, name))


def test_an_id_range_too_small_for_a_listed_level_stops_the_cli_before_anything_is_written(workdir: Path):
    """(Sequence flags on a stateless model: tests/test_cli_errors.py.)"""
    (workdir / "c.yaml").write_text("perf_analyzer_flags: {sequence-id-range: '1:2'}\nconcurrency: [1, 4]\n")
    result = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "accumulator", "-f", "c.yaml",
        "--output-model-repository-path", "out", cwd=workdir,
    )  # fmt: skip
    assert (result.returncode, result.stderr.strip().splitlines()) == (2, ["error: sequence_id_range 1:2 holds fewer ids than the 4 sequences in flight: widen it"])
    assert sorted(p.name for p in workdir.iterdir()) == ["c.yaml"]


# ----------------------------------------------------------------------------- the space


def test_the_manual_space_varies_sequence_batching_and_keeps_it():
    from tsweep.plugins.search.manual_space import variants

    (model,) = repository.find_models(str(MODEL_REPOSITORY), ["accumulator"])
    found = variants(model, {"sequence_batching": [{"direct": {}}, {"oldest": {"max_candidate_sequences": [4, 8], "max_queue_delay_microseconds": [0, 1000]}}]})
    seen = set()
    for v in found:
        batcher = v.config.sequence_batching
        assert v.config.WhichOneof("scheduling_choice") == "sequence_batching"
        assert len(batcher.control_input) == 3 and batcher.max_sequence_idle_microseconds == 5000000  # the model's own kept
        seen.add((batcher.WhichOneof("strategy_choice"), batcher.oldest.max_candidate_sequences, batcher.oldest.max_queue_delay_microseconds))
    assert seen == {("direct", 0, 0), ("oldest", 4, 0), ("oldest", 4, 1000), ("oldest", 8, 0), ("oldest", 8, 1000)}
    assert found[1].values == {"sequence_batching.direct": True}
    with pytest.raises(UsageError, match="set dynamic_batching, which would replace the stateful model's sequence_batching"):
        variants(model, {"dynamic_batching": {"max_queue_delay_microseconds": [100]}})


# ----------------------------------------------------------------------------- the plan


def test_the_plan_keeps_ids_unique_and_flags_each_sequence():
    plan = sequences.SequencePlan(SequenceSettings(length=3, variation=0, id_start=5, id_end=7), slots=2)
    first = [plan.take(0) for _ in range(3)]
    assert [(s, i, a, b) for s, i, a, b in first] == [(0, 5, True, False), (0, 5, False, False), (0, 5, False, True)]
    assert plan.take(1)[1:] == (6, True, False)
    for _ in range(3):
        plan.answered(0)
    assert plan.take(0)[1:] == (7, True, False)  # 6 is held by slot 1; the range has 5..7
    # open loop: a sequence with a request in flight does not send (always serial)
    serial = sequences.SequencePlan(SequenceSettings(length=2, variation=0, serial=False), slots=2)
    a, b = serial.take(), serial.take()
    assert (a[0], b[0]) == (0, 1) and serial.take() is None and not serial.ready()
    serial.answered(1)
    assert serial.take()[:4] == (1, 2, False, True)


def test_lengths_vary_within_the_percent():
    plan = sequences.SequencePlan(SequenceSettings(length=10, variation=20, id_start=1), slots=1)
    lengths = []
    for _ in range(200):
        n = 1
        while not plan.take(0)[3]:
            n += 1
        for _ in range(n):
            plan.answered(0)
        lengths.append(n)
    assert min(lengths) == 8 and max(lengths) == 12


# ------------------------------------------------------ the native generator, on the wire


class RecordingServer:
    """Answers every HTTP/1.1 request with an empty 200 and records the request parameters
    of its JSON body in arrival order (recorded before the answer goes out)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                with self.lock:
                    self.seen.append(json.loads(body)["parameters"])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    def all(self):
        with self.lock:
            return list(self.seen)

    def close(self):
        self.sock.close()


def marked_request(port: int):
    body, at = sequence_placeholder(json.dumps({"inputs": [{"name": "INPUT", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}).encode())
    request = build_http_request("127.0.0.1", port, "/v2/models/accumulator/infer", body, {"Content-Type": "application/json"})
    return request, tuple(len(request) - len(body) + a for a in at)


@pytest.mark.parametrize("mode", [dict(concurrency=3), dict(rate=400.0, sequence_slots=2)])
def test_the_native_loop_sends_whole_sequences_with_unique_live_ids(mode):
    server = RecordingServer()
    try:
        request, marks = marked_request(server.port)
        load = HttpLoad(
            "127.0.0.1", server.port, [request], max_requests=60, sequence_length=4, sequence_variation=50,
            sequence_ids=(10, 15), sequence_marks=[marks], **mode,
        )  # fmt: skip
        load.start()
        assert eventually(lambda: load.running, want=False, timeout_s=10) is False
        window = load.take_window()
        load.stop()
        assert (window.completed, window.errors) == (60, 0)
        sent = server.all()
        assert len(sent) == 60
        assert all(10 <= p["sequence_id"] <= 15 for p in sent)
        # replay in order: a start opens an id that is not open, an end closes it; lengths 2..6
        open_ids, lengths = {}, []
        for p in sent:
            sid = p["sequence_id"]
            if p["sequence_start"]:
                assert sid not in open_ids, f"id {sid} reused before its sequence ended"
                open_ids[sid] = 0
            assert sid in open_ids, f"request of id {sid} outside a sequence"
            open_ids[sid] += 1
            if p["sequence_end"]:
                lengths.append(open_ids.pop(sid))
        assert lengths and all(2 <= n <= 6 for n in lengths)
        assert load.open_sequences() == sorted(open_ids)  # cut off by the request limit: the caller ends them
    finally:
        server.close()


def test_the_native_loop_refuses_too_few_ids_and_missing_marks():
    request, marks = marked_request(9)
    with pytest.raises(ValueError):
        HttpLoad("127.0.0.1", 9, [request], concurrency=4, sequence_length=3, sequence_ids=(1, 3), sequence_marks=[marks])
    with pytest.raises(ValueError, match="one \\(id, start, end\\) mark triple per request"):
        HttpLoad("127.0.0.1", 9, [request], concurrency=1, sequence_length=3)


# ----------------------------------------------------------------------------- on the server


@pytest.fixture(scope="module")
def accumulator_server(tmp_path_factory):
    """One real tritonserver with the example accumulator loaded as 'accumulator'."""
    with serving_example(tmp_path_factory.mktemp("accumulator"), "accumulator") as served:
        yield served


@pytest.mark.server
def test_the_accumulator_sums_per_sequence_and_the_native_load_keeps_its_rules(accumulator_server):
    import numpy as np
    import tritonclient.http as httpclient

    from tsweep.plugins.loads.http import make_http_load
    from tsweep.records import LoadLevel, LoadSettings, Trial, Variant
    from tsweep.triton import TritonHTTP

    server, model = accumulator_server
    client = httpclient.InferenceServerClient(server.http_url.split("://")[1])

    def send(value, sequence_id, start=False, end=False):
        tensor = httpclient.InferInput("INPUT", [1, 1], "FP32")
        tensor.set_data_from_numpy(np.array([[value]], dtype=np.float32))
        result = client.infer("accumulator", [tensor], sequence_id=sequence_id, sequence_start=start, sequence_end=end)
        return float(result.as_numpy("SUM")[0][0])

    assert [send(1, 42, start=True), send(2, 42), send(5, 7, start=True), send(3, 42, end=True)] == [1.0, 3.0, 5.0, 6.0]
    with pytest.raises(Exception, match="must specify the START flag"):
        send(1, 42)  # sequence 42 ended: the server refuses a request outside a sequence
    client.close()

    before = TritonHTTP(server.http_url).stats("accumulator")
    trial = Trial(Variant("accumulator", model.config, {}, name="accumulator"), LoadLevel("concurrency", 2.0))
    settings = LoadSettings(sequences=SequenceSettings(length=7, variation=0, id_start=100, id_end=103, slots=3))
    completed = 0
    open_loop = Trial(trial.variant, LoadLevel("request_rate", 150.0))
    for trial, flight in ((trial, "one per concurrency slot"), (trial, "one per concurrency slot"), (open_loop, "3 in flight, serial")):
        # the later loads reuse the ids: each stop ended the sequences it cut off
        load = make_http_load(trial, server, settings)
        assert load.client == f"native http, sequences of 7±0% requests, ids 100:103, {flight}"
        load.start()
        assert load.wait_responses(30, 20)
        load.stop()
        window = load.take_window()
        assert window.errors == 0 and window.completed >= 30, window.error_samples
        completed += window.completed
    stats = TritonHTTP(server.http_url).stats
    assert eventually(lambda: stats("accumulator").success_count - before.success_count >= completed, want=True)
    assert stats("accumulator").fail_count == before.fail_count  # the server refused none of them


@pytest.mark.server
def test_an_open_loop_beyond_its_sequences_fails_with_the_fix(accumulator_server):
    from tsweep.measure import MethodSettings, measure
    from tsweep.plugins.loads.http import make_http_load
    from tsweep.records import LoadLevel, LoadSettings, Trial, Variant
    from tsweep.triton import TritonHTTP

    server, model = accumulator_server
    trial = Trial(Variant("accumulator", model.config, {}, name="accumulator"), LoadLevel("request_rate", 20000.0))
    load = make_http_load(trial, server, LoadSettings(sequences=SequenceSettings(length=5, slots=1)))
    client = TritonHTTP(server.http_url)
    m = measure(trial, load, lambda: client.stats("accumulator"), MethodSettings(window_s=0.3, max_windows=2, warmup_s=0.1))
    assert m.status == "failed" and m.errors == 0, m.error  # one sequence: one request in flight at a time
    assert m.error.startswith("the client could not keep to 20000 requests/s:")
    assert m.error.endswith("lower the request rate or raise num_of_sequences (each sequence has one request in flight)")


SEQUENCE_PROFILE = """
model_repository: {repo}
profile_models: accumulator
run_config_search_disable: true
measurement_window_s: 0.25
min_windows: 2
max_windows: 3
remeasure_top_configs: 0
perf_analyzer_flags:
  sequence-length: 3
  sequence-length-variation: 0
  sequence-id-range: "500:599"
"""


@pytest.mark.server
@pytest.mark.slow
def test_profile_a_stateful_model_end_to_end_over_http(workdir: Path):
    (workdir / "seq.yaml").write_text(SEQUENCE_PROFILE.format(repo=MODEL_REPOSITORY) + "concurrency: [1, 2]\n")
    result = run_tsweep("profile", "-f", "seq.yaml", "--output-model-repository-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    label = "native http, sequences of 3±0% requests, ids 500:599, one per concurrency slot"
    assert [(r["load_kind"], r["load_value"]) for r in rows] == [("concurrency", 1.0), ("concurrency", 2.0)]
    for r in rows:  # the model fails any request whose controls are wrong: no errors means whole sequences
        assert r["status"] in ("ok", "unstable") and r["requests"] > 0 and r["errors"] == 0, dict(r)
        assert r["client"] == label
    with open(workdir / "results" / "metrics-model-inference.csv") as f:
        assert {row["Client"] for row in csv.DictReader(f)} == {label}
    summary = pdf_text(workdir / "reports" / "summaries" / "accumulator" / "result_summary.pdf")
    assert "sequences of 3±0% requests, ids 500:599" in summary


@pytest.mark.server
@pytest.mark.slow
def test_profile_a_stateful_model_over_grpc(workdir: Path):
    (workdir / "seq.yaml").write_text(SEQUENCE_PROFILE.format(repo=MODEL_REPOSITORY) + "concurrency: [1, 2]\nclient_protocol: grpc\n")
    result = run_tsweep("profile", "-f", "seq.yaml", "--output-model-repository-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)  # the second point reuses the first's ids: its stop ended what it cut off
    assert [(r["load_value"], r["errors"]) for r in rows] == [(1.0, 0), (2.0, 0)], [dict(r) for r in rows]
    for row in rows:
        assert row["requests"] > 0 and row["client"] == "tritonclient grpc, sequences of 3±0% requests, ids 500:599, one per concurrency slot"
