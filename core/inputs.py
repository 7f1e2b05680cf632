"""Request data for a model: tensors made once from its config, encoded once, sent many times.

Where the data comes from (``input_data``, perf_analyzer's names):

* ``random`` (default): seeded random values, so runs are repeatable;
* ``zero``: zeros (empty strings for BYTES);
* a path to a JSON file in the format perf_analyzer users already have::

      {"data": [{"INPUT0": [1, 2, 3, 4], "INPUT1": {"content": [...], "shape": [4]}}, ...]}

  Each entry of ``data`` is one sample: a flat list, ``{"content": [...], "shape": [...]}``,
  or ``{"b64": "..."}`` (raw little-endian bytes). A request of client batch size ``b``
  stacks ``b`` consecutive samples, cycling through the file.

Shapes come from the model config; variable dimensions (-1) need a ``shape`` entry
(``NAME:d1,d2``) unless the file gives them. Batching models get the client batch size as
their first dimension. Encodings: KServe v2 JSON, or its binary tensor extension (the
default for HTTP: no float formatting or parsing on either side).
"""
from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tsweep.errors import UsageError
from tsweep.modelconfig import ModelConfig, model_config_pb2

#: Triton config data types -> (KServe v2 datatype, numpy dtype)
DATATYPES = {
    "TYPE_BOOL": ("BOOL", np.bool_),
    "TYPE_UINT8": ("UINT8", np.uint8),
    "TYPE_UINT16": ("UINT16", np.uint16),
    "TYPE_UINT32": ("UINT32", np.uint32),
    "TYPE_UINT64": ("UINT64", np.uint64),
    "TYPE_INT8": ("INT8", np.int8),
    "TYPE_INT16": ("INT16", np.int16),
    "TYPE_INT32": ("INT32", np.int32),
    "TYPE_INT64": ("INT64", np.int64),
    "TYPE_FP16": ("FP16", np.float16),
    "TYPE_FP32": ("FP32", np.float32),
    "TYPE_FP64": ("FP64", np.float64),
    "TYPE_STRING": ("BYTES", np.object_),
}

#: How many distinct requests are made from random data (the load cycles through them).
DISTINCT_REQUESTS = 4


@dataclass(frozen=True)
class TensorSpec:
    """One input as the model expects it, for one sample (no batch dimension)."""

    name: str
    datatype: str
    dims: Tuple[int, ...]
    dtype: object


@dataclass(frozen=True)
class EncodedRequest:
    """An inference request body and the headers it needs."""

    body: bytes
    headers: Mapping[str, str]


def parse_shapes(entries: Sequence[str] | str | None) -> Dict[str, Tuple[int, ...]]:
    """``["INPUT:3,224,224", ...]`` (perf_analyzer's --shape) -> {name: dims}."""
    if not entries:
        return {}
    if isinstance(entries, str):
        entries = entries.split()
    shapes = {}
    for entry in entries:
        name, sep, dims = str(entry).rpartition(":")
        try:
            parsed = tuple(int(d) for d in dims.split(",")) if sep else ()
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed or any(d <= 0 for d in parsed):
            raise UsageError(f"invalid shape {entry!r}: write NAME:d1,d2 with positive dimensions")
        shapes[name] = parsed
    return shapes


#: Headers the load generators set themselves.
OWN_HEADERS = ("host", "content-length", "connection", "content-type", "inference-header-content-length", "te", "content-encoding")


def parse_headers(entries: Sequence[str]) -> Dict[str, str]:
    """``["X-Token: abc", ...]`` (perf_analyzer's -H) -> {name: value}, checked."""
    headers: Dict[str, str] = {}
    for entry in entries:
        name, sep, value = str(entry).partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or any(c in entry for c in "\r\n") or " " in name:
            raise UsageError(f"invalid header {entry!r}: write 'Name: Value' on one line")
        if name.lower() in OWN_HEADERS:
            raise UsageError(f"header {name!r} is set by tsweep itself for every request: remove it from the headers")
        headers[name] = value
    return headers


def tensor_specs(config: ModelConfig, shapes: Mapping[str, Tuple[int, ...]], given: Mapping[str, Tuple[int, ...]] = {}) -> List[TensorSpec]:
    """The inputs of ``config`` with every dimension resolved (``shapes``, else ``given``)."""
    known = {i.name for i in config.input}
    for name in shapes:
        if name not in known:
            raise UsageError(f"shape given for unknown input {name!r} of model {config.name!r}: its inputs are {', '.join(sorted(known))}")
    specs = []
    for tensor in config.input:
        type_name = model_config_pb2.DataType.Name(tensor.data_type)
        if type_name not in DATATYPES:
            raise UsageError(f"input {tensor.name!r} of model {config.name!r} has unsupported type {type_name}")
        dims = tuple(tensor.dims)
        chosen = shapes.get(tensor.name) or given.get(tensor.name)
        if chosen is not None:
            if len(chosen) != len(dims) or any(d != -1 and d != g for d, g in zip(dims, chosen)):
                raise UsageError(f"shape {list(chosen)} does not fit input {tensor.name!r} of model {config.name!r} with dims {list(dims)}")
            dims = tuple(chosen)
        if any(d < 0 for d in dims):
            raise UsageError(
                f"input {tensor.name!r} of model {config.name!r} has variable dims {list(dims)}: give --shape {tensor.name}:d1,d2"
            )
        datatype, dtype = DATATYPES[type_name]
        specs.append(TensorSpec(tensor.name, datatype, dims, dtype))
    return specs


# ----------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Strings:
    """How BYTES inputs are filled without a data file (perf_analyzer's --string-length and
    --string-data): random letters of ``length``, or ``data`` in every element."""

    length: int = 128
    data: Optional[str] = None


_LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)


def _random_sample(spec: TensorSpec, rng: np.random.Generator, zeros: bool, strings: Strings = Strings()) -> np.ndarray:
    if spec.dtype is np.object_:
        count = int(np.prod(spec.dims))
        if zeros or strings.data is not None:
            values = [b"" if zeros else strings.data.encode()] * count
        else:
            values = [rng.choice(_LETTERS, strings.length).tobytes() for _ in range(count)]
        return np.array(values, dtype=object).reshape(spec.dims)
    if zeros:
        return np.zeros(spec.dims, dtype=spec.dtype)
    if np.issubdtype(spec.dtype, np.floating):
        return rng.standard_normal(spec.dims).astype(spec.dtype)
    if spec.dtype is np.bool_:
        return rng.integers(0, 2, spec.dims).astype(np.bool_)
    return rng.integers(0, 100, spec.dims).astype(spec.dtype)


def read_input_data(path: Path) -> List[Dict[str, object]]:
    """The ``data`` entries of a perf_analyzer-style input-data file, checked for shape."""
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read input data file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"input data file {path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f'input data file {path} needs {{"data": [{{"INPUT": [...]}}, ...]}} with at least one entry')
    return entries


def _file_sample(spec: TensorSpec, value: object, origin: str) -> np.ndarray:
    shape = spec.dims
    if isinstance(value, dict) and "b64" in value:
        raw = base64.b64decode(value["b64"])
        if spec.dtype is np.object_:
            return np.array([raw], dtype=object)
        array = np.frombuffer(raw, dtype=np.dtype(spec.dtype).newbyteorder("<"))
    else:
        if isinstance(value, dict):
            shape = tuple(value.get("shape", shape))
            value = value.get("content")
        try:
            array = np.array(value, dtype=object if spec.dtype is np.object_ else spec.dtype).reshape(-1)
        except (TypeError, ValueError):
            raise UsageError(f"{origin}: values of input {spec.name!r} are not {spec.datatype}") from None
        if spec.dtype is np.object_:
            array = np.array([v.encode() if isinstance(v, str) else bytes(v) for v in array], dtype=object)
    if array.size != int(np.prod(shape)):
        raise UsageError(f"{origin}: input {spec.name!r} has {array.size} values but shape {list(shape)} needs {int(np.prod(shape))}")
    return array.reshape(shape)


def samples(
    config: ModelConfig, shapes: Mapping[str, Tuple[int, ...]], input_data: str = "random", seed: int = 0, strings: Strings = Strings()
) -> Tuple[List[TensorSpec], List[Dict[str, np.ndarray]]]:
    """Resolved input specs and a list of samples ({input name: array without batch dim})."""
    if input_data in ("random", "zero"):
        specs = tensor_specs(config, shapes)
        rng = np.random.default_rng(seed)
        count = 1 if input_data == "zero" else DISTINCT_REQUESTS
        return specs, [{s.name: _random_sample(s, rng, input_data == "zero", strings) for s in specs} for _ in range(count)]
    entries = read_input_data(Path(input_data))
    first = entries[0]
    given = {k: tuple(v["shape"]) for k, v in first.items() if isinstance(v, dict) and "shape" in v}
    specs = tensor_specs(config, shapes, given)
    names = {s.name for s in specs}
    result = []
    for i, entry in enumerate(entries):
        origin = f"input data file {input_data}, entry {i}"
        unknown = set(entry) - names
        if unknown:
            raise UsageError(f"{origin}: unknown input {sorted(unknown)[0]!r} of model {config.name!r}: its inputs are {', '.join(sorted(names))}")
        missing = names - set(entry)
        if missing:
            raise UsageError(f"{origin}: no data for input {sorted(missing)[0]!r}")
        result.append({s.name: _file_sample(s, entry[s.name], origin) for s in specs})
    return specs, result


def batches(config: ModelConfig, specs: Sequence[TensorSpec], data: Sequence[Dict[str, np.ndarray]], batch_size: int) -> List[Dict[str, np.ndarray]]:
    """Requests of ``batch_size`` samples each (batch dim added when the model batches)."""
    if config.max_batch_size == 0:
        if batch_size != 1:
            raise UsageError(f"model {config.name!r} does not batch (max_batch_size 0): use batch size 1")
        return [dict(sample) for sample in data]
    requests = []
    for start in range(max(1, len(data))):
        chosen = [data[(start + k) % len(data)] for k in range(batch_size)]
        requests.append({s.name: np.stack([c[s.name] for c in chosen]) for s in specs})
    return requests


# ----------------------------------------------------------------------------- encoding


def raw_bytes(spec: TensorSpec, array: np.ndarray) -> bytes:
    """A tensor as the server reads it from a binary body or shared memory: little-endian
    values, BYTES elements each with a 4-byte length."""
    if spec.dtype is np.object_:
        return b"".join(struct.pack("<I", len(v)) + v for v in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=np.dtype(spec.dtype).newbyteorder("<")).tobytes()


def encode_json(specs: Sequence[TensorSpec], request: Mapping[str, np.ndarray]) -> EncodedRequest:
    """A KServe v2 JSON inference request."""
    inputs = []
    for spec in specs:
        array = request[spec.name]
        flat = array.reshape(-1)
        values = [v.decode() for v in flat] if spec.dtype is np.object_ else flat.tolist()
        inputs.append({"name": spec.name, "shape": list(array.shape), "datatype": spec.datatype, "data": values})
    return EncodedRequest(json.dumps({"inputs": inputs}).encode(), {"Content-Type": "application/json"})


def encode_binary(specs: Sequence[TensorSpec], request: Mapping[str, np.ndarray], outputs: Sequence[str]) -> EncodedRequest:
    """Triton's binary tensor extension: a JSON header, then the raw tensors; outputs binary."""
    raws = [raw_bytes(spec, request[spec.name]) for spec in specs]
    header = {
        "inputs": [
            {"name": s.name, "shape": list(request[s.name].shape), "datatype": s.datatype, "parameters": {"binary_data_size": len(r)}}
            for s, r in zip(specs, raws)
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
    }
    head = json.dumps(header).encode()
    return EncodedRequest(
        head + b"".join(raws),
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
    )


def http_requests(
    config: ModelConfig, batch_size: int, shapes: Mapping[str, Tuple[int, ...]], input_data: str = "random", encoding: str = "binary",
    strings: Strings = Strings(),
) -> List[EncodedRequest]:
    """The distinct encoded requests for one trial (the load generator cycles through them)."""
    specs, data = samples(config, shapes, input_data, strings=strings)
    outputs = [o.name for o in config.output]
    encode = (lambda r: encode_binary(specs, r, outputs)) if encoding == "binary" else (lambda r: encode_json(specs, r))
    return [encode(request) for request in batches(config, specs, data, batch_size)]
