"""Request bodies for a model: tensors made from its config, encoded once, sent many times.

Shapes come from the model config; variable dimensions (-1) need a ``shape`` entry
(``NAME:d1,d2``) in perf_analyzer's terms. Batching models get the client batch size as
their first dimension. Data is random (seeded, so runs are repeatable) or zeros.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

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


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: Tuple[int, ...]
    dtype: object


def parse_shapes(entries: Sequence[str] | str | None) -> Dict[str, Tuple[int, ...]]:
    """``["INPUT:3,224,224", ...]`` (perf_analyzer's --shape) -> {name: dims}."""
    if not entries:
        return {}
    if isinstance(entries, str):
        entries = [entries]
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


def tensor_specs(config: ModelConfig, batch_size: int, shapes: Mapping[str, Tuple[int, ...]]) -> List[TensorSpec]:

    known = {i.name for i in config.input}
    for name in shapes:
        if name not in known:
            raise UsageError(f"shape given for unknown input {name!r} of model {config.name!r}: inputs are {', '.join(sorted(known))}")
    specs = []
    for tensor in config.input:
        type_name = model_config_pb2.DataType.Name(tensor.data_type)
        if type_name not in DATATYPES:
            raise UsageError(f"input {tensor.name!r} of model {config.name!r} has unsupported type {type_name}")
        dims = tuple(tensor.dims)
        if tensor.name in shapes:
            given = shapes[tensor.name]
            if len(given) != len(dims) or any(d != -1 and d != g for d, g in zip(dims, given)):
                raise UsageError(f"shape {list(given)} does not fit input {tensor.name!r} of model {config.name!r} with dims {list(dims)}")
            dims = given
        if any(d < 0 for d in dims):
            raise UsageError(
                f"input {tensor.name!r} of model {config.name!r} has variable dims {list(dims)}: give perf_analyzer_flags shape {tensor.name}:d1,d2"
            )
        if config.max_batch_size > 0:
            dims = (batch_size, *dims)
        elif batch_size != 1:
            raise UsageError(f"model {config.name!r} does not batch (max_batch_size 0): use batch size 1")
        datatype, dtype = DATATYPES[type_name]
        specs.append(TensorSpec(tensor.name, datatype, dims, dtype))
    return specs


def make_data(spec: TensorSpec, rng: np.random.Generator, zeros: bool = False) -> np.ndarray:
    if spec.dtype is np.object_:
        return np.array([b"" if zeros else b"tsweep"] * int(np.prod(spec.shape)), dtype=object).reshape(spec.shape)
    if zeros:
        return np.zeros(spec.shape, dtype=spec.dtype)
    if np.issubdtype(spec.dtype, np.floating):
        return rng.standard_normal(spec.shape).astype(spec.dtype)
    if spec.dtype is np.bool_:
        return rng.integers(0, 2, spec.shape).astype(np.bool_)
    return rng.integers(0, 100, spec.shape).astype(spec.dtype)


def json_body(specs: Sequence[TensorSpec], data: Sequence[np.ndarray]) -> bytes:
    """A KServe v2 JSON inference request."""
    inputs = []
    for spec, array in zip(specs, data):
        flat = array.reshape(-1)
        values = [v.decode() for v in flat] if spec.dtype is np.object_ else flat.tolist()
        inputs.append({"name": spec.name, "shape": list(spec.shape), "datatype": spec.datatype, "data": values})
    return json.dumps({"inputs": inputs}).encode()


def request_bodies(config: ModelConfig, batch_size: int, shapes: Mapping[str, Tuple[int, ...]], count: int = 4, seed: int = 0) -> List[bytes]:
    """``count`` distinct encoded requests (the load generator cycles through them)."""
    specs = tensor_specs(config, batch_size, shapes)
    rng = np.random.default_rng(seed)
    return [json_body(specs, [make_data(s, rng) for s in specs]) for _ in range(count)]
