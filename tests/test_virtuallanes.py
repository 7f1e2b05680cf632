"""The virtual-clock lane pool of the scale-out simulation, on schedules worked out by hand."""
import dataclasses

import pytest

from tsweep import modelconfig
from tsweep.lanes import LanePool
from tsweep.records import LoadLevel, Measurement, ModelSpec, Trial, Variant
from tsweep.virtuallanes import Replay, VirtualLanePool, load_time_s

ONE = modelconfig.parse('name: "m" backend: "python" max_batch_size: 4 instance_group [{count: 1 kind: KIND_CPU}]')
TWO = modelconfig.parse('name: "m" backend: "python" max_batch_size: 4 instance_group [{count: 2 kind: KIND_CPU}]')
A, B = Variant("m", ONE, name="m_config_0"), Variant("m", TWO, name="m_config_1")
MODEL = ModelSpec("m", None, ONE)
TWO_DIGEST = B.digest


def stored(variant, concurrency, duration_s, throughput=100.0):
    return Measurement(
        model="m", variant=variant.name, variant_digest=variant.digest, load_kind="concurrency", load_value=concurrency,
        batch_size=1, status="ok", throughput=throughput, latency_p99_ms=1.0, duration_s=duration_s,
    )  # fmt: skip


def trial(variant, concurrency):
    return Trial(variant, LoadLevel("concurrency", concurrency))


ROWS = [stored(A, 1, 2.0), stored(B, 1, 3.0), stored(A, 2, 4.0, throughput=180.0)]


def frozen():  # a driver that costs nothing: the schedule alone sets the clock
    return 0.0


def test_the_pool_speaks_the_lane_protocol():
    assert isinstance(VirtualLanePool(1, Replay(ROWS), load_s=0.0), LanePool)


def test_wall_time_of_a_known_two_lane_schedule():
    pool = VirtualLanePool(2, Replay(ROWS), load_s=1.0, start_s=5.0, driver_clock=frozen)
    assert [lane.name for lane in pool.start()] == ["lane 1", "lane 2"]
    pool.submit("lane 1", MODEL, trial(A, 1), None)  # load 1 + 2 s: ends at 8
    pool.submit("lane 2", MODEL, trial(B, 1), None)  # load 1 + 3 s: ends at 9
    assert pool.idle() == []
    first = pool.wait()
    assert [(f.lane, f.measurement.load_value) for f in first] == [("lane 1", 1.0)] and pool.clock.now == 8.0
    assert pool.loaded("lane 1") == A.digest
    pool.submit("lane 1", MODEL, trial(A, 2), None)  # A is loaded there: 4 s, ends at 12
    assert [f.lane for f in pool.wait()] == ["lane 2"] and pool.clock.now == 9.0
    last = pool.wait()
    assert last[0].measurement.throughput == 180.0 and pool.clock.now == 12.0
    assert pool.wait() == []
    pool.stop()
    assert pool.wall_s() == 12.0
    assert pool.points_per_lane() == {"lane 1": 2, "lane 2": 1}
    assert pool.spans == {"m": [5.0, 12.0]}  # the model's first trial sent, its last result
    # 11 s busy (2 loads, 9 s measuring) of 2 lanes x 7 s after start-up
    assert pool.utilisation() == pytest.approx(11.0 / 14.0)


def test_the_drivers_real_time_goes_on_the_virtual_clock():
    ticks = iter(range(0, 100))  # each look at the driver's clock: one more second of driver work
    pool = VirtualLanePool(1, Replay(ROWS), load_s=0.0, driver_clock=lambda: float(next(ticks)))
    pool.start()  # driver clock 0
    pool.submit("lane 1", MODEL, trial(A, 1), None)  # 1 s of deciding, then 2 s measuring: ends at 3
    pool.wait()  # 1 s more of driver work, while the lane measured: still ends at 3
    assert pool.clock.now == 3.0
    assert pool.driver_s == 2.0
    pool.submit("lane 1", MODEL, trial(A, 2), None)  # deciding from 3 to 4, measuring 4 s: ends at 8
    pool.wait()
    assert pool.clock.now == 8.0 and pool.wall_s() == 8.0


def test_a_copied_model_replays_its_sources_points_under_its_own_name():
    copy = dataclasses.replace(A, model="m_07", name="m_07_config_0", config=TWO)  # another digest, mapped back to A's
    replay = Replay(ROWS, source_of=lambda model, digest: ("m", A.digest))
    m = replay.of(trial(copy, 2))
    assert (m.model, m.variant, m.variant_digest, m.throughput, m.duration_s) == ("m_07", "m_07_config_0", TWO_DIGEST, 180.0, 4.0)
    assert m.key == trial(copy, 2).key  # stored under the copy's own point


def test_an_unstored_load_takes_the_nearest_stored_one_and_an_unstored_variant_fails():
    replay = Replay(ROWS)
    near = replay.of(trial(A, 3))  # A was stored at 1 and 2: 2 is nearer
    assert (near.load_value, near.throughput) == (3.0, 180.0)
    other = Variant("m", modelconfig.parse('name: "m" backend: "python" max_batch_size: 8'), name="m_config_2")
    assert replay.of(trial(other, 1)).status == "failed"
    assert (replay.exact, replay.nearest, replay.missing) == (0, 1, 1)


def test_a_busy_lane_takes_no_second_point():
    pool = VirtualLanePool(1, Replay(ROWS), load_s=0.0, driver_clock=frozen)
    pool.start()
    pool.submit("lane 1", MODEL, trial(A, 1), None)
    with pytest.raises(RuntimeError, match="in flight"):
        pool.submit("lane 1", MODEL, trial(B, 1), None)


def test_the_load_time_is_what_a_trial_on_a_new_variant_spends_beyond_one_on_a_loaded_one():
    trials = [  # set-up beyond measuring: 2.1 and 1.9 s on a new variant, 0.1 s on a loaded one
        {"digest": "a", "duration_s": 3.0, "wall_s": 5.1},
        {"digest": "a", "duration_s": 2.0, "wall_s": 2.1},
        {"digest": "b", "duration_s": 2.0, "wall_s": 3.9},
        {"digest": "b", "duration_s": 4.0, "wall_s": 4.1},
    ]
    found = load_time_s(trials)
    assert found["load_s"] == pytest.approx(1.9) and found["per_trial_overhead_s"] == pytest.approx(0.1)
    assert (found["loads"], found["others"]) == (2, 2)
