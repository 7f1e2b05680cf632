"""The markdown reporter on a real small sweep, with tsweep's test kit (tsweep.testing)."""
import sqlite3

import pytest
import tsweep_markdown_report


def table_rows(text):
    """The data rows of the Markdown tables, as lists of cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| rank", "| ---"))]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.server
def test_summary_rows_are_the_ranking_and_the_stored_results(tsweep_sweep):
    result = tsweep_sweep(tsweep_markdown_report, run_config_search_disable=False, run_config_search_max_instance_count=1,
                          run_config_search_min_model_batch_size=8, run_config_search_max_model_batch_size=8, latency_budget=1000)
    summary = result.export_path / "reports" / "summary.md"
    assert summary in result.outcome.reports
    rows = table_rows(summary.read_text())
    (ranking,) = result.outcome.rankings.values()
    assert [(r[0], r[1].split()[0]) for r in rows] == [(str(r.rank), r.variant) for r in ranking]
    assert len(rows) == 2  # the default config and max_batch_size 8
    db = sqlite3.connect(result.store_path)
    for cells in rows:
        kind, value = cells[4].split("=")
        (stored,) = db.execute("SELECT throughput, latency_p99_ms FROM measurements WHERE variant = ? AND load_kind = ? AND load_value = ?",
                               (cells[1].split()[0], kind, float(value))).fetchall()
        assert cells[5:8] == [f"{stored[0]:.1f}", f"{stored[1]:.2f}", "meets"]
