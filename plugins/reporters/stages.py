"""A pipeline's per-stage breakdown (tsweep.stagestats), as the PDFs and the CSV show it.

One place for the table's columns and the sentence naming the stage that bounds throughput,
so that the summary, the detailed report and the CSV say the same thing.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from tsweep import stagestats
from tsweep.records import Measurement

#: (column title, stored figure, scale): the per-request times in ms, then batching and busy.
COLUMNS = (
    ("Queue (ms)", "queue_ms", 1.0),
    ("Compute Input (ms)", "compute_input_ms", 1.0),
    ("Compute Infer (ms)", "compute_infer_ms", 1.0),
    ("Compute Output (ms)", "compute_output_ms", 1.0),
    ("Batch Avg (requests)", "batch_avg", 1.0),
    ("Busy (%)", "busy", 100.0),
)


def rows(m: Measurement) -> List[List[Optional[float]]]:
    """A row per stage of ``m``: its figures in :data:`COLUMNS` order (None where missing)."""
    return [[(f.get(name) * scale if f.get(name) is not None else None) for _, name, scale in COLUMNS] for f in stagestats.stages(m.metrics).values()]


def names(m: Measurement) -> List[str]:
    return list(stagestats.stages(m.metrics))


def bounding_sentence(m: Measurement) -> str:
    """'Stage mlp bounds throughput: its instances were busy 74% of the time (preprocess 27%).'"""
    bound = stagestats.bounding_stage(m.metrics)
    if bound is None:
        return ""
    figures = stagestats.stages(m.metrics)
    others = ", ".join(f"{name} {100 * f.get('busy', 0.0):.0f}%" for name, f in figures.items() if name != bound)
    return (
        f"Stage {bound} bounds throughput: its instances were busy {100 * figures[bound]['busy']:.0f}% of the time"
        + (f" ({others})." if others else ".")
        + " More instances or larger batches of that stage are what can raise it."
    )


def section(pdf, m: Measurement, width: float, title: str) -> list:
    """The per-stage table and the bounding stage, for the reports (empty for single models)."""
    found = rows(m)
    if not found:
        return []
    header = ["Stage", *(title for title, _, _ in COLUMNS)]
    table = [[name, *(pdf.num(v) for v in row)] for name, row in zip(names(m), found)]
    return [pdf.section(title, pdf.table(header, table, width), pdf.para(bounding_sentence(m), pdf.SMALL))]


def csv_rows(measurements: Sequence[Measurement]) -> List[list]:
    """A row per (point, stage) for the CSV, with whether the stage bounds the point."""
    found = []
    for m in measurements:
        bound = stagestats.bounding_stage(m.metrics)
        for name, row in zip(names(m), rows(m)):
            found.append([m.model, m.variant, m.load_kind, f"{m.load_value:g}", m.batch_size, m.repeat, name, *row, "yes" if name == bound else "no"])
    return found


CSV_HEADER = ["Model", "Model Config", "Load Kind", "Load Value", "Client Batch Size", "Repeat", "Stage", *(t for t, _, _ in COLUMNS), "Bounds Throughput"]
