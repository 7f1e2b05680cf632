"""The manual config space: every combination of the user's ``model_config_parameters``.

Model Analyzer's format: any config.pbtxt field, with a list where several values should be
tried, nested as in the config::

    model_config_parameters:
      max_batch_size: [4, 8]
      dynamic_batching:
        max_queue_delay_microseconds: [100, 500]
      instance_group:
      - kind: KIND_CPU
        count: [1, 2]

A list of scalars is a choice; a list of lists is a choice of list values (e.g.
``preferred_batch_size: [[4, 8], [8]]``); a list of mappings is one repeated field whose
entries are expanded in turn. The cartesian product of all choices gives the variants,
each applied over the model's own config through Triton's ModelConfig message (so a wrong
field name is an error before anything runs). The model's own config stays the default.

This plugin answers only for models with ``model_config_parameters``; it is registered after
the automatic space (entry points load in name order), so pluggy asks it first.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List

from google.protobuf import json_format

from tsweep import modelconfig
from tsweep.errors import UsageError
from tsweep.plugin import hookimpl
from tsweep.plugins.search.automatic_space import load_levels
from tsweep.records import READ_FROM_CONFIG, ConfigSpace, ModelSpec, SpaceSettings, Variant


def expand(value: Any) -> List[Any]:
    """Every concrete value a parameter tree stands for."""
    if isinstance(value, dict):
        keys = list(value)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(expand(value[k]) for k in keys))]
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):  # one repeated message field
            return [list(combo) for combo in itertools.product(*(expand(v) for v in value))]
        return [v for item in value for v in (expand(item) if isinstance(item, dict) else [item])]
    return [value]


def _is_repeated(field) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6; label is deprecated there
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _fit_repeated(values: Dict[str, Any], descriptor) -> Dict[str, Any]:
    """Wrap a single value given for a repeated scalar field (preferred_batch_size: 8)."""
    fitted = {}
    for key, value in values.items():
        field = descriptor.fields_by_name.get(key)
        if field is not None and field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if isinstance(value, dict):
                value = _fit_repeated(value, field.message_type)
            elif isinstance(value, list):
                value = [_fit_repeated(v, field.message_type) if isinstance(v, dict) else v for v in value]
        elif field is not None and _is_repeated(field) and not isinstance(value, list):
            value = [value]
        fitted[key] = value
    return fitted


def _flatten(values: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def variants(model: ModelSpec, parameters: Dict[str, Any]) -> List[Variant]:
    default = Variant(model=model.name, config=modelconfig.copy(model.config), is_default=True)
    found = [default]
    for combo in expand(parameters):
        config = modelconfig.copy(model.config)
        try:
            json_format.ParseDict(_fit_repeated(combo, config.DESCRIPTOR), config)
        except json_format.ParseError as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"model_config_parameters of {model.name!r}: {first}; use config.pbtxt field names") from None
        values = {k: v for k, v in _flatten(combo).items() if k not in READ_FROM_CONFIG}
        found.append(Variant(model=model.name, config=config, values=values))
    return found


@hookimpl
def tsweep_config_space(model: ModelSpec, settings: SpaceSettings):
    if not settings.model_config_parameters:
        return None
    return ConfigSpace(
        model=model,
        variants=tuple(variants(model, dict(settings.model_config_parameters))),
        load_levels=tuple(load_levels(settings)),
        batch_sizes=tuple(settings.batch_sizes),
        gpus=settings.gpu_count,
    )
