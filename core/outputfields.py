"""Model Analyzer's ``*_output_fields``: the columns of the CSV files and of the console
ranking, chosen by Model Analyzer's field tags, checked once.

A tag is either a property of the point (``model_name``, ``batch_size``, ``concurrency``,
``request_rate``, ``model_config_path``, ``instance_group``, ``max_batch_size``,
``satisfies_constraints``, and ``gpu_uuid`` in the per-GPU and server files) or a metric
tag (``perf_throughput``, ``perf_latency_p99``, ``gpu_used_memory``, ...; tsweep's own metric
names work too), mapped through :data:`tsweep.config.METRIC_ALIASES` and checked against the
run's metric catalogue. The Run resolves them (:func:`resolve`); the CSV reporter and the CLI
read a point's cells through :func:`cell`. An empty list keeps tsweep's own columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence, Tuple

from tsweep.catalogue import Catalogue
from tsweep.config import METRIC_ALIASES
from tsweep.errors import UsageError
from tsweep.judge import Judge
from tsweep.plotspec import did_you_mean
from tsweep.records import Constraint, Measurement

#: The three files, by the key that chooses their columns.
KEYS = {"inference": "inference_output_fields", "gpu": "gpu_output_fields", "server": "server_output_fields"}

#: Tags that are properties of a point, with their column titles.
POINT_TAGS = {
    "model_name": "Model",
    "batch_size": "Client Batch Size",
    "concurrency": "Concurrency",
    "request_rate": "Request Rate",
    "model_config_path": "Model Config",
    "instance_group": "Instances",
    "max_batch_size": "Max Batch Size",
    "satisfies_constraints": "Satisfies Constraints",
    "gpu_uuid": "GPU UUID",
}
#: Which point tags each file has (the idle server's file has no load, config or constraints).
ALLOWED = {
    "inference": tuple(t for t in POINT_TAGS if t != "gpu_uuid"),
    "gpu": tuple(POINT_TAGS),
    "server": ("model_name", "gpu_uuid"),
}


@dataclass(frozen=True)
class OutputField:
    """One column: the user's ``tag``, its ``title``, and ``name``: the point tag, or the
    metric's name in tsweep (``metric`` says which)."""

    tag: str
    title: str
    name: str
    metric: bool = False


def resolve(tags: Sequence[str], which: str, known: Catalogue) -> Tuple[OutputField, ...]:
    """``tags`` of the ``which`` file as columns; one line naming a tag that is not one."""
    fields = []
    for tag in tags:
        if tag in ALLOWED[which]:
            fields.append(OutputField(tag, POINT_TAGS[tag], tag))
            continue
        name = METRIC_ALIASES.get(tag, tag)
        if name in known or (which != "inference" and f"gpu_{name}" in known):
            fields.append(OutputField(tag, known.info(name).csv_title, name, metric=True))
            continue
        raise UsageError(f"unknown field {tag!r} in {KEYS[which]}: {did_you_mean(tag, [*ALLOWED[which], *METRIC_ALIASES, *known])}")
    return tuple(fields)


def resolve_all(config: Any, known: Catalogue) -> Dict[str, Tuple[OutputField, ...]]:
    """Each file's chosen columns (absent: tsweep's own)."""
    return {which: resolve(getattr(config, key), which, known) for which, key in KEYS.items() if getattr(config, key)}


def satisfies(m: Measurement, constraints: Sequence[Constraint], judge: Judge) -> str:
    """``Yes`` when the point surely meets every constraint, ``No`` when it surely misses one
    or failed, ``Unsure`` when an interval straddles a bound (the Judge decides, as in ranking)."""
    if m.status == "failed" or m.throughput is None:
        return "No"
    verdicts = [judge.within(m, c) for c in constraints]
    return "No" if False in verdicts else "Unsure" if None in verdicts else "Yes"


def cell(f: OutputField, m: Measurement, satisfied: str = "", values: Mapping[str, float] = (), uuid: str = "") -> Any:
    """``m``'s value for column ``f``: ``values`` replaces ``m``'s metrics (one GPU's, the idle
    server's), ``satisfied`` is :func:`satisfies`'s word, ``uuid`` the row's GPU."""
    if f.metric:
        if values:
            return values.get(f.name, values.get(f.name[len("gpu_"):]) if f.name.startswith("gpu_") else None)
        return m.value(f.name) if m is not None else None
    if f.name == "model_name":
        return m.model if m is not None else "triton-server"
    if f.name == "gpu_uuid":
        return uuid
    if f.name == "satisfies_constraints":
        return satisfied
    return {
        "batch_size": lambda: m.batch_size,
        "concurrency": lambda: f"{m.load_value:g}" if m.load_kind == "concurrency" else "",
        "request_rate": lambda: f"{m.load_value:g}" if m.load_kind == "request_rate" else "",
        "model_config_path": lambda: m.variant,
        "instance_group": lambda: m.variant_params.get("instances", ""),
        "max_batch_size": lambda: m.variant_params.get("max_batch_size", ""),
    }[f.name]()
