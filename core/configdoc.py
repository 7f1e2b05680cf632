"""Render the config reference (docs/config.md) from the Config schema itself.

``python -m tsweep.configdoc > docs/config.md`` regenerates it; a test fails when the file
and the schema disagree, so the reference cannot go stale. The keys plugins declare
(``tsweep_config_keys``) get a table of their own: in docs/config.md those of the built-in
plugins; run the module yourself to include the plugins you have installed.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from tsweep import compat
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

DIFFERENCES = """
## For Model Analyzer users

The subcommands `profile`, `analyze` and `report` and the config file (`-f/--config-file`)
work as you know them; flags are the keys in `--kebab-case`. The table below gives every key
of Model Analyzer's config reference and what tsweep does with it: **same** (the meaning
Model Analyzer documents), **different** (tsweep has the key; the note says how it differs),
**renamed** (tsweep's key of another name), **ignored** (accepted, with one warning line
saying why it has no effect) or **refused** (one error line naming the tsweep way). In
numbers: {counts}.

| Model Analyzer key | in tsweep | note |
| --- | --- | --- |
{table}

**Metric names:** Model Analyzer's ({aliases}) are accepted in `objectives`, `constraints`
and `plots` and mean tsweep's `throughput`, `latency_*_ms`, `queue_ms`, `compute_*_ms`,
`gpu_memory_used_mb`, `gpu_power_w` and `server_memory_mb` (`gpu_utilization` is the same
name in both). docs/metrics.md lists every metric and its unit.

**Variants** are named `<model>_config_<n>` and `<model>_config_default`, and are complete
model folders in the output model repository; the CSV export keeps the name
`results/metrics-model-inference.csv`.
"""


def model_analyzer_section(plugin_keys: Sequence[ConfigKey] = ()) -> str:
    """Every Model Analyzer key and its treatment, from :mod:`tsweep.compat` and the keys
    tsweep reads, so a key added to :class:`Config` (or a plugin) moves to the right row."""
    ours = {name for name, f in FIELDS.items() if not f.metadata.get("internal")} | {k.name for k in plugin_keys}
    image = FIELDS["triton_docker_image"].default
    pa_flags = ", ".join(f"`{f}`" for f in PERF_ANALYZER_FLAGS)
    rows, counts = [], {}
    for key in compat.MODEL_ANALYZER_KEYS:
        treated = compat.treatment(key, ours)
        counts[treated.kind] = counts.get(treated.kind, 0) + 1
        note = treated.note.replace("{image}", str(image)).replace("{pa_flags}", pa_flags)
        rows.append(f"| `{key}` | {treated.kind} | {note} |")
    order = ("same", "different", "renamed", "ignored", "refused")
    total = sum(counts.values())
    summary = f"{total} keys: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in order)
    return (
        DIFFERENCES.replace("{counts}", summary)
        .replace("{table}", "\n".join(rows))
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
