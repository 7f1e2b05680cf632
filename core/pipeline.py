"""Pipelines: an ensemble or a BLS model profiled together with the models it runs.

An ensemble's composing models are the ``model_name`` of its ``ensemble_scheduling`` steps;
a BLS model's are the ones its code calls by name, which the config must list
(``bls_composing_models``). Each composing model gets a space of its own (its
``model_config_parameters`` from ``ensemble_composing_models`` / ``bls_composing_models``,
else the automatic space); a pipeline's variants are the combinations of composing variants
(for a BLS model, times the BLS model's own variants), so strategies search them together.

Names follow Model Analyzer: composing variants ``<composing>_config_<n>`` (or
``_config_default``), the pipeline's ``<model>_config_<n>``. An ensemble variant is written
with its steps naming the composing variants; a BLS model's code names the models it calls,
so its composing variants are loaded under the models' own names (one pipeline at a time).

Per point, each composing model's Triton statistics over the point's windows become the
per-stage figures (:mod:`tsweep.stagestats`).
"""
from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Dict, List, Mapping, Sequence, Tuple

from tsweep import modelconfig, repository
from tsweep.errors import UsageError
from tsweep.records import ConfigSpace, ModelSpec, SpaceSettings, Variant

ENSEMBLE, BLS = "ensemble", "bls"
#: More pipeline variants than this is a space no strategy should be handed whole.
MAX_VARIANTS = 10000


def step_models(config) -> List[str]:
    """The models an ensemble config runs, in step order, each once."""
    names: List[str] = []
    for step in config.ensemble_scheduling.step:
        if step.model_name not in names:
            names.append(step.model_name)
    return names


def is_ensemble(config) -> bool:
    return config.platform == "ensemble" or config.HasField("ensemble_scheduling")


def attach(models: Sequence[ModelSpec], repository_root: str, ensemble_settings: Mapping[str, dict], bls_settings: Mapping[str, dict]) -> List[ModelSpec]:
    """The profiled models with their composing models found and checked: every one must be
    in the repository (else one line naming it and the pipeline). A composing model given in
    ``ensemble_composing_models`` that no profiled ensemble runs: a warning line, as Model
    Analyzer gives."""
    found, used = [], set()
    for model in models:
        if is_ensemble(model.config):
            names, kind, key = step_models(model.config), ENSEMBLE, "ensemble_scheduling"
            used.update(names)
        elif bls_settings:
            names, kind, key = list(bls_settings), BLS, "bls_composing_models"
            if model.name in names:
                raise UsageError(f"model {model.name!r} is both profiled and in bls_composing_models: list the models it calls, not itself")
        else:
            found.append(model)
            continue
        parts = []
        for name in names:
            try:
                (part,) = repository.find_models(repository_root, [name])
            except UsageError:
                raise UsageError(
                    f"{kind} {model.name!r} runs model {name!r} ({key}), which is not in {repository_root}: add its folder to the model repository"
                ) from None
            if is_ensemble(part.config):
                raise UsageError(f"{kind} {model.name!r} runs the ensemble {name!r}: nested ensembles are not supported; profile {name!r} on its own")
            parts.append(part)
        found.append(dataclasses.replace(model, composing=tuple(parts), pipeline=kind))
    unused = sorted(set(ensemble_settings) - used)
    if unused:
        from tsweep.config import ConfigWarning

        warnings.warn(f"ensemble_composing_models lists {', '.join(map(repr, unused))}, which no profiled ensemble runs: ignored", ConfigWarning, stacklevel=2)
    return found


def served_as_is(model: ModelSpec) -> Variant:
    """``reload_model_disable``: the server's pipeline as it is, its composing models under
    their own names (so that their statistics are still read per stage)."""
    parts = tuple(Variant(p.name, modelconfig.copy(p.config), is_default=True) for p in model.composing)
    return Variant(model.name, modelconfig.copy(model.config), is_default=True, composing=parts, by_own_name=bool(parts))


def composing_settings(settings: SpaceSettings, pipeline: ModelSpec, part: ModelSpec, parameters: Mapping[str, dict], cpu_only: Sequence[str]) -> SpaceSettings:
    """A composing model's space settings: the run's bounds, its own model_config_parameters,
    KIND_CPU when ``cpu_only_composing_models`` names it, and, under a batching ensemble,
    max_batch_size no lower than the ensemble's (Triton refuses an ensemble whose steps
    batch less than it does)."""
    low = settings.min_model_batch_size
    if pipeline.pipeline == ENSEMBLE and pipeline.config.max_batch_size > 0:
        low = max(low, int(pipeline.config.max_batch_size))
    return dataclasses.replace(
        settings,
        model_config_parameters=dict((parameters.get(part.name) or {}).get("model_config_parameters") or {}),
        gpu_available=settings.gpu_available and part.name not in cpu_only,
        min_model_batch_size=low,
        max_model_batch_size=max(low, settings.max_model_batch_size),
    )


def combine(model: ModelSpec, own: Sequence[Variant], parts: Sequence[Sequence[Variant]]) -> List[Variant]:
    """The pipeline's variants: each of its own variants (an ensemble has only its config)
    with each combination of composing variants. The default is everyone's own config; a
    space over :data:`MAX_VARIANTS` is refused with one line saying how to narrow it."""
    sizes = [len(own)] + [len(p) for p in parts]
    total = 1
    for n in sizes:
        total *= n
    if total > MAX_VARIANTS:
        shape = " x ".join(str(n) for n in sizes)
        raise UsageError(
            f"pipeline {model.name!r} has {total} variants ({shape}), over {MAX_VARIANTS}: narrow the composing models' "
            "model_config_parameters or the run_config_search_max_instance_count / max_model_batch_size bounds"
        )
    by_own_name = model.pipeline == BLS
    found = []
    for top, *combo in itertools.product(own, *parts):
        is_default = top.is_default and all(c.is_default for c in combo)
        found.append(dataclasses.replace(top, composing=tuple(combo), is_default=is_default, by_own_name=by_own_name))
    found.sort(key=lambda v: not v.is_default)  # the default first, as single models have it
    return found


def name_composing(variants: Sequence[Variant]) -> List[Variant]:
    """Name every composing variant ``<model>_config_<n>`` in order of appearance (equal
    configs share a name) or ``<model>_config_default``."""
    names: Dict[Tuple[str, str], str] = {}
    counts: Dict[str, int] = {}
    named = []
    for v in variants:
        parts = []
        for c in v.composing:
            key = (c.model, c.digest)
            if key not in names:
                if c.is_default:
                    names[key] = f"{c.model}_config_default"
                else:
                    names[key] = f"{c.model}_config_{counts.get(c.model, 0)}"
                    counts[c.model] = counts.get(c.model, 0) + 1
            parts.append(dataclasses.replace(c, name=names[key]))
        named.append(dataclasses.replace(v, composing=tuple(parts)))
    return named


def served_name(variant: Variant, part: Variant) -> str:
    """The name a composing variant is loaded under: its own, or (BLS) its model's."""
    return part.model if variant.by_own_name else part.name


def top_config(variant: Variant):
    """The pipeline model's config as written: an ensemble's steps name the composing
    variants it is loaded with, and its max_batch_size is no more than theirs."""
    config = modelconfig.copy(variant.config)
    if variant.by_own_name or not variant.composing:
        return config
    names = {c.model: served_name(variant, c) for c in variant.composing}
    for step in config.ensemble_scheduling.step:
        step.model_name = names.get(step.model_name, step.model_name)
    return config


def parts_of(model: ModelSpec, variant: Variant) -> List[Tuple[ModelSpec, Variant]]:
    """Each composing model's folder with its variant in this pipeline variant."""
    specs = {m.name: m for m in model.composing}
    return [(specs[c.model], c) for c in variant.composing]


def instances_of(variant: Variant, gpus: int = 1) -> Dict[str, int]:
    return {c.model: max(modelconfig.instance_count(c.config, gpus), 1) for c in variant.composing}


def space(model: ModelSpec, own: ConfigSpace, parts: Sequence[ConfigSpace]) -> ConfigSpace:
    """The pipeline's space: :func:`combine` over the model's own space and its parts'."""
    own_variants = own.variants if model.pipeline == BLS else tuple(v for v in own.variants if v.is_default)
    return dataclasses.replace(own, variants=tuple(combine(model, own_variants, [p.variants for p in parts])))
