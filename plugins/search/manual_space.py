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
entries are expanded in turn, or, for a field that is not repeated (``sequence_batching``,
``dynamic_batching``), a choice between those mappings: ``sequence_batching: [{direct: {}},
{oldest: {max_candidate_sequences: [4, 8]}}]`` tries the direct strategy and two oldest
ones (an empty mapping turns a message on, and a strategy chosen replaces the model's own:
they are one oneof). The cartesian product of all choices gives the variants, each applied
over the model's own config through Triton's ModelConfig message (so a wrong field name is
an error before anything runs). The model's own config stays the default. A stateful
model's variants must keep its sequence_batching: a parameter that would replace it
(dynamic_batching) is refused by name.

This plugin answers only for models with ``model_config_parameters``; it is registered after
the automatic space (entry points load in name order), so pluggy asks it first.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List

from google.protobuf import json_format

from tsweep import modelconfig, modeljson
from tsweep.errors import UsageError
from tsweep.plugin import hookimpl
from tsweep.plugins.search.automatic_space import load_levels
from tsweep.records import READ_FROM_CONFIG, ConfigSpace, ModelSpec, SpaceSettings, Variant


class Choice(list):
    """Mappings given as a list for a message field that is not repeated: one of them per
    variant (marked by :func:`_mark_choices`, which knows the config's fields)."""


def expand(value: Any) -> List[Any]:
    """Every concrete value a parameter tree stands for."""
    if isinstance(value, dict):
        keys = list(value)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(expand(value[k]) for k in keys))]
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and not isinstance(value, Choice):  # one repeated message field
            return [list(combo) for combo in itertools.product(*(expand(v) for v in value))]
        return [v for item in value for v in (expand(item) if isinstance(item, dict) else [item])]
    return [value]


def _is_repeated(field) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6; label is deprecated there
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _is_map(field) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _fit_parameter(value: Any) -> Any:
    """A config.pbtxt ``parameters`` entry given as its value (``max_num_seqs: 8``, or a list
    of them to try) stands for ``{string_value: "8"}``, the only form backends read."""
    return value if isinstance(value, dict) else {"string_value": str(value)}


def _fit_repeated(values: Dict[str, Any], descriptor) -> Dict[str, Any]:
    """Wrap a single value given for a repeated scalar field (preferred_batch_size: 8); give
    each ``parameters`` entry its string_value form."""
    fitted = {}
    for key, value in values.items():
        field = descriptor.fields_by_name.get(key)
        if field is not None and _is_map(field):
            if field.message_type.fields_by_name["value"].message_type is not None and isinstance(value, dict):
                value = {k: _fit_parameter(v) for k, v in value.items()}
        elif field is not None and field.message_type is not None:
            if isinstance(value, dict):
                value = _fit_repeated(value, field.message_type)
            elif isinstance(value, list):
                value = [_fit_repeated(v, field.message_type) if isinstance(v, dict) else v for v in value]
        elif field is not None and _is_repeated(field) and not isinstance(value, list):
            value = [value]
        fitted[key] = value
    return fitted


def _mark_choices(values: Dict[str, Any], descriptor) -> Dict[str, Any]:
    """The tree with each list of mappings under a message field that is not repeated
    marked as a :class:`Choice`."""
    marked = {}
    for key, value in values.items():
        field = descriptor.fields_by_name.get(key)
        sub = field.message_type if field is not None else None
        if sub is not None and isinstance(value, dict):
            value = _mark_choices(value, sub)
        elif sub is not None and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            value = [_mark_choices(v, sub) for v in value]
            if not _is_repeated(field):
                value = Choice(value)
        marked[key] = value
    return marked


def _flatten(values: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and not value:  # a message turned on as it is (direct: {})
            flat[f"{prefix}{key}"] = True
        elif isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _keep_own_entries(own, config, combo: Dict[str, Any]) -> None:
    """Parsing a map field (``parameters``) replaces the whole map: put back the model's own
    entries the combination does not set, so varying one parameter keeps the others."""
    for name in combo:
        field = config.DESCRIPTOR.fields_by_name.get(name)
        if field is None or not _is_map(field):
            continue
        mine, theirs = getattr(config, name), getattr(own, name)
        for key in theirs:
            if key not in mine:
                if field.message_type.fields_by_name["value"].message_type is not None:
                    mine[key].CopyFrom(theirs[key])
                else:
                    mine[key] = theirs[key]


def variants(model: ModelSpec, parameters: Dict[str, Any]) -> List[Variant]:
    """The model's own config, then one variant per combination of the parameters' choices
    (config.pbtxt fields and fields of the model's JSON files, :mod:`tsweep.modeljson`)."""
    default = Variant(model=model.name, config=modelconfig.copy(model.config), is_default=True)
    found = [default]
    scheduling = model.config.WhichOneof("scheduling_choice")
    for relative, asked in modeljson.split(parameters)[1].items():
        if not isinstance(asked, dict) or not asked:
            raise UsageError(f"model_config_parameters of {model.name!r}: {relative} must map the file's fields to lists of values, got {asked!r}")
        modeljson.check_fields(model.name, relative, modeljson.read(model.name, model.path, relative), asked)
    for both in expand(_mark_choices(parameters, model.config.DESCRIPTOR)):
        combo, chosen_files = modeljson.split(both)
        config = modelconfig.copy(model.config)
        try:
            json_format.ParseDict(_fit_repeated(combo, config.DESCRIPTOR), config)
        except json_format.ParseError as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"model_config_parameters of {model.name!r}: {first}; use config.pbtxt field names") from None
        _keep_own_entries(model.config, config, combo)
        if scheduling == "sequence_batching" and config.WhichOneof("scheduling_choice") != scheduling:
            raise UsageError(
                f"model_config_parameters of {model.name!r} set {config.WhichOneof('scheduling_choice')}, which would replace the "
                "stateful model's sequence_batching: vary sequence_batching's own fields instead"
            )
        values = {k: v for k, v in _flatten(combo).items() if k not in READ_FROM_CONFIG}
        for relative, chosen in chosen_files.items():
            values.update(modeljson.values(relative, chosen))
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
