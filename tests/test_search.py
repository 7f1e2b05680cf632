"""The automatic space and the brute strategy's feedback protocol, on synthetic results."""
from tsweep import modelconfig
from tsweep.judge import Judge
from tsweep.plugins.search.automatic_space import powers_of_two, tsweep_config_space
from tsweep.plugins.search.brute import BruteSearch, walk_finished
from tsweep.records import LoadLevel, Measurement, ModelSpec, SearchGoal, SpaceSettings, Trial
from tsweep.sweep import name_variants

CONFIG = modelconfig.parse('name: "m" backend: "python" max_batch_size: 4 instance_group [{count: 1 kind: KIND_CPU}]')


def space(**kw):
    s = tsweep_config_space(ModelSpec("m", None, CONFIG), SpaceSettings(**kw))
    variants = tuple(name_variants("m", s.variants))
    return type(s)(s.model, variants, s.load_levels, s.batch_sizes)


def point(trial, throughput, status="ok"):
    return Measurement(
        model="m", variant=trial.variant.name, variant_digest=trial.variant.digest, load_kind=trial.load.kind,
        load_value=trial.load.value, batch_size=trial.batch_size, status=status, throughput=throughput, latency_p99_ms=1.0,
        throughput_ci=0.0, latency_p99_ci_ms=0.0,
    )  # fmt: skip  # exact figures: a synthetic surface has no noise unless a test gives it some


def test_powers_of_two():
    assert powers_of_two(1, 16) == [1, 2, 4, 8, 16]
    assert powers_of_two(3, 20) == [3, 4, 8, 16]


def test_space_is_default_plus_instances_times_batch_sizes():
    s = space(max_instance_count=2, min_model_batch_size=4, max_model_batch_size=8, concurrency=(1, 2))
    names = [v.name for v in s.variants]
    assert names == ["m_config_default", "m_config_0", "m_config_1", "m_config_2", "m_config_3"]
    params = [dict(v.params) for v in s.variants[1:]]
    assert params == [
        {"instances": i, "max_batch_size": b, "dynamic_batching": True} for i in (1, 2) for b in (4, 8)
    ]
    assert all(g.kind == modelconfig.KIND_CPU for v in s.variants for g in v.config.instance_group)
    assert [str(l) for l in s.load_levels] == ["concurrency=1", "concurrency=2"]


def test_variants_keep_the_models_own_scheduling():
    """dynamic_batching shares a oneof with sequence_batching: setting it would drop the latter."""
    sequence = modelconfig.parse('name: "s" backend: "python" max_batch_size: 4 sequence_batching { max_sequence_idle_microseconds: 5000 }')
    s = tsweep_config_space(ModelSpec("s", None, sequence), SpaceSettings(max_instance_count=2, max_model_batch_size=8))
    assert len(s.variants) > 1
    for v in s.variants:
        assert v.config.WhichOneof("scheduling_choice") == "sequence_batching"
        assert v.config.sequence_batching.max_sequence_idle_microseconds == 5000
        assert v.params["dynamic_batching"] is False


def test_disabled_search_measures_only_the_default():
    assert [v.name for v in space(search_disable=True).variants] == ["m_config_default"]


def test_brute_walks_every_variant_and_stops_when_throughput_flattens():
    s = space(max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4, 8, 16))
    strategy = BruteSearch(s, SearchGoal())
    history, curve = [], {1: 100.0, 2: 200.0, 4: 203.0, 8: 204.0, 16: 500.0}
    while True:
        trials = strategy.propose(history)
        if not trials:
            break
        t = trials[0]  # one lane measures the first; with more, both variants' walks go at once
        history.append(point(t, curve[int(t.load.value)]))
    # default and config_0 are different configs (dynamic batching): both walked; 16 is never
    # reached because 4 and 8 gained < 5% over 2.
    walked = [(m.variant, int(m.load_value)) for m in history]
    assert walked == [(v, c) for v in ("m_config_default", "m_config_0") for c in (1, 2, 4, 8)]


def test_brute_ends_a_walk_at_a_failed_point():
    s = space(search_disable=True, concurrency=(1, 2, 4))
    strategy = BruteSearch(s, SearchGoal())
    (t,) = strategy.propose([])
    assert strategy.propose([point(t, None, status="failed")]) == []


def run_strategy(strategy, surface, p99=None, metrics=None):
    """Drive a strategy to the end on a synthetic throughput surface; returns the history.

    ``p99`` and ``metrics`` take the same arguments as ``surface``; by default p99 in ms
    equals the concurrency (a budget of 8 ms caps it at 8) and there are no metrics. As one
    lane does, the first trial of each answer is measured, then the strategy is asked again."""
    history = []
    while trials := strategy.propose(history):
        for t in trials[:1]:
            at = (t.variant.params["instances"], t.variant.params["max_batch_size"], t.load.value, t.variant.is_default)
            m = point(t, surface(*at))
            m.latency_p99_ms = p99(*at) if p99 else t.load.value * 1.0
            m.metrics = dict(metrics(*at)) if metrics else {}
            m.server_batch_avg = m.metrics.pop("server_batch_avg", None)  # a field of its own, not a collected metric
            history.append(m)
    return history


def test_quick_climbs_to_the_peak_with_fewer_measurements_than_brute():
    from tsweep.plugins.search.quick import QuickSearch

    s = space(max_instance_count=4, min_model_batch_size=1, max_model_batch_size=32, concurrency=(1, 2, 4, 8, 16))

    def surface(instances, mbs, conc, is_default):  # peak at 3 instances, max_batch_size 8
        return 1000.0 / (1 + abs(instances - 3)) / (1 + abs(mbs.bit_length() - 4)) * min(conc, 8) / 8

    goal = SearchGoal(latency_budget_ms=8.0)
    quick = run_strategy(QuickSearch(s, goal), surface)
    brute = run_strategy(BruteSearch(s, goal), surface)

    def best(history):
        ok = [m for m in history if m.latency_p99_ms <= 8.0]
        top = max(ok, key=lambda m: m.throughput)
        return next(v for v in s.variants if v.name == top.variant).params

    assert best(quick) == best(brute) == {"instances": 3, "max_batch_size": 8, "dynamic_batching": True}
    assert len(quick) < 0.6 * len(brute)
    again = QuickSearch(s, goal)  # stateless: any prefix of the history replays to the same next trial
    assert [again.propose(quick[:i])[0].key for i in range(len(quick))] == [m.key for m in quick]
    assert again.propose(quick) == []


def test_walk_gain_must_beat_the_noise_not_just_five_percent():
    variant = space(search_disable=True, concurrency=(1, 2, 4, 8)).variants[0]

    def walk(thr, noise):
        pts = [point(Trial(variant, LoadLevel("concurrency", c)), t) for c, t in zip((1, 2, 4), thr)]
        for p in pts:
            p.throughput_ci = noise * p.throughput
        return pts

    judge = Judge()
    assert not walk_finished(walk([100, 101, 108], 0.01), judge, 0.05)  # +8%, each known to +-1%: a real gain
    assert walk_finished(walk([100, 101, 108], 0.06), judge, 0.05)  # +8%, but the difference is known only to +-8.8%
    assert walk_finished(walk([100, 101, 103], 0.0), judge, 0.05)  # exact, +3%: below Model Analyzer's 5%


# -- adaptive -------------------------------------------------------------------------


def adaptive(s, goal):
    from tsweep.plugins.search.adaptive import AdaptiveSearch

    return AdaptiveSearch(s, goal)


def best_params(s, history, budget):
    ok = [m for m in history if m.latency_p99_ms <= budget]
    top = max(ok, key=lambda m: m.throughput)
    return next(v for v in s.variants if v.name == top.variant).params, top


def test_adaptive_finds_brutes_best_with_under_a_third_of_its_measurements():
    s = space(max_instance_count=4, min_model_batch_size=1, max_model_batch_size=32, concurrency=(1, 2, 4, 8, 16, 32, 64))

    def surface(instances, mbs, conc, is_default):  # peak at 3 instances, max_batch_size 8
        return 1000.0 / (1 + abs(instances - 3)) / (1 + abs(mbs.bit_length() - 4)) * min(conc, 8) / 8

    goal = SearchGoal(latency_budget_ms=8.0)
    found = run_strategy(adaptive(s, goal), surface)
    brute = run_strategy(BruteSearch(s, goal), surface)
    assert best_params(s, found, 8.0)[0] == best_params(s, brute, 8.0)[0] == {"instances": 3, "max_batch_size": 8, "dynamic_batching": True}
    assert len(found) <= 0.3 * len(brute), (len(found), len(brute))
    again = adaptive(s, goal)  # stateless: any prefix of the history replays to the same next trial
    assert [again.propose(found[:i])[0].key for i in range(len(found))] == [m.key for m in found]
    assert again.propose(found) == []


def test_adaptive_finds_the_latency_budget_boundary_between_levels():
    s = space(search_disable=True, concurrency=(1, 2, 4, 8, 16, 32))
    history = run_strategy(adaptive(s, SearchGoal(latency_budget_ms=12.0)), lambda i, b, conc, d: 100.0 * conc)
    walked = [int(m.load_value) for m in history]
    # p99 = concurrency ms: 16 breaks the 12 ms budget; the line through (8, 8 ms) and
    # (16, 16 ms) crosses 12 ms at 12, which is inside, and nothing between 12 and 16 is
    # inside: one point instead of a bisection's two or three
    assert walked == [1, 2, 4, 8, 16, 12]
    assert best_params(s, history, 12.0)[1].load_value == 12

    # a convex p99 (queueing): the line undershoots, so each step lands inside the budget
    history = run_strategy(
        adaptive(s, SearchGoal(latency_budget_ms=12.0)), lambda i, b, conc, d: 100.0 * conc, p99=lambda i, b, conc, d: (conc / 4) ** 2
    )
    assert [int(m.load_value) for m in history] == [1, 2, 4, 8, 16, 13]  # the true boundary is 13.9


def test_adaptive_skips_variants_that_cannot_beat_the_best():
    s = space(max_instance_count=3, min_model_batch_size=1, max_model_batch_size=16, concurrency=(1, 2, 4, 8))

    def surface(instances, mbs, conc, is_default):  # CPU-bound: instances add nothing
        return 100.0 * min(mbs, 4) * min(conc, 4) / 4

    history = run_strategy(adaptive(s, SearchGoal()), surface)
    params = {v.name: v.params for v in s.variants if not v.is_default}
    measured = {(params[m.variant]["instances"], params[m.variant]["max_batch_size"]) for m in history if m.variant in params}
    # 1 instance: max_batch_size 1, 2, 4 gain, 8 does not -> stop. 2 instances: perfect scaling
    # of (1, 1) and (1, 2) cannot beat 400 by 5%, so they are skipped; (2, 4) and (2, 8) do
    # not beat 1 instance, so 3 instances are never tried.
    assert measured == {(1, 1), (1, 2), (1, 4), (1, 8), (2, 4), (2, 8)}


def test_adaptive_does_not_search_below_an_over_budget_point_that_cannot_win():
    s = space(max_instance_count=1, min_model_batch_size=4, max_model_batch_size=8, concurrency=(1, 2, 4, 8, 16, 32))
    throughput = {True: 100.0, 4: 50.0, 8: 60.0}  # per unit of concurrency: the default is best
    slowdown = {True: 1.0, 4: 1.0, 8: 2.0}  # p99 per unit of concurrency
    history = run_strategy(
        adaptive(s, SearchGoal(latency_budget_ms=12.0)),
        lambda i, mbs, conc, default: throughput[default or mbs] * conc,
        p99=lambda i, mbs, conc, default: slowdown[default or mbs] * conc,
    )
    by_variant = {}
    for m in history:
        by_variant.setdefault(m.variant, []).append(int(m.load_value))
    assert by_variant["m_config_default"] == [1, 2, 4, 8, 16, 12]  # best: 1200/s at 12
    # 16 breaks the budget at 800/s: below 1200, so nothing between 12 and 16 can win
    assert by_variant["m_config_0"] == [12, 16]
    # 12 breaks the budget at 720/s: lower loads carry less, so the walk does not go down
    assert by_variant["m_config_1"] == [12]


def test_adaptive_skips_more_instances_when_the_host_cpus_are_all_busy():
    s = space(max_instance_count=2, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4, 8))

    def instances_measured(host_busy):
        history = run_strategy(
            adaptive(s, SearchGoal()),
            lambda i, mbs, conc, default: 100.0 * min(conc, 4) * (0.5 if default else 1.0),
            metrics=lambda i, mbs, conc, default: {"host_cpu_utilization": host_busy},
        )
        params = {v.name: v.params for v in s.variants if not v.is_default}
        return sorted({params[m.variant]["instances"] for m in history if m.variant in params})

    # perfect scaling would allow 2 instances twice the throughput; cores 97% busy allow 3%
    assert instances_measured(97.0) == [1]
    assert instances_measured(50.0) == [1, 2]


def test_adaptive_stops_raising_load_on_a_saturated_variant_that_cannot_win():
    s = space(max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4, 8, 16, 32))

    def walked(batch_avg):
        history = run_strategy(
            adaptive(s, SearchGoal()),
            lambda i, mbs, conc, default: (100.0 if default else 50.0) * min(conc, 8),
            metrics=lambda i, mbs, conc, default: {"host_cpu_utilization": 99.0, "server_batch_avg": 1.0 if default else batch_avg},
        )
        return [int(m.load_value) for m in history if m.variant == "m_config_0"]

    # the default peaks at 800/s (concurrency 8); m_config_0 reads 400/s there with every core
    # busy and full batches of 4: more load cannot double it, so its walk is that one point
    assert walked(batch_avg=4.0) == [8]
    # batches of 2 can still grow with load (and get cheaper per inference): it walks on
    assert walked(batch_avg=2.0) == [8, 16, 32]


def test_adaptive_starts_a_batching_variant_where_its_batches_can_fill():
    s = space(max_instance_count=1, min_model_batch_size=8, max_model_batch_size=8, concurrency=(1, 2, 4, 8, 16, 32))
    unbatched = {1: 100.0, 2: 200.0, 4: 200.0, 8: 200.0, 16: 200.0, 32: 200.0}
    batched = {1: 100.0, 2: 150.0, 4: 140.0, 8: 145.0, 16: 600.0, 32: 900.0}  # flat until batches fill
    history = run_strategy(adaptive(s, SearchGoal()), lambda i, mbs, conc, default: (unbatched if default else batched)[int(conc)])
    walked = [int(m.load_value) for m in history if m.variant == "m_config_0"]
    # the best load so far is 2, but 1 instance x max_batch_size 8 needs 8 requests in flight
    # to fill a batch: from 2 the walk would read two flat steps and stop before 16
    assert walked == [8, 16, 32]
    assert best_params(s, history, 1e9)[1].throughput == 900.0


def test_adaptive_judges_each_batch_size_by_its_own_bound():
    s = space(max_instance_count=2, min_model_batch_size=2, max_model_batch_size=8, concurrency=(1, 2, 4))
    throughput = {(1, 2): 1000.0, (1, 4): 1000.0, (1, 8): 1000.0, (2, 2): 1500.0, (2, 4): 1500.0, (2, 8): 3000.0}
    history = run_strategy(
        adaptive(s, SearchGoal()),
        lambda i, mbs, conc, default: 500.0 if default else throughput.get((i, mbs), 0.0),
        metrics=lambda i, mbs, conc, default: {"host_cpu_utilization": 99.0 if mbs == 4 else 50.0},
    )
    params = {v.name: v.params for v in s.variants if not v.is_default}
    measured = {(params[m.variant]["instances"], params[m.variant]["max_batch_size"]) for m in history if m.variant in params}
    # (1, 4) did not beat (1, 2): 1 instance stops at 4. (2, 4) is skipped: (1, 4) kept every
    # core busy. That says nothing about (2, 8), which batches cheaper, and wins.
    assert measured == {(1, 2), (1, 4), (2, 2), (2, 8)}
    assert best_params(s, history, 1e9)[0]["max_batch_size"] == 8


def test_adaptive_starts_later_walks_at_the_best_load_so_far():
    s = space(max_instance_count=1, min_model_batch_size=4, max_model_batch_size=8, concurrency=(1, 2, 4, 8, 16))
    history = run_strategy(adaptive(s, SearchGoal()), lambda i, b, conc, d: 100.0 * min(conc, 4))
    by_variant = {}
    for m in history:
        by_variant.setdefault(m.variant, []).append(int(m.load_value))
    # from the lowest level, for the verdict; a flat step (8) gets one more level (16)
    assert by_variant["m_config_default"] == [1, 2, 4, 8, 16]
    assert by_variant["m_config_0"] == [4, 8, 16]  # from the best load so far, up until it is flat twice


def test_adaptive_walk_stops_at_once_when_throughput_falls():
    s = space(search_disable=True, concurrency=(1, 2, 4, 8, 16))
    history = run_strategy(adaptive(s, SearchGoal()), lambda i, b, conc, d: {1: 100.0, 2: 200.0, 4: 300.0, 8: 200.0, 16: 900.0}[int(conc)])
    assert [int(m.load_value) for m in history] == [1, 2, 4, 8]  # 8 fell clearly: overloaded, 16 is not tried


def test_adaptive_ends_a_walk_at_a_failed_point():
    s = space(search_disable=True, concurrency=(1, 2, 4))
    strategy = adaptive(s, SearchGoal())
    (t,) = strategy.propose([])
    assert strategy.propose([point(t, None, status="failed")]) == []


def test_strategies_walk_every_variant_that_shares_a_grid_point():
    """A manual space can hold several variants per (instances, max_batch_size)."""
    from tsweep.plugins.search.quick import QuickSearch
    from tsweep.records import ConfigSpace, Variant

    def variant(delay):
        config = modelconfig.parse(f"{CONFIG}")
        config.dynamic_batching.max_queue_delay_microseconds = delay
        return Variant(model="m", config=config)

    base = space(search_disable=True, concurrency=(1, 2))
    variants = tuple(name_variants("m", (base.variants[0], variant(0), variant(100), variant(500))))
    s = ConfigSpace(base.model, variants, base.load_levels)
    for strategy in (adaptive(s, SearchGoal()), QuickSearch(s, SearchGoal())):
        walked = {m.variant for m in run_strategy(strategy, lambda i, b, conc, d: 100.0 * conc)}
        assert walked == {"m_config_default", "m_config_0", "m_config_1", "m_config_2"}, type(strategy).__name__


def test_adaptive_counts_a_gain_only_beyond_the_drift_between_looks():
    from dataclasses import replace

    from tsweep.records import Trial as T

    s = space(search_disable=True, concurrency=(1, 2, 3))
    strategy = adaptive(s, SearchGoal())
    variant = s.variants[0]

    def at(conc, throughput, noise, repeat=0):
        p = point(T(variant, LoadLevel("concurrency", conc), repeat=repeat), throughput)
        p.throughput_ci = noise * throughput
        return p

    a, b = at(1, 100.0, 0.01), at(2, 115.0, 0.01)
    assert strategy.beats(b, a)  # two quiet points: +15% is a gain
    # points looked at twice on this machine moved by 20% between looks, far beyond their
    # +-1% windows: one look's +15% is not more than the machine's drift
    pairs = ((1, (90.0, 110.0)), (2, (100.0, 120.0)), (3, (130.0, 105.0)))
    looked = [at(c, v, 0.01, r) for c, pair in pairs for r, v in enumerate(pair)]
    strategy.judge = Judge.from_history(SearchGoal(), looked)
    assert strategy.judge.drift > 0.1
    assert not strategy.beats(b, a)
    assert strategy.beats(at(2, 190.0, 0.01), a)
    assert strategy.beats(replace(b, looks=100), replace(a, looks=100))  # many looks each


def looked_twice_run(second_look):
    """Default config at 4: 1000/s on the first look (+-10%), ``second_look`` on the
    second. The other variant reads 980/s at 4 over the budget (12 ms), 800/s at 3 inside it."""
    s = space(max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4, 8))
    figures = {
        ("m_config_default", 1, 0): (300.0, 1.0), ("m_config_default", 2, 0): (600.0, 2.0),
        ("m_config_default", 4, 0): (1000.0, 4.0), ("m_config_default", 4, 1): (second_look, 4.0),
        ("m_config_default", 8, 0): (1000.0, 20.0), ("m_config_0", 4, 0): (980.0, 12.0), ("m_config_0", 3, 0): (800.0, 6.0),
    }  # fmt: skip
    strategy, history = adaptive(s, SearchGoal(latency_budget_ms=10.0)), []
    while trials := strategy.propose(history):
        for t in trials:
            throughput, p99 = figures[(t.variant.name, int(t.load.value), t.repeat)]
            m = point(t, throughput)
            m.repeat, m.latency_p99_ms, m.throughput_ci = t.repeat, p99, 0.10 * m.throughput
            history.append(m)
    return [(m.variant, int(m.load_value), m.repeat) for m in history]


def test_adaptive_looks_twice_at_the_best_before_it_prunes_a_close_call():
    # 980/s over the budget could beat 1000/s only if the 1000 read high: a close call, so the
    # default's best gets a second look, after the other variant's point
    lucky = looked_twice_run(second_look=700.0)
    assert lucky.index(("m_config_default", 4, 1)) == lucky.index(("m_config_0", 4, 0)) + 1
    # the looks average 850/s: a lower load of the other variant may win, and is measured (at
    # 3, where latency in proportion to load meets the 10 ms budget)
    assert lucky[-1] == ("m_config_0", 3, 0)
    # confirmed (1000 and 1050/s, each +-10%: 1025 +-7% combined): nothing below an over-budget
    # 980/s can beat it by 5%; the walk ends there
    confirmed = looked_twice_run(second_look=1050.0)
    assert confirmed[-1] == ("m_config_default", 4, 1) and ("m_config_0", 3, 0) not in confirmed


def test_adaptive_walks_down_to_where_latency_scales_into_the_budget():
    s = space(max_instance_count=1, min_model_batch_size=16, max_model_batch_size=16, concurrency=(1, 2, 4, 8, 16, 32))
    history = run_strategy(
        adaptive(s, SearchGoal(latency_budget_ms=11.0)),
        lambda i, mbs, conc, default: 50.0 * min(conc, 4) if default else 100.0 * conc,
        p99=lambda i, mbs, conc, default: 1.0 if default else conc / 2.0,
    )
    walked = [int(m.load_value) for m in history if m.variant == "m_config_0"]
    # it starts at 16 (1 instance x max_batch_size 16 requests fill a batch): p99 8 ms inside,
    # then 32: 16 ms, over. The line through them meets 11 ms at 22: inside, and the end
    assert walked == [16, 32, 22]
    s = space(max_instance_count=1, min_model_batch_size=16, max_model_batch_size=16, concurrency=(1, 2, 4, 32))
    history = run_strategy(
        adaptive(s, SearchGoal(latency_budget_ms=10.0)),
        lambda i, mbs, conc, default: (10.0 if default else 100.0) * conc,
        p99=lambda i, mbs, conc, default: 1.0 if default else conc / 2.0,
    )
    # from 32 (16 ms, over): latency in proportion to concurrency meets 10 ms at 20 requests
    # in flight, so it goes there, not to the grid's next level below (4)
    assert [int(m.load_value) for m in history if m.variant == "m_config_0"][:2] == [32, 20]


def test_adaptive_keeps_more_instances_whose_sibling_was_only_tried_over_the_budget():
    s = space(max_instance_count=2, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4, 8))
    # the default is best at 8; (1, 4) is tried only there, over the budget, and cannot beat
    # it. That says nothing about 2 instances at 8, which halve the queue: measured, and best.
    history = run_strategy(
        adaptive(s, SearchGoal(latency_budget_ms=10.0)),
        lambda i, mbs, conc, default: (100.0 if default else 60.0 * i) * conc,
        p99=lambda i, mbs, conc, default: conc if default or i == 2 else 2.0 * conc,
    )
    assert best_params(s, history, 10.0)[0] == {"instances": 2, "max_batch_size": 4, "dynamic_batching": True}


def test_brute_stops_raising_max_batch_size_when_it_stops_improving():
    s = space(max_instance_count=2, min_model_batch_size=1, max_model_batch_size=16, concurrency=(1, 2))
    gain = {1: 100.0, 2: 200.0, 4: 205.0, 8: 900.0, 16: 900.0}  # 4 barely beats 2; 8 would win
    history = run_strategy(BruteSearch(s, SearchGoal()), lambda i, mbs, conc, default: gain[mbs] * i * conc)
    params = {v.name: v.params for v in s.variants if not v.is_default}
    measured = sorted({(params[m.variant]["instances"], params[m.variant]["max_batch_size"]) for m in history if m.variant in params})
    # Model Analyzer's rule, per instance count: 4 did not improve on 2, so 8 and 16 are not tried
    assert measured == [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4)]
    assert {m.variant for m in history} >= {"m_config_default"}


def test_adaptive_starts_no_higher_than_where_the_budget_is():
    s = space(max_instance_count=1, min_model_batch_size=16, max_model_batch_size=16, concurrency=(1, 2, 4, 8, 16, 32))
    history = run_strategy(
        adaptive(s, SearchGoal(latency_budget_ms=10.0)),
        lambda i, mbs, conc, default: 100.0 * min(conc, 2) if default else 90.0 * conc,
        p99=lambda i, mbs, conc, default: 2.5 * conc,
    )
    walked = [int(m.load_value) for m in history if m.variant == "m_config_0"]
    # the default's best is 200/s at 2 (p99 5 ms): the budget is near 4, so the batching
    # variant starts there, not at 16 where its batches would fill and p99 is 40 ms
    assert walked[0] == 4


def test_adaptive_compares_instance_counts_by_their_looks_combined():
    s = space(max_instance_count=3, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4))
    figures = {  # (variant, concurrency, look) -> (throughput, p99 ms); every point's noise is 10%
        ("m_config_default", 1, 0): (100.0, 1.0), ("m_config_default", 2, 0): (200.0, 2.0), ("m_config_default", 4, 0): (300.0, 4.0),
        ("m_config_0", 4, 0): (1000.0, 5.0), ("m_config_0", 4, 1): (600.0, 5.0),  # 1 instance: a lucky first look
        ("m_config_1", 4, 0): (1000.0, 12.0), ("m_config_1", 3, 0): (1100.0, 9.0),  # 2 instances
        ("m_config_2", 4, 0): (1200.0, 8.0),  # 3 instances
    }  # fmt: skip
    strategy, history = adaptive(s, SearchGoal(latency_budget_ms=10.0)), []
    while trials := strategy.propose(history):
        for t in trials:
            throughput, p99 = figures[(t.variant.name, int(t.load.value), t.repeat)]
            m = point(t, throughput)
            m.repeat, m.latency_p99_ms, m.throughput_ci = t.repeat, p99, 0.10 * m.throughput
            history.append(m)
    walked = [(m.variant, int(m.load_value), m.repeat) for m in history]
    # 2 instances' 1000/s over the budget is a close call against 1 instance's 1000/s: the
    # second look reads 600, so 1 instance counts 706 (two looks weighted by their intervals), which 2 instances' 1100
    # beats: 3 instances are tried. Against the first look alone, 1100 would not count as a gain.
    assert ("m_config_0", 4, 1) in walked
    assert walked[-1] == ("m_config_2", 4, 0)


def test_a_variant_reads_its_coordinates_from_its_config():
    """Strategies move on typed coordinates read from the config, so a third-party space
    cannot make them disagree with what the server loads; display text is derived."""
    from tsweep.plugins.search.grid import coord
    import pytest

    from tsweep.records import Coordinates, Variant

    text = "max_batch_size: 8 instance_group [{count: 2, kind: KIND_CPU}, {kind: KIND_CPU}] dynamic_batching {max_queue_delay_microseconds: 100}"
    v = Variant("m", modelconfig.parse(text), {"dynamic_batching.max_queue_delay_microseconds": 100})
    assert v.coordinates == Coordinates(3, "KIND_CPU", 8, True, (("dynamic_batching.max_queue_delay_microseconds", 100),))
    assert v.params == {"instances": 3, "max_batch_size": 8, "dynamic_batching": True, "dynamic_batching.max_queue_delay_microseconds": 100}
    assert coord(v) == (3, 8)
    mixed = Variant("m", modelconfig.parse("instance_group [{kind: KIND_CPU}, {kind: KIND_GPU}]"))
    assert (mixed.coordinates.kind, mixed.coordinates.instances, mixed.coordinates.max_batch_size) == ("mixed", 2, 0)
    assert Variant("m", modelconfig.parse("")).coordinates == Coordinates(1, "KIND_AUTO", 0, False)
    with pytest.raises(ValueError, match="must not repeat 'instances': it is read from the config"):
        Variant("m", modelconfig.parse(text), {"instances": 2})


# -- Model Analyzer's search keys ------------------------------------------------------


def test_a_disabled_search_with_no_listed_load_measures_level_1_as_model_analyzer_does():
    assert [str(l) for l in space(search_disable=True).load_levels] == ["concurrency=1"]
    assert [str(l) for l in space(search_disable=True, request_rate_search=True).load_levels] == ["request_rate=1"]
    assert [str(l) for l in space(search_disable=True, concurrency=(2, 8)).load_levels] == ["concurrency=2", "concurrency=8"]


def test_request_rate_search_walks_powers_of_two_between_the_rate_bounds():
    s = space(max_instance_count=1, request_rate_search=True, min_request_rate=16, max_request_rate=100)
    assert [str(l) for l in s.load_levels] == ["request_rate=16", "request_rate=32", "request_rate=64"]
    listed = space(max_instance_count=1, request_rate_search=True, request_rate=(5.0, 10.0))
    assert [str(l) for l in listed.load_levels] == ["request_rate=5", "request_rate=10"]


def test_exhaustive_measures_every_listed_point_where_brute_exits_early():
    from tsweep.plugins.search.exhaustive import ExhaustiveSearch

    s = space(max_instance_count=2, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4, 8), batch_sizes=(1, 2))
    flat = lambda i, b, conc, d: 100.0  # noqa: E731  # brute ends every walk after three flat levels
    every = run_strategy(ExhaustiveSearch(s, SearchGoal()), flat)
    expected = [(v.name, batch, float(c)) for v in s.variants for batch in (1, 2) for c in (1, 2, 4, 8)]
    assert [(m.variant, m.batch_size, m.load_value) for m in every] == expected
    assert len(run_strategy(BruteSearch(s, SearchGoal()), flat)) < len(every)


def test_exhaustive_ends_a_walk_at_a_failed_point_only():
    from tsweep.plugins.search.exhaustive import ExhaustiveSearch

    s = space(max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4))
    strategy, history = ExhaustiveSearch(s, SearchGoal()), []
    while trials := strategy.propose(history):
        t = trials[0]  # as one lane measures: the first of the answer
        failed = t.variant.is_default and t.load.value == 2
        history.append(point(t, None if failed else 100.0, status="failed" if failed else "ok"))
    assert [(m.variant, int(m.load_value)) for m in history] == [
        ("m_config_default", 1), ("m_config_default", 2), ("m_config_0", 1), ("m_config_0", 2), ("m_config_0", 4),
    ]  # fmt: skip


def test_adaptive_bisects_for_at_most_max_binary_search_steps():
    from tsweep.plugins.search.adaptive import AdaptiveSearch

    s = space(search_disable=True, concurrency=(1, 100))

    def walked(steps):
        strategy = AdaptiveSearch(s, SearchGoal(latency_budget_ms=40.0), max_bisect_steps=steps)
        history = run_strategy(strategy, lambda i, b, conc, d: 100.0 * conc, p99=lambda i, b, conc, d: (conc / 10) ** 2)
        return [int(m.load_value) for m in history]

    # p99 = (c/10)^2 ms: the budget of 40 ms is crossed at 63; each step lands inside it
    assert walked(5) == [1, 100, 40, 57]  # then the bracket (57, 100) is within the 25% resolution
    assert walked(1) == [1, 100, 40]
