"""Re-measuring the top candidates: interleaved order, combined looks, and a real sweep."""
from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep
from tsweep import modelconfig, repeats
from tsweep.analysis import mark_ties
from tsweep.records import LoadLevel, Measurement, RankedConfig, Variant

def variant(name: str, instances: int) -> Variant:
    config = modelconfig.parse(f'name: "m" backend: "python" max_batch_size: 4 instance_group [{{count: {instances}}}]')
    return Variant(model="m", config=config, params={"instances": instances}, name=name)


def look(v: Variant, throughput: float, repeat: int = 0, noise: float = 0.01, status: str = "ok") -> Measurement:
    return Measurement(
        model="m", variant=v.name, variant_digest=v.digest, load_kind="concurrency", load_value=4.0, batch_size=1,
        status=status, throughput=throughput, latency_p99_ms=2.0, throughput_noise=noise, repeat=repeat, requests=100,
        window_throughputs=[throughput],
    )  # fmt: skip


def ranked(m: Measurement, rank: int, passes: bool = True) -> RankedConfig:
    return RankedConfig(rank=rank, variant=m.variant, model="m", best=m, passes=passes, score=m.throughput or 0.0)


def test_plan_interleaves_rounds_across_candidates_and_skips_failing_configs():
    a, b, c = (variant(n, i + 1) for i, n in enumerate("abc"))
    ranking = [ranked(look(a, 100), 1), ranked(look(b, 99), 2), ranked(look(c, 500), 3, passes=False)]
    trials = repeats.plan(ranking, top=3, rounds=2, variants={"a": a, "b": b, "c": c})
    assert [(t.variant.name, t.repeat) for t in trials] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert all(t.load == LoadLevel("concurrency", 4.0) for t in trials)
    assert len({t.key for t in trials} | {ranking[0].best.key}) == 5  # every look is its own row


def test_looks_combine_into_one_point_with_a_narrower_noise_band():
    a = variant("a", 1)
    rows = [look(a, 100.0), look(a, 110.0, repeat=1), look(a, 90.0, repeat=2), look(a, 0.0, repeat=3, status="failed")]
    (merged,) = repeats.merge(rows)
    assert merged.throughput == pytest.approx(100.0)
    assert merged.throughput_noise == pytest.approx(0.1 / math.sqrt(3))  # half-spread 10%, three usable looks
    assert merged.metrics["looks"] == 3 and merged.error == "1 of 4 looks failed" and merged.requests == 300
    other = look(variant("b", 2), 50.0)
    assert repeats.merge([other]) == [other]  # a point looked at once is left as it is


def test_more_looks_can_separate_a_tie():
    a, b = variant("a", 1), variant("b", 2)
    # one look each: 104 vs 100 with 3% noise each -> bands overlap, a tie
    single = mark_ties([ranked(look(a, 104.0, noise=0.03), 1), ranked(look(b, 100.0, noise=0.03), 2)])
    assert single[0].tied_with == ("b",)
    # four quiet looks each: the means keep their 4% gap while the bands shrink
    looks_a = [look(a, t, repeat=i) for i, t in enumerate((104.0, 104.5, 103.5, 104.0))]
    looks_b = [look(b, t, repeat=i) for i, t in enumerate((100.0, 100.5, 99.5, 100.0))]
    merged = sorted(repeats.merge(looks_a + looks_b), key=lambda m: -m.throughput)
    separated = mark_ties([ranked(m, i + 1) for i, m in enumerate(merged)])
    assert separated[0].variant == "a" and separated[0].tied_with == ()


@pytest.mark.server
@pytest.mark.slow
def test_profile_remeasures_top_configs_interleaved_and_ranks_across_models(workdir: Path):
    args = [
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub,mlp",
        "--output-model-repository-path", "out", "--run-config-search-max-instance-count", "1",
        "--run-config-search-min-model-batch-size", "8", "--run-config-search-max-model-batch-size", "8",
        "--concurrency", "2", "--measurement-window-s", "0.2", "--max-windows", "5",
        "--remeasure-top-configs", "2", "--remeasure-rounds", "2",
        "--num-top-model-configs", "3",
    ]  # fmt: skip
    first = run_tsweep(*args, cwd=workdir)
    assert first.returncode == 0, first.stderr
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    rows = conn.execute("SELECT model, variant, repeat FROM measurements ORDER BY id").fetchall()
    conn.close()
    for model in ("add_sub", "mlp"):
        looks = [(v, r) for m, v, r in rows if m == model and r > 0]
        firsts = [v for m, v, r in rows if m == model and r == 0]
        candidates = list(dict.fromkeys(v for v, _ in looks))
        assert len(candidates) == 2 and set(candidates) <= set(firsts)
        assert looks == [(v, r) for r in (1, 2) for v in candidates]  # round by round, not back to back
    assert "Top 3 configs across all models:" in first.stdout
    assert first.stdout.count("(3 looks)") >= 4  # two candidates per model, each shown with its looks

    again = run_tsweep(*args, cwd=workdir)  # resume: nothing new to measure, same candidates
    assert again.returncode == 0, again.stderr
    assert "0 points measured" in again.stderr
