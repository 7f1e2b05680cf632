"""Request data: encodings checked against the real server's answers; input-data files."""
from __future__ import annotations

import base64
import http.client
import json
import struct

import numpy as np
import pytest

from tsweep import inputs, modelconfig
from tsweep.errors import UsageError

from tests.support import MODEL_REPOSITORY

ADD_SUB = modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt")
ADD_SUB.name = "add_sub"


def post(server, request: inputs.EncodedRequest):
    host, port = server.http_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/v2/models/add_sub/infer", request.body, dict(request.headers))
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def decode_outputs(headers, payload) -> dict:
    """Outputs of a JSON or binary-extension response as numpy arrays."""
    length = headers.get("Inference-Header-Content-Length")
    head = json.loads(payload[: int(length)] if length else payload)
    tail, offset, result = payload[int(length):] if length else b"", 0, {}
    for out in head["outputs"]:
        if "data" in out:
            result[out["name"]] = np.array(out["data"], dtype=np.float32).reshape(out["shape"])
        else:
            size = out["parameters"]["binary_data_size"]
            result[out["name"]] = np.frombuffer(tail[offset : offset + size], dtype="<f4").reshape(out["shape"])
            offset += size
    return result


@pytest.mark.server
@pytest.mark.parametrize("encoding", ["binary", "json"])
@pytest.mark.parametrize("batch", [1, 3])
def test_encoded_requests_give_the_models_answer(add_sub_server, encoding, batch):
    specs, data = inputs.samples(ADD_SUB, {}, "random")
    requests = inputs.batches(ADD_SUB, specs, data, batch)
    encoded = inputs.http_requests(ADD_SUB, batch, {}, "random", encoding)
    assert len(encoded) == len(requests) == inputs.DISTINCT_REQUESTS
    for arrays, request in zip(requests, encoded):
        status, headers, payload = post(add_sub_server, request)
        assert status == 200, payload
        outputs = decode_outputs(headers, payload)
        np.testing.assert_allclose(outputs["OUTPUT0"], arrays["INPUT0"] + arrays["INPUT1"], rtol=1e-6)
        np.testing.assert_allclose(outputs["OUTPUT1"], arrays["INPUT0"] - arrays["INPUT1"], rtol=1e-6)
        assert outputs["OUTPUT0"].shape == (batch, 4)


def test_input_data_file_in_perf_analyzer_format(tmp_path):
    raw = np.array([5, 6, 7, 8], dtype="<f4").tobytes()
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"data": [
        {"INPUT0": [1, 2, 3, 4], "INPUT1": {"content": [1, 1, 1, 1], "shape": [4]}},
        {"INPUT0": {"b64": base64.b64encode(raw).decode()}, "INPUT1": [0, 0, 0, 0]},
    ]}))  # fmt: skip
    specs, data = inputs.samples(ADD_SUB, {}, str(path))
    assert [s.dims for s in specs] == [(4,), (4,)]
    np.testing.assert_array_equal(data[1]["INPUT0"], [5, 6, 7, 8])
    (first, second) = inputs.batches(ADD_SUB, specs, data, 2)  # consecutive samples, cycling
    np.testing.assert_array_equal(first["INPUT0"], [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(second["INPUT0"], [[5, 6, 7, 8], [1, 2, 3, 4]])


def test_binary_encoding_layout():
    specs = [inputs.TensorSpec("X", "FP32", (2,), np.float32), inputs.TensorSpec("S", "BYTES", (1,), np.object_)]
    encoded = inputs.encode_binary(specs, {"X": np.array([[1.0, 2.0]], np.float32), "S": np.array([[b"ab"]], object)}, ["Y"])
    head_len = int(encoded.headers["Inference-Header-Content-Length"])
    head = json.loads(encoded.body[:head_len])
    assert [i["parameters"]["binary_data_size"] for i in head["inputs"]] == [8, 6]
    assert head["outputs"] == [{"name": "Y", "parameters": {"binary_data": True}}]
    assert encoded.body[head_len:] == struct.pack("<2f", 1.0, 2.0) + struct.pack("<I", 2) + b"ab"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"data": [{"INPUT0": [1,2,3,4], "INPUT1": [1,2,3,4], "IMAGE": [1]}]}',
         "input data file {p}, entry 0: unknown input 'IMAGE' of model 'add_sub': its inputs are INPUT0, INPUT1"),
        ('{"data": [{"INPUT0": [1,2,3]}]}', "input data file {p}, entry 0: no data for input 'INPUT1'"),
        ('{"data": [{"INPUT0": [1,2,3], "INPUT1": [1,2,3,4]}]}',
         "input data file {p}, entry 0: input 'INPUT0' has 3 values but shape [4] needs 4"),
        ('{"data": [{"INPUT0": ["a","b","c","d"], "INPUT1": [1,2,3,4]}]}',
         "input data file {p}, entry 0: values of input 'INPUT0' are not FP32"),
        ('{"data": [{"INPUT0": {"content": [1,2,3,4,5,6,7,8], "shape": [8]}, "INPUT1": [1,2,3,4]}]}',
         "shape [8] does not fit input 'INPUT0' of model 'add_sub' with dims [4]"),
        ('{"data": []}', 'input data file {p} needs {{"data": [{{"INPUT": [...]}}, ...]}} with at least one entry'),
        ("{not json", "input data file {p} is not valid JSON (line 1): Expecting property name enclosed in double quotes"),
    ],
)  # fmt: skip
def test_bad_input_data_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "data.json"
    path.write_text(content)
    with pytest.raises(UsageError) as err:
        inputs.samples(ADD_SUB, {}, str(path))
    assert str(err.value) == message.format(p=path)


def test_shapes():
    assert inputs.parse_shapes("A:1,2 B:3") == {"A": (1, 2), "B": (3,)}
    with pytest.raises(UsageError, match=r"^invalid shape 'A:x': write NAME:d1,d2 with positive dimensions$"):
        inputs.parse_shapes(["A:x"])
    with pytest.raises(UsageError, match="^shape given for unknown input 'NOPE' of model 'add_sub'"):
        inputs.tensor_specs(ADD_SUB, {"NOPE": (4,)})
    variable = modelconfig.parse('name: "v" input [{name: "X" data_type: TYPE_FP32 dims: [-1, 3]}]')
    with pytest.raises(UsageError, match=r"has variable dims \[-1, 3\]: give --shape X:d1,d2$"):
        inputs.tensor_specs(variable, {})
    assert inputs.tensor_specs(variable, {"X": (5, 3)})[0].dims == (5, 3)
    with pytest.raises(UsageError, match=r"^shape \[5, 4\] does not fit input 'X'"):
        inputs.tensor_specs(variable, {"X": (5, 4)})


def test_bytes_inputs_follow_string_length_and_string_data():
    """perf_analyzer's --string-length (random letters, 128 by default) and --string-data."""
    text = 'name: "t" max_batch_size: 4 input [{name: "TEXT" data_type: TYPE_STRING dims: [2]}] output [{name: "O" data_type: TYPE_FP32 dims: [1]}]'
    config = modelconfig.parse(text)
    _, random = inputs.samples(config, {}, "random")
    values = [v for sample in random for v in sample["TEXT"]]
    assert {len(v) for v in values} == {128} and len(set(values)) > 1 and all(v.isalnum() for v in values)
    _, short = inputs.samples(config, {}, "random", strings=inputs.Strings(length=5))
    assert {len(v) for sample in short for v in sample["TEXT"]} == {5}
    _, fixed = inputs.samples(config, {}, "random", strings=inputs.Strings(data="hello"))
    assert {v for sample in fixed for v in sample["TEXT"]} == {b"hello"}
    _, zero = inputs.samples(config, {}, "zero")
    assert list(zero[0]["TEXT"]) == [b"", b""]
