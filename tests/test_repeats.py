"""The final race and combined looks: who gets another look, in which order, and a real sweep."""
from __future__ import annotations

import dataclasses
import math
import sqlite3
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep
from tsweep import modelconfig, race, repeats
from tsweep.analysis import mark_ties
from tsweep.judge import Judge
from tsweep.records import Measurement, RankedConfig, SearchGoal, Variant

def variant(name: str, instances: int) -> Variant:
    config = modelconfig.parse(f'name: "m" backend: "python" max_batch_size: 4 instance_group [{{count: {instances}}}]')
    return Variant(model="m", config=config, name=name)


def look(v: Variant, throughput: float, repeat: int = 0, noise: float = 0.01, status: str = "ok", p99: float = 2.0) -> Measurement:
    """One look; ``noise`` is the throughput interval's relative half-width."""
    return Measurement(
        model="m", variant=v.name, variant_digest=v.digest, load_kind="concurrency", load_value=4.0, batch_size=1,
        status=status, throughput=throughput, latency_p99_ms=p99, throughput_ci=noise * throughput, latency_p99_ci_ms=0.1,
        repeat=repeat, requests=100, window_throughputs=[throughput],
    )  # fmt: skip


def ranked(m: Measurement, rank: int, passes: bool = True) -> RankedConfig:
    return RankedConfig(rank=rank, variant=m.variant, model="m", best=m, passes=passes, score=m.throughput or 0.0)


def race_round(rows, variants, goal=SearchGoal(), top=3, max_looks=4):
    """The next round of the race over these stored rows, ranked by throughput as the sweep would."""
    judge = Judge(goal)
    points = sorted(repeats.merge(rows), key=lambda m: -(m.throughput or 0.0))
    ranking = [ranked(m, i + 1, passes=judge.meets(m) is True) for i, m in enumerate(points)]
    ranking.sort(key=lambda r: not r.passes)
    return [(t.variant.name, t.repeat) for t in race.next_looks(ranking, rows, judge, top, max_looks, {v.digest: v for v in variants})]


def test_race_looks_again_at_contenders_round_by_round_and_drops_the_beaten():
    a, b, c, d = (variant(n, i + 1) for i, n in enumerate("abcd"))
    rows = [look(a, 100, noise=0.05), look(b, 98, noise=0.05), look(c, 50), look(d, 99, noise=0.05)]
    # a leads; b and d cannot be ranked below it yet; c is surely beaten: it gets no look
    assert race_round(rows, (a, b, c, d)) == [("a", 1), ("d", 1), ("b", 1)]
    assert race_round(rows, (a, b, c, d), top=2) == [("a", 1), ("d", 1)]  # the leader and the best challenger
    # round 2: d's looks say 90 (+-1% each now): beaten; b is still close
    rows += [look(a, 100, 1, noise=0.01), look(d, 90, 1, noise=0.01), look(b, 99, 1, noise=0.05)]
    assert race_round(rows, (a, b, c, d)) == [("a", 2), ("b", 2)]
    # every contender at its look limit: the race is over, undecided
    assert race_round(rows, (a, b, c, d), max_looks=2) == []


def test_race_ends_when_the_leader_is_surely_best_or_tied():
    a, b = variant("a", 1), variant("b", 2)
    assert race_round([look(a, 100), look(b, 90)], (a, b)) == []  # separated by one look each
    assert race_round([look(a, 100, noise=0.005), look(b, 99.5, noise=0.005)], (a, b)) == []  # tied within 3%


def test_race_is_between_configs_not_between_loads_of_the_leader():
    a = variant("a", 1)
    rows = [look(a, 100, noise=0.05), dataclasses.replace(look(a, 98, noise=0.05), load_value=2.0)]
    assert race_round(rows, (a,)) == []


def test_race_settles_a_p99_that_straddles_the_budget():
    a, b = variant("a", 1), variant("b", 2)
    goal = SearchGoal(latency_budget_ms=2.05)  # a's p99 2.0 +-0.1 ms may be over
    rows = [look(a, 100), look(b, 60, p99=1.0)]
    assert race_round(rows, (a, b), goal) == [("a", 1)]  # b is the leader, surely beaten by a if a meets the budget
    assert race_round(rows + [look(a, 100, 1, p99=2.0)], (a, b), goal) == [("a", 2)]
    assert race_round([look(a, 100, p99=3.0), look(b, 60, p99=1.0)], (a, b), goal) == []  # surely over


def test_looks_combine_into_one_point_with_a_narrower_interval():
    a = variant("a", 1)
    rows = [look(a, 100.0), look(a, 110.0, repeat=1), look(a, 90.0, repeat=2), look(a, 0.0, repeat=3, status="failed")]
    (merged,) = repeats.merge(rows)
    weights = [1 / (0.01 * t) ** 2 for t in (100.0, 110.0, 90.0)]  # inverse variance: the tighter look weighs more
    assert merged.throughput == pytest.approx(sum(w * t for w, t in zip(weights, (100.0, 110.0, 90.0))) / sum(weights))
    assert merged.throughput_ci == pytest.approx(1 / math.sqrt(sum(weights)))
    assert merged.throughput_ci < min(m.throughput_ci for m in rows[:3])
    assert merged.looks == 3 and merged.error == "1 of 4 looks failed" and merged.requests == 300
    other = look(variant("b", 2), 50.0)
    assert repeats.merge([other]) == [other]  # a point looked at once is left as it is


def test_more_looks_can_separate_a_tie():
    a, b = variant("a", 1), variant("b", 2)
    judge = Judge()
    # one look each: 104 vs 100, each +-3%: the difference (4) is within its uncertainty (4.3)
    single = mark_ties([ranked(look(a, 104.0, noise=0.03), 1), ranked(look(b, 100.0, noise=0.03), 2)], judge)
    assert single[0].tied_with == ("b",)
    # four looks each: the means keep their 4% gap while the intervals halve
    looks_a = [look(a, t, repeat=i, noise=0.03) for i, t in enumerate((104.0, 104.5, 103.5, 104.0))]
    looks_b = [look(b, t, repeat=i, noise=0.03) for i, t in enumerate((100.0, 100.5, 99.5, 100.0))]
    merged = sorted(repeats.merge(looks_a + looks_b), key=lambda m: -m.throughput)
    separated = mark_ties([ranked(m, i + 1) for i, m in enumerate(merged)], judge)
    assert separated[0].variant == "a" and separated[0].tied_with == ()


@pytest.mark.server
@pytest.mark.slow
def test_profile_races_the_top_configs_and_ranks_across_models(workdir: Path):
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
        order = [(v, r) for m, v, r in rows if m == model]
        firsts = [i for i, (_, r) in enumerate(order) if r == 0]
        looks = [(v, r) for v, r in order if r > 0]
        assert all(v in {order[i][0] for i in firsts} for v, _ in looks)  # only measured points are raced
        assert all(r <= 2 for _, r in looks)  # at most --remeasure-rounds more looks each
        assert not looks or min(i for i, (_, r) in enumerate(order) if r > 0) > max(firsts)  # the race comes after the search
        for v in {v for v, _ in looks}:
            assert [r for w, r in looks if w == v] == sorted(r for w, r in looks if w == v)
    assert "Top 3 configs across all models:" in first.stdout

    again = run_tsweep(*args, cwd=workdir)  # resume: nothing new to measure, same candidates
    assert again.returncode == 0, again.stderr
    assert "0 points measured" in again.stderr
