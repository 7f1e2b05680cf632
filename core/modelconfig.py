"""Read and write config.pbtxt through Triton's own ModelConfig protobuf message.

Parsing with the real message (shipped in tritonclient) means a misspelt field or a wrong
enum value is caught here, with the line number, before a server ever sees the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from tsweep.errors import UsageError

ModelConfig = model_config_pb2.ModelConfig
KIND_CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU
KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU
KIND_AUTO = model_config_pb2.ModelInstanceGroup.KIND_AUTO


def parse(text: str, origin: str = "config.pbtxt") -> Any:
    """A ModelConfig from protobuf text; UsageError naming ``origin`` if it is invalid."""
    try:
        return text_format.Parse(text, ModelConfig())
    except text_format.ParseError as exc:
        raise UsageError(f"invalid model config {origin}: {exc}; fix the file or remove the field") from None


def read(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read model config {path}: {exc.strerror}") from None
    return parse(text, str(path))


def dumps(config: Any) -> str:
    return text_format.MessageToString(config)


def to_json(config: Any) -> str:
    """The config as JSON, the form Triton's load request takes (protobuf field names)."""
    return json_format.MessageToJson(config, preserving_proto_field_name=True, indent=None)


def copy(config: Any) -> Any:
    clone = ModelConfig()
    clone.CopyFrom(config)
    return clone


def instance_count(config: Any, gpus: int = 1) -> int:
    """Instances the config asks for on a server with ``gpus`` GPUs (Triton's default count
    is one). A KIND_GPU group's count is per GPU, on its own ``gpus`` list if it has one,
    else on each of the server's; KIND_AUTO is KIND_GPU where there is a GPU. With the
    default ``gpus=1`` this is the count as written, which is how Model Analyzer's instance
    bounds and tsweep's coordinates count."""
    total = 0
    for group in config.instance_group:
        on_gpus = group.kind == KIND_GPU or (group.kind == KIND_AUTO and gpus > 0)
        total += (group.count or 1) * (len(group.gpus) or max(gpus, 1) if on_gpus else 1)
    return total or max(gpus, 1)  # no group: KIND_AUTO, one instance (per GPU)

