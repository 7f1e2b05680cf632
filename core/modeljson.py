"""Knobs in a JSON file of the model's folder, varied like config.pbtxt fields.

Generative backends read their engine settings from a JSON file beside the model, not from
config.pbtxt: the vLLM backend reads ``<version>/model.json`` (``max_num_seqs``,
``gpu_memory_utilization``, ...). Such a file is named in ``model_config_parameters`` by its
path inside the model's folder, a key no config.pbtxt field can have (it ends in ``.json``),
with its fields nested as in the file and lists where several values should be tried::

    model_config_parameters:
      instance_group: [{kind: KIND_CPU, count: [1, 2]}]
      1/model.json:
        max_num_seqs: [4, 16]

One key (``model_config_parameters``) keeps one place for everything a variant changes, as
the issue asks, and the file's path says where it is changed. A variant records each field it
sets as a value ``<file>:<field path>`` (``1/model.json:max_num_seqs``), which tables show and
the store keeps; the file itself is the model's own with those fields replaced
(:func:`contents`), written into the variant's folder, so a variant rebuilt from the store
writes the same file. Files no variant changes stay the model's own copies.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Mapping, Tuple

from tsweep.errors import UsageError

#: Between a file's path and the field path in a variant's value names.
SEPARATOR = ":"


def is_file_key(key: str) -> bool:
    """A ``model_config_parameters`` key that names a JSON file, not a config.pbtxt field."""
    return str(key).endswith(".json")


def is_file_value(name: str) -> bool:
    """A variant value name (``1/model.json:max_num_seqs``) that sets a field of a JSON file."""
    return SEPARATOR in name and is_file_key(name.split(SEPARATOR, 1)[0])


def split(parameters: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``model_config_parameters`` as (config.pbtxt fields, {file: its field tree})."""
    fields = {k: v for k, v in parameters.items() if not is_file_key(k)}
    return fields, {k: v for k, v in parameters.items() if is_file_key(k)}


def read(model_name: str, folder: Path, relative: str) -> Dict[str, Any]:
    """The model's own JSON file ``relative``; UsageError (one line) if it is not there, is
    outside the model's folder or does not hold a JSON object."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise UsageError(f"model_config_parameters of {model_name!r} name the file {relative!r}: give a path inside the model's folder, e.g. 1/model.json")
    full = folder / path
    if not full.is_file():
        raise UsageError(f"model_config_parameters of {model_name!r} name {relative!r}, which is not a file in {folder}: name a JSON file the model has, e.g. 1/model.json")
    try:
        data = json.loads(full.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{full} is not valid JSON ({str(exc).splitlines()[0]}): fix the file or remove {relative!r} from model_config_parameters of {model_name!r}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{full} holds a JSON {type(data).__name__}, not an object: only an object's fields can be varied; remove {relative!r} from model_config_parameters of {model_name!r}")
    return data


def check_fields(model_name: str, relative: str, own: Mapping[str, Any], asked: Mapping[str, Any], prefix: str = "") -> None:
    """Every field ``asked`` names exists in the file (a misspelt knob would be ignored by the
    backend, silently); UsageError naming the first that does not."""
    for key, value in asked.items():
        path = f"{prefix}{key}"
        if key not in own:
            found = ", ".join(sorted(own)) or "none"
            raise UsageError(f"model_config_parameters of {model_name!r}: {relative} has no field {path!r}: use one of its fields ({found})")
        if isinstance(value, dict) and value:
            if not isinstance(own[key], dict):
                raise UsageError(f"model_config_parameters of {model_name!r}: field {path!r} of {relative} is not an object: give its values as a list")
            check_fields(model_name, relative, own[key], value, f"{path}.")


def values(relative: str, chosen: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """One variant's choice for a file as flat value names (``1/model.json:engine.max_num_seqs``)."""
    flat: Dict[str, Any] = {}
    for key, value in chosen.items():
        if isinstance(value, dict) and value:
            flat.update(values(relative, value, f"{prefix}{key}."))
        else:
            flat[f"{relative}{SEPARATOR}{prefix}{key}"] = value
    return flat


def contents(folder: Path, variant_values: Mapping[str, Any]) -> Dict[str, str]:
    """The JSON files a variant changes, by path inside the model's folder: the model's own
    file (in ``folder``) with the variant's fields replaced. Empty when it changes none."""
    changed: Dict[str, Dict[str, Any]] = {}
    for name, value in sorted(variant_values.items()):
        if not is_file_value(name):
            continue
        relative, field = name.split(SEPARATOR, 1)
        data = changed.setdefault(relative, json.loads((folder / relative).read_text()))
        *parents, last = field.split(".")
        for part in parents:
            data = data[part]
        data[last] = value
    return {relative: json.dumps(data, indent=2) + "\n" for relative, data in changed.items()}
