"""Render the config reference (docs/config.md) from the Config schema itself.

``python -m tsweep.configdoc > docs/config.md`` regenerates it; a test fails when the file
and the schema disagree, so the reference cannot go stale. The keys plugins declare
(``tsweep_config_keys``) get a table of their own: in docs/config.md those of the built-in
plugins; run the module yourself to include the plugins you have installed.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from tsweep.config import FIELDS, METRIC_ALIASES, PERF_ANALYZER_FLAGS, Config
from tsweep.configvalues import ConfigKey

INTRO = """# Config reference

Every setting can go in the YAML file given with `-f/--config-file`; those marked with a
flag can also be given on the command line, which wins over the file. Keys are Model
Analyzer's where the meaning is the same.

This file is generated from `core/config.py` and the built-in plugins by
`TSWEEP_DISABLE_PLUGIN_AUTOLOAD=1 python -m tsweep.configdoc`; do not edit it
by hand.
"""

#: Model Analyzer's documented config keys (profile and report), as facts about its format.
MODEL_ANALYZER_KEYS = (
    "model_repository", "profile_models", "checkpoint_directory", "output_model_repository_path",
    "override_output_model_repository", "export_path", "concurrency", "batch_sizes", "client_max_retries",
    "duration_seconds", "monitoring_interval", "collect_cpu_metrics", "client_protocol", "perf_analyzer_path",
    "perf_analyzer_timeout", "perf_analyzer_cpu_util", "perf_output", "perf_output_path",
    "perf_analyzer_max_auto_adjusts", "reload_model_disable", "triton_docker_image", "triton_http_endpoint",
    "triton_install_path", "triton_grpc_endpoint", "triton_metrics_url", "triton_server_path", "triton_output_path",
    "triton_docker_mounts", "triton_docker_shm_size", "triton_launch_mode", "gpus", "run_config_search_mode",
    "run_config_search_min_concurrency", "run_config_search_max_concurrency", "run_config_search_min_model_batch_size",
    "run_config_search_max_model_batch_size", "run_config_search_min_instance_count",
    "run_config_search_max_instance_count", "run_config_search_disable", "run_config_profile_models_concurrently_enable",
    "skip_summary_reports", "num_configs_per_model", "num_top_model_configs", "filename_model_inference",
    "filename_model_gpu", "filename_server_only", "inference_output_fields", "gpu_output_fields",
    "server_output_fields", "latency_budget", "min_throughput", "constraints", "objectives", "weighting",
    "triton_server_flags", "perf_analyzer_flags", "triton_server_environment", "triton_docker_labels",
    "report_model_configs", "plots",
)  # fmt: skip

#: Keys tsweep has under the same name but where the meaning or the accepted values differ.
DIFFERENT = {
    "checkpoint_directory": "holds `results.sqlite`, a SQLite file any SQLite tool opens, not a pickle; a rerun resumes from it",
    "client_protocol": "default `http` (tsweep's native load generator, the fastest); `grpc` goes through tritonclient",
    "concurrency": "a list or a comma-separated string; the `{start, stop, step}` range form is not accepted",
    "batch_sizes": "a list or a comma-separated string; the `{start, stop, step}` range form is not accepted",
    "objectives": "a mapping `{metric: weight}`; the plain list form is not accepted",
    "profile_models": "the mapping form takes `model_config_parameters` and `parameters` per model; per-model `objectives` and `constraints` are refused",
    "run_config_search_mode": "adds `adaptive`, the default, next to `brute` and `quick` (docs/search.md)",
    "triton_launch_mode": "`local`, `docker` and `remote`, plus any a plugin adds; there is no `c_api`",
    "triton_docker_image": "default `{image}`, the release of the embedded server",
    "triton_docker_shm_size": "default `1g`, because the python backend moves tensors through /dev/shm",
    "triton_server_flags": "refuses the flags tsweep sets itself (ports, addresses, repository, model control)",
    "triton_docker_mounts": "the repositories are mounted already, read-only, at the same path inside as outside",
    "perf_analyzer_flags": "only {pa_flags} are understood, mapped onto tsweep's own keys; others are refused with a message, because tsweep does not run perf_analyzer",
    "report_model_configs": "prints every load level of each config; there are no plots",
}

#: Model Analyzer keys that tsweep spells differently.
RENAMED = {"gpus": "triton_gpus (for the docker container; metrics cover every GPU NVML sees)"}

DIFFERENCES = """
## For Model Analyzer users

The subcommands `profile`, `analyze` and `report` and the config file (`-f/--config-file`)
work as you know them; flags are the keys in `--kebab-case`. tsweep's own notes on each
group of keys follow; the table above has every key tsweep reads.

**Same name, same meaning:** {same}.

**Same name, different behaviour:**

{different}

**Spelled differently:** {renamed}.

**Not supported** (tsweep refuses them with a message naming the key, rather than ignoring
them): {unsupported}.

**Metric names:** Model Analyzer's ({aliases}) are accepted in `objectives` and `constraints`
and mean tsweep's `throughput`, `latency_*_ms`, `gpu_memory_used_mb`, `gpu_power_w` and
`server_memory_mb` (`gpu_utilization` is the same name in both). docs/metrics.md lists every
metric and its unit.

**Variants** are named `<model>_config_<n>` and `<model>_config_default`, and are complete
model folders in the output model repository; the CSV export keeps the name
`results/metrics-model-inference.csv`.
"""


def model_analyzer_section(plugin_keys: Sequence[ConfigKey] = ()) -> str:
    """Which Model Analyzer keys work unchanged, which differ, which are refused: derived
    from the schema (and the plugins' keys), so a key added moves to the right list by itself."""
    ours = {name for name, f in FIELDS.items() if not f.metadata.get("internal")} | {k.name for k in plugin_keys}
    same = [k for k in MODEL_ANALYZER_KEYS if k in ours and k not in DIFFERENT]
    unsupported = [k for k in MODEL_ANALYZER_KEYS if k not in ours and k not in RENAMED]
    image = FIELDS["triton_docker_image"].default
    pa_flags = ", ".join(f"`{f}`" for f in PERF_ANALYZER_FLAGS)
    different = "\n".join(f"- `{k}`: {note.replace('{image}', str(image)).replace('{pa_flags}', pa_flags)}." for k, note in DIFFERENT.items())
    return (
        DIFFERENCES.replace("{same}", ", ".join(f"`{k}`" for k in same))
        .replace("{different}", different)
        .replace("{renamed}", "; ".join(f"`{k}` is `{v.split(' ', 1)[0]}` {v.split(' ', 1)[1]}" for k, v in RENAMED.items()))
        .replace("{unsupported}", ", ".join(f"`{k}`" for k in unsupported))
        .replace("{aliases}", ", ".join(f"`{a}`" for a in METRIC_ALIASES))
    )


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    else:
        value = f.default_factory()  # type: ignore[misc]
    if value in (None, (), {}):
        return "-"
    if isinstance(value, tuple):
        return "`" + ",".join(map(str, value)) + "`"
    return f"`{value}`"


def _plugin_table(keys: Sequence[ConfigKey]) -> str:
    lines = [
        "",
        "## Keys that plugins add",
        "",
        "Plugins declare keys of their own (docs/plugins.md); they are set in the config file only.",
        "",
        "| key | plugin | default | commands | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k in keys:
        default = "-" if k.default in (None, (), [], {}) else f"`{k.default}`"
        lines.append(f"| `{k.name}` | {k.owner} | {default} | {', '.join(k.commands)} | {k.help} |")
    return "\n".join(lines) + "\n"


def render(plugin_keys: Sequence[ConfigKey] = ()) -> str:
    """The reference: tsweep's keys, the plugins' keys, then the notes for Model Analyzer users."""
    lines = [INTRO, "| key | flag | default | commands | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):
            continue
        flag = "`--" + f.name.replace("_", "-") + "`" if f.metadata["flag"] else "(file only)"
        if f.metadata["short"]:
            flag += f", `{f.metadata['short']}`"
        lines.append(f"| `{f.name}` | {flag} | {_default(f)} | {', '.join(f.metadata['commands'])} | {f.metadata['help']} |")
    plugins = _plugin_table(plugin_keys) if plugin_keys else ""
    return "\n".join(lines) + "\n" + plugins + model_analyzer_section(plugin_keys)


def builtin_keys() -> Sequence[ConfigKey]:
    """The keys tsweep's own plugins declare: what docs/config.md lists."""
    from tsweep.pluginmanager import make_plugin_manager

    return make_plugin_manager(autoload=False).config_keys()


if __name__ == "__main__":
    from tsweep.pluginmanager import make_plugin_manager

    print(render(make_plugin_manager().config_keys()), end="")
