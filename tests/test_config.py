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
        ("request_rate_search_enable: true\nconcurrency: 1,2\n",
         "request_rate_search_enable searches request rates, but concurrency lists concurrencies: drop one of them"),
        ("run_config_search_min_request_rate: 64\nrun_config_search_max_request_rate: 32\n",
         "run_config_search_min_request_rate (64) is greater than run_config_search_max_request_rate (32): swap or fix them"),
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


def test_model_analyzer_ranges_and_comma_strings(tmp_path):
    """{start, stop, step} as Model Analyzer expands it (stop only when on a step), globally
    and per model; comma strings and lists as before."""
    text = (
        "concurrency: {start: 2, stop: 64, step: 8}\n"
        "batch_sizes: {start: 4, stop: 9}\n"
        "profile_models:\n"
        "  mlp:\n"
        "    parameters:\n"
        "      concurrency: {start: 1, stop: 4}\n"
        "      batch_sizes: 1,2,3\n"
        "      request_rate: {start: 50, stop: 125.5, step: 25}\n"
    )
    config = load_config(write(tmp_path, text), {})
    assert config.concurrency == (2, 10, 18, 26, 34, 42, 50, 58)
    assert config.batch_sizes == (4, 5, 6, 7, 8, 9)
    own = config.per_model["mlp"]["parameters"]
    assert own == {"concurrency": (1, 2, 3, 4), "batch_sizes": (1, 2, 3), "request_rate": (50.0, 75.0, 100.0, 125.0)}
    assert load_config(write(tmp_path, "request_rate: '10, 20'\n"), {}).request_rate == (10.0, 20.0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("concurrency: {start: 8, stop: 2}\n", "config key 'concurrency': a range needs start <= stop and a step > 0, got {'start': 8, 'stop': 2}"),
        ("batch_sizes: {begin: 1, stop: 2}\n", "config key 'batch_sizes': a range is {start, stop} with an optional step, got keys ['begin', 'stop']"),
        ("concurrency: {start: 1, stop: 8, step: 0}\n", "config key 'concurrency': a range needs start <= stop and a step > 0, got {'start': 1, 'stop': 8, 'step': 0}"),
        ("genai_perf_flags: {tokenizer: gpt2}\n",
         "genai-perf flag 'tokenizer' is not supported: tsweep understands streaming, synthetic-input-tokens-mean, synthetic-input-tokens-stddev, "
         "output-tokens-mean, output-tokens-stddev, input-file, random-seed, concurrency, request-rate"),
        ("triton_gpus: [all]\n", "config key 'triton_gpus' in {path} is gone: Model Analyzer's gpus now chooses the GPUs, for the server in every launch mode and for the metrics: use gpus"),
        ("perf_analyzer_paht: /x\n", "unknown config key 'perf_analyzer_paht' in {path}: did you mean 'perf_analyzer_path'?"),
    ],
)  # fmt: skip
def test_model_analyzer_keys_tsweep_refuses_are_one_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert str(err.value) == message.replace("{path}", str(path))


def test_model_analyzer_keys_without_effect_load_with_one_warning_each(tmp_path):
    from tsweep.config import ConfigWarning

    path = write(tmp_path, "perf_analyzer_path: /usr/bin/perf_analyzer\ndcgm_disable: true\nlatency_budget: 10\n")
    with pytest.warns(ConfigWarning) as caught:
        config = load_config(path, {})
    assert config.latency_budget == 10.0
    assert [str(w.message) for w in caught] == [
        f"config key 'perf_analyzer_path' in {path} has no effect in tsweep: tsweep has no perf_analyzer: its load generator is built in",
        f"config key 'dcgm_disable' in {path} has no effect in tsweep: tsweep reads GPUs through NVML, not DCGM",
    ]


def test_objectives_as_a_list_weigh_equally(tmp_path):
    config = load_config(write(tmp_path, "objectives:\n  - perf_latency_p99\n  - perf_throughput\n"), {})
    assert config.objectives == {"perf_latency_p99": 1.0, "perf_throughput": 1.0}
    assert load_config(write(tmp_path, "objectives: {perf_latency_p99: 2, perf_throughput: 3}\n"), {}).objectives == {
        "perf_latency_p99": 2.0, "perf_throughput": 3.0}  # fmt: skip


def test_every_model_analyzer_key_has_one_treatment():
    """The compatibility tables name only Model Analyzer's keys, each at most once, and
    never refuse or ignore a key tsweep reads."""
    from tsweep import compat
    from tsweep.config import FIELDS
    from tsweep.pluginmanager import make_plugin_manager

    ours = set(FIELDS) | {k.name for k in make_plugin_manager().config_keys()}  # the built-in plugins' keys too
    keys = set(compat.MODEL_ANALYZER_KEYS)
    assert len(keys) == len(compat.MODEL_ANALYZER_KEYS)
    tables = [compat.DIFFERENT, compat.RENAMED, compat.IGNORED, compat.REFUSED]
    named = [k for table in tables for k in table]
    assert set(named) <= keys and len(named) == len(set(named))
    assert not (set(compat.IGNORED) | set(compat.REFUSED) | set(compat.RENAMED)) & ours
    unaccounted = [k for k in keys if compat.treatment(k, ours).note == "tsweep does not have it"]
    assert unaccounted == [], "give these a treatment in tsweep.compat"


def test_a_models_own_perf_analyzer_flags_set_its_load(tmp_path):
    """The tutorial's pattern: per-model shape (and input data, request distribution) in
    perf_analyzer_flags, over the global ones for that model only."""
    from tsweep.run import Run
    from tsweep.pluginmanager import make_plugin_manager

    text = (
        "perf_analyzer_flags: {shape: 'INPUT:256', request-distribution: poisson}\n"
        "profile_models:\n"
        "  mlp:\n"
        "    perf_analyzer_flags:\n"
        "      shape: [INPUT:256]\n"
        "      input-data: zero\n"
        "  add_sub: {}\n"
    )
    config = load_config(write(tmp_path, text), {"model_repository": "m"})
    sweeping = Run.build(config, make_plugin_manager(autoload=False), sweep=True).profiling()
    mlp, other = sweeping.load_of("mlp"), sweeping.load_of("add_sub")
    assert (mlp.shapes, mlp.input_data, mlp.distribution) == ({"INPUT": (256,)}, "zero", "poisson")
    assert (other.input_data, other.distribution) == ("random", "poisson") and other == sweeping.load


@pytest.mark.parametrize(
    "flags, message",
    [
        ("{max-trials: 4}", "perf_analyzer flag 'max-trials' of model 'mlp' applies to the whole run: set it in the top-level perf_analyzer_flags"),
        ("{request-distribution: gamma}", "config key 'request_distribution' must be one of constant, poisson, got 'gamma'"),
        ("{percentil: 95}", "perf_analyzer flag 'percentil' is not supported: tsweep understands "),
    ],
)  # fmt: skip
def test_bad_per_model_perf_analyzer_flags_are_one_line(tmp_path, flags, message):
    path = write(tmp_path, f"profile_models:\n  mlp:\n    perf_analyzer_flags: {flags}\n")
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_cpu_only_models_get_cpu_instances_where_a_gpu_is_visible(tmp_path, monkeypatch):
    """profile_models.<model>.cpu_only, as Model Analyzer documents it: that model's generated
    variants use KIND_CPU instances while the others use the GPU (GPU presence faked at the
    one function that asks NVML; no GPU here)."""
    from tsweep import gpus, repository
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.settings import space_settings

    from tests.support import MODEL_REPOSITORY

    monkeypatch.setattr(gpus, "select", lambda spec: ("GPU-a",))  # the run has a GPU
    config = load_config(write(tmp_path, "profile_models:\n  mlp: {cpu_only: true}\n  add_sub: {}\n"), {})
    hooks = make_plugin_manager(autoload=False)
    kinds = {}
    for model in repository.find_models(str(MODEL_REPOSITORY), ("mlp", "add_sub")):
        space = hooks.config_space(model, space_settings(config, model.name))
        kinds[model.name] = {v.coordinates.kind for v in space.variants if not v.is_default}
    assert kinds == {"mlp": {"KIND_CPU"}, "add_sub": {"KIND_GPU"}}
    with pytest.raises(UsageError, match="config key 'cpu_only of mlp' must be true or false, got 'maybe'"):
        load_config(write(tmp_path, "profile_models:\n  mlp: {cpu_only: maybe}\n"), {})


def test_triton_output_path_names_the_server_log(tmp_path):
    from tsweep.settings import launch_settings

    config = load_config(write(tmp_path, "triton_output_path: /tmp/x/triton.log\n"), {})
    assert launch_settings(config, tmp_path).server_log == Path("/tmp/x/triton.log")
    assert launch_settings(load_config(None, {}), tmp_path).server_log == Path("./checkpoints/tritonserver.log")


def test_string_flags_and_their_per_model_override(tmp_path):
    from tsweep.settings import load_settings

    text = "perf_analyzer_flags: {string-length: 16}\nprofile_models:\n  mlp:\n    perf_analyzer_flags: {string-data: hi}\n  add_sub: {}\n"
    config = load_config(write(tmp_path, text), {})
    assert (load_settings(config, "add_sub").string_length, load_settings(config, "add_sub").string_data) == (16, None)
    assert (load_settings(config, "mlp").string_length, load_settings(config, "mlp").string_data) == (16, "hi")
    with pytest.raises(UsageError, match="config key 'string_length' must be greater than 0, got 0"):
        load_config(write(tmp_path, "perf_analyzer_flags: {string-length: 0}\n"), {})


@pytest.mark.parametrize(
    "given, mode",
    [
        ({}, "adaptive"),
        ({"run_config_search_disable": True}, "exhaustive"),  # the listed grid, as listed
        ({"run_config_search_disable": True, "early_exit_enable": True}, "brute"),
        ({"run_config_search_disable": True, "run_config_search_mode": "quick"}, "quick"),
        ({"run_config_search_mode": "brute"}, "brute"),
    ],
)  # fmt: skip
def test_the_search_strategy_follows_model_analyzers_choice_for_a_listed_grid(given, mode):
    from tsweep.settings import search_mode

    assert search_mode(load_config(None, dict(given))) == mode


def test_a_models_own_server_settings_join_the_one_server_of_the_run(tmp_path):
    path = write(tmp_path, (
        "triton_server_flags: {log_verbose: 0, exit_timeout_secs: 30}\n"
        "triton_server_environment: {A: global}\n"
        "profile_models:\n"
        "  add_sub:\n"
        "    triton_server_flags: {log_verbose: 1}\n"
        "    triton_server_environment: {B: mine}\n"
        "  mlp:\n"
        "    triton_server_flags: {exit_timeout_secs: 120}\n"
        "    triton_docker_labels: {team: vision}\n"
    ))  # fmt: skip
    config = load_config(path, {})
    assert config.triton_server_flags == {"log_verbose": 1, "exit_timeout_secs": 120}  # the models' values win
    assert config.triton_server_environment == {"A": "global", "B": "mine"}
    assert config.triton_docker_labels == {"team": "vision"}


def test_two_models_asking_different_server_flags_is_one_line(tmp_path):
    path = write(tmp_path, "profile_models:\n  a:\n    triton_server_flags: {log_verbose: 1}\n  b:\n    triton_server_flags: {log_verbose: 2}\n")
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert str(err.value) == (
        "triton_server_flags 'log_verbose' is 1 for 'a' but 2 for 'b', and one server runs every model of a run: profile them in separate runs"
    )


def test_a_models_weighting_is_kept_for_profiling_together_and_genai_flags_mapped(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # weighting counts now (models profiled together): no warning
        config = load_config(write(tmp_path, "profile_models:\n  a:\n    weighting: 3\n"), {})
    assert config.per_model["a"]["weighting"] == 3
    with pytest.raises(UsageError, match=r"^config key 'weighting of a' must be greater than 0"):
        load_config(write(tmp_path, "profile_models:\n  a:\n    weighting: 0\n"), {})
    config = load_config(write(tmp_path, "profile_models:\n  a:\n    genai_perf_flags: {streaming: true, output-tokens-mean: 32}\n"), {})
    assert config.per_model["a"]["load"] == {"streaming": True, "output_tokens_mean": 32}
    with pytest.raises(UsageError, match=r"^genai-perf flag 'concurrency' of model 'a' sets its load levels: use parameters"):
        load_config(write(tmp_path, "profile_models:\n  a:\n    genai_perf_flags: {concurrency: 4}\n"), {})


def test_a_models_own_tls_flags_describe_the_one_server(tmp_path):
    """Model Analyzer's examples give ssl flags per model; they describe the run's one server."""
    cert = tmp_path / "ca.pem"
    cert.write_text("not read at load time for gRPC\n")
    path = write(tmp_path, (
        "profile_models:\n"
        "  a:\n"
        "    perf_analyzer_flags: {ssl-grpc-use-ssl: true, ssl-grpc-root-certifications-file: " + str(cert) + "}\n"
        "  b:\n"
        "    perf_analyzer_flags: {ssl-grpc-use-ssl: true}\n"
    ))  # fmt: skip
    config = load_config(path, {})
    assert config.grpc_use_ssl is True and config.grpc_root_certificates == str(cert)
    clash = write(tmp_path, "profile_models:\n  a:\n    perf_analyzer_flags: {ssl-grpc-use-ssl: true}\n  b:\n    perf_analyzer_flags: {ssl-grpc-use-ssl: false}\n")
    with pytest.raises(UsageError, match=r"^grpc_use_ssl is True for 'a' but False for 'b', and one server runs every model of a run"):
        load_config(clash, {})
