"""Render the config reference (docs/config.md) from the Config schema itself.

``python -m tsweep.configdoc > docs/config.md`` regenerates it; a test fails when the file
and the schema disagree, so the reference cannot go stale.
"""
from __future__ import annotations

import dataclasses

from tsweep.config import METRIC_ALIASES, PERF_ANALYZER_FLAGS, Config

INTRO = """# Config reference

Every setting can go in the YAML file given with `-f/--config-file`; those marked with a
flag can also be given on the command line, which wins over the file. Keys are Model
Analyzer's where the meaning is the same.

This file is generated from `core/config.py` by `python -m tsweep.configdoc`; do not edit it
by hand.
"""

DIFFERENCES = """
## For Model Analyzer users

- Work unchanged: the subcommands `profile`, `analyze`, `report`; `--model-repository`,
  `--profile-models` (as a list or comma-separated), `--triton-launch-mode` (`local`,
  `remote`), `--output-model-repository-path`, `--override-output-model-repository`,
  `--latency-budget`, `--min-throughput`, `-f/--config-file`, `--report-model-configs`,
  `--export-path`, `checkpoint_directory`, `objectives`, `constraints`,
  `run_config_search_{min,max}_{concurrency,instance_count,model_batch_size}`,
  `run_config_search_disable`, `triton_server_flags`, `batch_sizes`, `concurrency`.
- Metric names: Model Analyzer's ({aliases}) are accepted in `objectives` and `constraints`
  and mean tsweep's `throughput`, `latency_*_ms`, `gpu_memory_used_mb`, `gpu_power_w` and
  `server_memory_mb` (`gpu_utilization` is the same name in both). docs/metrics.md lists
  every metric and its unit.
- `perf_analyzer_flags`: {pa_flags} are understood and mapped onto tsweep's own keys
  (`measurement-interval` in ms becomes `measurement_window_s`, `stability-percentage`
  becomes `stability_tolerance`, ...); an explicit tsweep key wins. Other perf_analyzer flags
  are refused with a message rather than ignored, because tsweep does not run perf_analyzer.
- Different: the results store is a SQLite file (`<checkpoint_directory>/results.sqlite`),
  not a pickle; the load generator is tsweep's own (native HTTP, or gRPC through
  tritonclient); the default search bounds are smaller (2 instances, max batch size 16,
  concurrency 16) while the adaptive search is being built.
- `profile_models` may be a mapping, as in Model Analyzer: per model,
  `model_config_parameters` (any config.pbtxt field, lists for the values to try; their
  cartesian product replaces the automatic space) and `parameters` (`concurrency`,
  `batch_sizes`, `request_rate`).
- Not supported yet: the docker launch mode.
"""


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


def render() -> str:
    lines = [INTRO, "| key | flag | default | commands | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):
            continue
        flag = "`--" + f.name.replace("_", "-") + "`" if f.metadata["flag"] else "(file only)"
        if f.metadata["short"]:
            flag += f", `{f.metadata['short']}`"
        lines.append(f"| `{f.name}` | {flag} | {_default(f)} | {', '.join(f.metadata['commands'])} | {f.metadata['help']} |")
    aliases = ", ".join(f"`{a}`" for a in METRIC_ALIASES)
    pa_flags = ", ".join(f"`{f}`" for f in PERF_ANALYZER_FLAGS)
    return "\n".join(lines) + "\n" + DIFFERENCES.replace("{aliases}", aliases).replace("{pa_flags}", pa_flags)


if __name__ == "__main__":
    print(render(), end="")
