"""The automatic config space: instance count x max_batch_size (with dynamic batching).

The model's own config is always the ``default`` variant. Generated variants set
``instance_group`` to ``count`` instances (KIND_CPU when the server has no GPU) and, for
models that batch (``max_batch_size > 0``), ``max_batch_size`` to each power of two within
the bounds with dynamic batching on, unless the model already schedules otherwise:
dynamic_batching, sequence_batching and ensemble_scheduling are one oneof in ModelConfig,
so turning on the dynamic batcher would silently drop a sequence model's sequence batcher.
Load levels: :func:`load_levels`.
"""
from __future__ import annotations

from typing import List

from tsweep import modelconfig
from tsweep.plugin import hookimpl
from tsweep.records import ConfigSpace, LoadLevel, ModelSpec, SpaceSettings, Variant


def powers_of_two(low: int, high: int) -> List[int]:
    """Powers of two in [low, high]; ``low`` itself leads when it is not one."""
    values, p = [], 1
    while p <= high:
        if p >= low:
            values.append(p)
        p *= 2
    if not values or values[0] != low:
        values.insert(0, low)
    return values


def load_levels(settings: SpaceSettings) -> List[LoadLevel]:
    """The listed levels (request rates before concurrencies), else the automatic range:
    powers of two between the bounds, of request rates under request_rate_search. With the
    search disabled, nothing listed means the one level Model Analyzer measures then, 1."""
    if settings.request_rate:
        return [LoadLevel("request_rate", float(r)) for r in settings.request_rate]
    if settings.concurrency:
        return [LoadLevel("concurrency", float(c)) for c in settings.concurrency]
    kind = "request_rate" if settings.request_rate_search else "concurrency"
    if settings.search_disable:
        return [LoadLevel(kind, 1.0)]
    if settings.request_rate_search:
        levels = powers_of_two(settings.min_request_rate, settings.max_request_rate)
    else:
        levels = powers_of_two(settings.min_concurrency, settings.max_concurrency)
    return [LoadLevel(kind, float(v)) for v in levels]


def make_variant(model: ModelSpec, instances: int, max_batch_size: int, gpu: bool) -> Variant:
    config = modelconfig.copy(model.config)
    del config.instance_group[:]
    group = config.instance_group.add()
    group.count = instances
    group.kind = modelconfig.KIND_GPU if gpu else modelconfig.KIND_CPU
    if max_batch_size > 0:
        config.max_batch_size = max_batch_size
        if config.WhichOneof("scheduling_choice") is None:  # keep a sequence batcher or an ensemble's schedule
            config.dynamic_batching.SetInParent()
    return Variant(model=model.name, config=config)


def variants(model: ModelSpec, settings: SpaceSettings) -> List[Variant]:
    default = Variant(model=model.name, config=modelconfig.copy(model.config), is_default=True)
    found = [default]
    if settings.search_disable:
        return found
    batching = model.config.max_batch_size > 0
    batch_sizes = powers_of_two(settings.min_model_batch_size, settings.max_model_batch_size) if batching else [0]
    for instances in range(settings.min_instance_count, settings.max_instance_count + 1):
        for mbs in batch_sizes:
            found.append(make_variant(model, instances, mbs, settings.gpu_available))
    return found


@hookimpl
def tsweep_config_space(model: ModelSpec, settings: SpaceSettings):
    return ConfigSpace(
        model=model,
        variants=tuple(variants(model, settings)),
        load_levels=tuple(load_levels(settings)),
        batch_sizes=tuple(settings.batch_sizes),
        gpus=settings.gpu_count,
    )
