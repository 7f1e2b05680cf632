"""Config loading: precedence, coercion and the one-line errors for bad input."""
from pathlib import Path

import pytest

from tsweep.config import Config, load_config, option_fields
from tsweep.errors import UsageError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_then_file_then_flags(tmp_path):
    path = write(tmp_path, "latency_budget: 20\nconcurrency: [1, 2]\nprofile_models: a,b\n")
    config = load_config(path, {"latency_budget": 5.0, "model_repository": "m"})
    assert config.latency_budget == 5.0  # flag beats file
    assert config.concurrency == (1, 2)
    assert config.profile_models == ("a", "b")
    assert config.checkpoint_directory == "./checkpoints"  # default kept


def test_cli_strings_are_coerced():
    config = load_config(None, {"concurrency": "1,4,16", "override_output_model_repository": "true", "measurement_window_s": "0.5"})
    assert config.concurrency == (1, 4, 16)
    assert config.override_output_model_repository is True
    assert config.measurement_window_s == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("latency_budet: 10\n", "unknown config key 'latency_budet' in {path}: did you mean 'latency_budget'?"),
        ("zzz_qqq: 1\n", "unknown config key 'zzz_qqq' in {path}: see docs/config.md for the valid keys"),
        ("concurrency: [1, two]\n", "config key 'concurrency' must be a list of integers, got [1, 'two']"),
        ("latency_budget: -3\n", "config key 'latency_budget' must be greater than 0, got -3.0"),
        ("latency_budget: fast\n", "config key 'latency_budget' must be a number, got 'fast'"),
        ("run_config_search_min_concurrency: 8\nrun_config_search_max_concurrency: 2\n",
         "run_config_search_min_concurrency (8) is greater than run_config_search_max_concurrency (2): swap or fix them"),
        ("- a\n- b\n", "config file {path} must be a mapping of keys to values, not list"),
        ("objectives: 3\n", "config key 'objectives' must be a mapping, got 3"),
    ],
)  # fmt: skip
def test_bad_config_is_one_clear_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert str(err.value) == message.format(path=path)
    assert "\n" not in str(err.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "latency_budget: 10\nobjectives: {perf_throughput: 1\n")
    with pytest.raises(UsageError, match=r"^malformed YAML in .*c\.yaml line \d+, column \d+: .*; fix the file's syntax$"):
        load_config(path, {})


def test_every_flag_has_help():
    for command in ("profile", "analyze", "report"):
        for f in option_fields(command):
            assert f.metadata["help"].endswith("."), f.name
    assert Config().objectives == {"throughput": 1.0}
