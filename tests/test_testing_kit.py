"""tsweep.testing, the plugin authors' test kit, used the way they use it: fixtures by name."""
from __future__ import annotations

import sqlite3

import pytest

from tsweep import repository
from tsweep.plugin import hookimpl
from tsweep.testing import ServerProbe

from tests.support import install_fake_distribution

THIRD_PARTY = """
from tsweep.plugin import hookimpl

@hookimpl
def tsweep_rankers():
    return {"third_party": object()}
"""


class KeepsWhatItIsGiven:
    """A reporter that replaces the built-in csv one and keeps the ranking it was handed."""

    def __init__(self):
        self.ranking = None

    def write(self, measurements, ranking, export_dir, context):
        self.ranking = list(ranking)
        return []

    @hookimpl
    def tsweep_reporters(self):
        return {"csv": self}


def test_inline_plugins_are_registered_last_and_win(tsweep_hooks):
    plugin = KeepsWhatItIsGiven()
    hooks = tsweep_hooks(plugin)
    assert hooks.reporters()["csv"] is plugin
    assert [s.origin for s in hooks.sources][-1] == "inline" and {s.origin for s in hooks.sources} == {"builtin", "inline"}


@pytest.mark.parametrize("autoload", [False, True])
def test_autoload_of_installed_plugins_is_the_test_s_choice(tsweep_hooks, tmp_path, monkeypatch, autoload):
    install_fake_distribution(tmp_path, "tsweep_third", {"tsweep_third": THIRD_PARTY}, {"third": "tsweep_third"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ("third_party" in tsweep_hooks(autoload=autoload).rankers()) is autoload


def test_the_model_repository_is_one_tsweep_accepts(tsweep_model_repository):
    (model,) = repository.find_models(str(tsweep_model_repository), ["identity"])
    assert model.config.max_batch_size == 8 and model.config.backend == "python"


@pytest.mark.server
def test_a_small_real_sweep(tsweep_sweep):
    probe, reporter = ServerProbe(), KeepsWhatItIsGiven()
    result = tsweep_sweep(probe, reporter)
    assert result.outcome.measured == 1 and result.outcome.store_path == result.store_path
    (row,) = sqlite3.connect(result.store_path).execute("SELECT variant, throughput FROM measurements").fetchall()
    assert row[0] == "identity_config_default" and row[1] > 0
    assert [r.variant for r in reporter.ranking] == ["identity_config_default"]
    assert probe.process.exe.endswith("/tritonserver") and "Started HTTPService" in result.log_path.read_text()
    assert (result.output_repository / "identity_config_default" / "config.pbtxt").is_file()


class IdleClock:
    """A collector that records when it is started and stopped (time.monotonic())."""

    def __init__(self):
        self.spans = []

    def describe(self):
        return ()

    def start(self):
        import time

        self.spans.append([time.monotonic()])

    def stop(self, since):
        import time

        self.spans[-1].append(time.monotonic())
        return {}

    @hookimpl
    def tsweep_metric_collectors(self):
        return [self]


@pytest.mark.server
def test_duration_seconds_is_how_long_the_idle_server_is_sampled(tsweep_sweep):
    clock = IdleClock()
    result = tsweep_sweep(clock, duration_seconds=0.8, monitoring_interval=0.1)
    assert result.outcome.measured == 1
    first_start, first_stop = clock.spans[0]  # the baseline comes first, before any model loads
    assert first_stop - first_start >= 0.8
    assert len(clock.spans) >= 2  # and the point's own sample after it


@pytest.mark.server
def test_perf_output_writes_one_block_per_stored_point(tsweep_sweep, tmp_path):
    """Model Analyzer's perf_output / perf_output_path: tsweep's load log, one block per point."""
    log = tmp_path / "logs" / "load.log"
    result = tsweep_sweep(perf_output=True, perf_output_path=str(log))
    with sqlite3.connect(result.store_path) as conn:
        stored = conn.execute("SELECT variant, load_kind, load_value, windows FROM measurements").fetchall()
    text = log.read_text()
    heads = [line for line in text.splitlines() if line.startswith("*** ")]
    assert len(heads) == len(stored) == 1
    variant, kind, value, windows = stored[0]
    assert heads[0].startswith(f"*** {variant} {kind}={value:g} batch 1 look 1: ") and f", {windows} windows," in heads[0]
    assert len(text.splitlines()[1].split(":", 1)[1].split()) == windows  # each judged window's throughput
