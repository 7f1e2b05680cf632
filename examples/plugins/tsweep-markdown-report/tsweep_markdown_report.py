"""Reporter ``markdown``: the ranking of every model as a Markdown table.

``<export_path>/reports/summary.md`` reads well in a pull request or a wiki: one table per
model, best config first, with the load point that represents each config. It is written
from what the core hands every reporter (the ranking and the stored measurements), so
``tsweep analyze`` rewrites it for other objectives without measuring again.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from tsweep.plugin import hookimpl

HEADER = ["rank", "config", "instances", "max batch", "load", "throughput (infer/s)", "p99 (ms)", "constraints"]


def row(r) -> List[str]:
    """One ranked config as table cells."""
    params = r.best.variant_params
    name = r.variant + (" (default)" if r.is_default else "")
    return [
        str(r.rank),
        name,
        str(params.get("instances", "")),
        str(params.get("max_batch_size", "")),
        str(r.best.load),
        f"{r.best.throughput:.1f}",
        f"{r.best.latency_p99_ms:.2f}",
        "meets" if r.passes else "misses " + ", ".join(r.misses),
    ]


def render(ranking) -> str:
    """The whole file: a heading and a table per model, in the ranking's order."""
    by_model: Dict[str, list] = defaultdict(list)
    for r in ranking:
        by_model[r.model].append(r)
    lines = ["# tsweep summary", ""]
    for model, ranked in by_model.items():
        lines += [f"## {model}", "", "| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
        lines += ["| " + " | ".join(row(r)) + " |" for r in ranked]
        lines.append("")
    return "\n".join(lines)


class MarkdownReporter:
    def write(self, measurements, ranking, export_dir: Path, context) -> List[Path]:
        path = Path(export_dir) / "reports" / "summary.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(ranking))
        return [path]


@hookimpl
def tsweep_reporters():
    return {"markdown": MarkdownReporter()}
