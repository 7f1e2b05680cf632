"""Bad input through the real CLI: one clear line, exit code 2, nothing written."""
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep, tree
from tsweep.pluginmanager import make_plugin_manager


def profile_args(repo, *extra):
    return ["profile", "--model-repository", str(repo), "--profile-models", "mlp", "--output-model-repository-path", "out", *extra]


CASES = [
    ("missing repository", lambda t: profile_args(t / "nope"), "error: model repository {t}/nope does not exist or is not a folder: check --model-repository"),
    ("empty repository", lambda t: profile_args(t / "empty"), "error: model repository {t}/empty is empty: it needs one folder per model, each with a config.pbtxt"),
    ("unknown model", lambda t: ["profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "resnet"],
     f"error: model 'resnet' is not in {MODEL_REPOSITORY}: choose from accumulator, add_sub, bls_mlp, mlp, pipeline, preprocess"),
    ("malformed yaml", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "bad.yaml")),
     "error: malformed YAML in {t}/bad.yaml line 3, column 6: could not find expected ':'; fix the file's syntax"),
    ("unknown key", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "typo.yaml")),
     "error: unknown config key 'latency_budgett' in {t}/typo.yaml: did you mean 'latency_budget'?"),
    ("no tritonserver", lambda t: profile_args(MODEL_REPOSITORY),
     "error: no tritonserver found (not on PATH, embedded server not installed): pip install 'tsweep[server]' for the embedded server, or pass --triton-server-path"),
    ("bad server path", lambda t: profile_args(MODEL_REPOSITORY, "--triton-server-path", str(t / "bin" / "tritonserver")),
     "error: --triton-server-path {t}/bin/tritonserver is not an executable file: give the tritonserver binary"),
    ("foreign output repository", lambda t: profile_args(MODEL_REPOSITORY, "--output-model-repository-path", str(t / "taken")),
     "error: output model repository {t}/taken already exists: pass --override-output-model-repository to replace it or choose another path"),
    ("unknown launch mode", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "k8s"),
     "error: unknown launch mode (--triton-launch-mode) 'k8s': choose one of docker, local, remote"),
    # The real Docker SDK with no engine behind DOCKER_HOST: caught by the launcher's preflight.
    ("docker without engine", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "docker"),
     "error: no Docker engine reachable at unix://{t}/no-docker.sock: start Docker or choose --triton-launch-mode local"),
    ("docker sdk missing", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "docker"),
     "error: docker launch mode needs the Docker SDK: pip install 'tsweep[docker]'"),
    ("remote without endpoint", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "remote"),
     "error: remote launch mode needs the server's address: pass --triton-http-endpoint HOST:PORT"),
    ("model too big to send to a remote server", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "remote", "--triton-http-endpoint", "127.0.0.1:1", "--remote-load-max-mb", "0.001"),
     "error: model 'mlp' has 0.00125 MB of files to send with each variant, over remote_load_max_mb (0.001): raise --remote-load-max-mb, "
     "or put the model in the server's repository and pass --remote-model-loading config"),
    ("reload_model_disable with a server tsweep starts", lambda t: profile_args(MODEL_REPOSITORY, "--reload-model-disable"),
     "error: reload_model_disable measures a model on a server you run, but launch mode local starts one: pass --triton-launch-mode remote, or drop reload_model_disable"),
    ("negative budget", lambda t: profile_args(MODEL_REPOSITORY, "--latency-budget", "-5"),
     "error: config key 'latency_budget' must be greater than 0, got -5.0"),
    ("unknown mode", lambda t: profile_args(MODEL_REPOSITORY, "--mode", "batch"),
     "error: config key 'mode' must be one of online, offline, got 'batch'"),
    ("report unmeasured config", lambda t: ["report", "--report-model-configs", "mlp_config_9", "--checkpoint-directory", str(t / "ck")],
     "error: no results store at {t}/ck/results.sqlite: run 'tsweep profile' first or point --checkpoint-directory at its folder"),
    ("wrong type", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "types.yaml")),
     "error: config key 'measurement_window_s' must be a number, got 'fast'"),
    ("zero bound", lambda t: profile_args(MODEL_REPOSITORY, "--run-config-search-max-instance-count", "0"),
     "error: config key 'run_config_search_max_instance_count' must be greater than 0, got 0"),
    ("min above max", lambda t: profile_args(MODEL_REPOSITORY, "--run-config-search-min-model-batch-size", "64", "--run-config-search-max-model-batch-size", "8"),
     "error: run_config_search_min_model_batch_size (64) is greater than run_config_search_max_model_batch_size (8): swap or fix them"),
    ("unknown objective", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "objective.yaml")),
     "error: unknown objective metric 'speed': choose from {metrics}"),
    ("unknown constraint", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "constraint.yaml")),
     "error: unknown constraint metric 'latency': choose from {metrics}"),
    ("non-numeric weight", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "weight.yaml")),
     "error: objective 'perf_throughput' needs a numeric weight, got 'high'"),
    ("model without config.pbtxt", lambda t: ["profile", "--model-repository", str(t / "models"), "--profile-models", "noconfig"],
     "error: model 'noconfig' has no config.pbtxt in {t}/models/noconfig: tsweep needs the model's config file"),
    ("invalid config.pbtxt", lambda t: ["profile", "--model-repository", str(t / "models"), "--profile-models", "badconfig"],
     "error: invalid model config {t}/models/badconfig/config.pbtxt: 1:17 : 'max_batch_size: banana': Couldn't parse integer: banana; fix the file or remove the field"),
    ("path traversal in model name", lambda t: profile_args(MODEL_REPOSITORY, "--profile-models", "../models"),
     f"error: invalid model name '../models': use the name of a folder in {MODEL_REPOSITORY}"),
    ("concurrency and request rate", lambda t: profile_args(MODEL_REPOSITORY, "--concurrency", "4", "--request-rate", "100"),
     "error: request_rate and concurrency both set: choose open loop (request_rate) or closed loop (concurrency)"),
    ("unreadable input data", lambda t: profile_args(MODEL_REPOSITORY, "--input-data", str(t / "missing.json")),
     "error: cannot read input data file {t}/missing.json: No such file or directory"),
    ("shape not matching the model", lambda t: profile_args(MODEL_REPOSITORY, "--shape", "INPUT:16"),
     "error: shape [16] does not fit input 'INPUT' of model 'mlp' with dims [256]"),
    ("a model's own shape not matching it", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "own.yaml")),
     "error: shape [16] does not fit input 'INPUT' of model 'mlp' with dims [256]"),
    ("a model version the model lacks", lambda t: profile_args(MODEL_REPOSITORY, "--model-version", "7"),
     "error: model 'mlp' has no version '7': its version folders are 1"),
    ("a header tsweep sets itself", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "header.yaml")),
     "error: header 'Content-Length' is set by tsweep itself for every request: remove it from the headers"),
    ("a header that is not Name: Value", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "badheader.yaml")),
     "error: invalid header 'token abc': write 'Name: Value' on one line"),
    ("a bad line in the request intervals", lambda t: profile_args(MODEL_REPOSITORY, "--request-intervals", str(t / "gaps.txt")),
     "error: request_intervals: line 2 of {t}/gaps.txt is '5 ms', not a gap in microseconds: write one number >= 0 per line"),
    ("a sequence model flag", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "sequence.yaml")),
     "error: sequence settings (sequence_length, sequence_id_range, serial_sequences, ...) given for model 'mlp', whose config has no sequence_batching: remove them, or profile a stateful model"),
    ("shape of an unknown input", lambda t: profile_args(MODEL_REPOSITORY, "--shape", "IMAGE:3,224,224"),
     "error: shape given for unknown input 'IMAGE' of model 'mlp': its inputs are INPUT"),
    ("min windows above max", lambda t: profile_args(MODEL_REPOSITORY, "--min-windows", "5", "--max-windows", "4"),
     "error: min_windows (5) must not exceed max_windows (4)"),
    ("unknown search mode", lambda t: profile_args(MODEL_REPOSITORY, "--run-config-search-mode", "smart"),
     "error: unknown search strategy (run_config_search_mode) 'smart': choose one of adaptive, brute, exhaustive, optuna, quick"),
    ("unknown client protocol", lambda t: profile_args(MODEL_REPOSITORY, "--client-protocol", "smtp"),
     "error: unknown client protocol (client_protocol) 'smtp': choose one of grpc, http"),
    ("error fraction above 1", lambda t: profile_args(MODEL_REPOSITORY, "--max-error-fraction", "1.5"),
     "error: config key 'max_error_fraction' must be between 0 and 1, got 1.5"),
    ("flag injection into tritonserver", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "inject.yaml")),
     "error: tritonserver flag 'model-repository' is set by tsweep itself: remove it from triton_server_flags"),
    ("bad flag name for tritonserver", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "flagname.yaml")),
     "error: invalid tritonserver flag name 'log-verbose=1 --model-repository' in triton_server_flags: use names like 'log-verbose'"),
    ("report for a config never measured", lambda t: ["report", "--report-model-configs", "mlp_config_9", "--checkpoint-directory", str(t / "store")],
     "error: config 'mlp_config_9' was never measured: measured configs are mlp_config_0"),
    # pynvml replaced by a stand-in that sees two GPUs (no GPU here; see test_bad_input)
    ("a GPU the machine lacks", lambda t: profile_args(MODEL_REPOSITORY, "--gpus", "0,5"),
     "error: gpus names '5', which is not a GPU of this machine: NVML sees 0 (GPU-a), 1 (GPU-b); use all, none, or those indices/UUIDs"),
    ("GPUs chosen through the server's environment", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "cuda.yaml")),
     "error: CUDA_VISIBLE_DEVICES in triton_server_environment: choose the server's GPUs with the gpus key instead"),
    ("unknown executor", lambda t: profile_args(MODEL_REPOSITORY, "--executor", "k8s"),
     "error: unknown executor (--executor) 'k8s': choose one of {executors}"),
    ("local executor with several lanes", lambda t: profile_args(MODEL_REPOSITORY, "--lanes", "2"),
     "error: executor local measures on one lane (this process's one server), not 2: use --executor ray for several lanes, or drop lanes"),
    ("lanes elsewhere with models profiled together", lambda t: profile_args(MODEL_REPOSITORY, "--executor", "ray", "--run-config-profile-models-concurrently-enable"),
     "error: run_config_profile_models_concurrently_enable is not supported with executor ray yet: use executor local, or drop the key"),
    ("analyze a model not in the store", lambda t: ["analyze", "-f", str(t / "resnet.yaml"), "--checkpoint-directory", str(t / "store")],
     "error: model 'resnet' has no results in {t}/store/results.sqlite: stored models are mlp"),
]  # fmt: skip


#: The few NVML calls that resolving ``gpus`` makes, answered for two GPUs.
NVML_STAND_IN = """
class NVMLError(Exception):
    pass
UUIDS = ["GPU-a", "GPU-b"]
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return len(UUIDS)
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetUUID(handle): return UUIDS[handle]
"""


def known_metrics():
    from tsweep.analysis import known_metrics
    from tsweep.pluginmanager import make_plugin_manager

    return known_metrics(make_plugin_manager().metric_infos())


def store_with_one_point(path: Path) -> None:
    """A real results store holding one measured point of mlp_config_0."""
    from tsweep import modelconfig
    from tsweep.records import Measurement, Variant
    from tsweep.store import ResultsStore

    variant = Variant("mlp", modelconfig.parse('name: "mlp" max_batch_size: 4'), {}, name="mlp_config_0")
    with ResultsStore.open(path) as store:
        store.add_variant(variant)
        store.add(Measurement(model="mlp", variant=variant.name, variant_digest=variant.digest, load_kind="concurrency",
                              load_value=1.0, batch_size=1, status="ok", throughput=10.0, latency_p99_ms=1.0))  # fmt: skip


def test_the_table_covers_at_least_25_kinds_of_bad_input():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name, args, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, workdir: Path, name, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("latency_budget: 10\nobjectives\n  - x: [\n")
    (tmp_path / "typo.yaml").write_text("latency_budgett: 10\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("someone else's")
    (tmp_path / "types.yaml").write_text("measurement_window_s: fast\n")
    (tmp_path / "header.yaml").write_text("perf_analyzer_flags: {H: 'Content-Length: 5'}\n")
    (tmp_path / "badheader.yaml").write_text("http_headers: token abc\n")
    (tmp_path / "gaps.txt").write_text("1000\n5 ms\n")
    (tmp_path / "sequence.yaml").write_text("perf_analyzer_flags: {sequence-length: 20}\n")
    (tmp_path / "own.yaml").write_text("profile_models:\n  mlp:\n    perf_analyzer_flags: {shape: 'INPUT:16'}\n")
    (tmp_path / "resnet.yaml").write_text("profile_models: resnet\n")
    (tmp_path / "objective.yaml").write_text("objectives:\n  speed: 1\n")
    (tmp_path / "constraint.yaml").write_text("constraints:\n  latency: {max: 5}\n")
    (tmp_path / "weight.yaml").write_text("objectives:\n  perf_throughput: high\n")
    (tmp_path / "inject.yaml").write_text("triton_server_flags:\n  model-repository: /etc\n")
    (tmp_path / "cuda.yaml").write_text("triton_server_environment:\n  CUDA_VISIBLE_DEVICES: '1'\n")
    (tmp_path / "flagname.yaml").write_text("triton_server_flags:\n  'log-verbose=1 --model-repository': /etc\n")
    (tmp_path / "models" / "noconfig" / "1").mkdir(parents=True)
    (tmp_path / "models" / "badconfig").mkdir()
    (tmp_path / "models" / "badconfig" / "config.pbtxt").write_text("max_batch_size: banana\n")
    store_with_one_point(tmp_path / "store" / "results.sqlite")
    env = {}
    if name == "no tritonserver":
        # Hide the embedded server (the narrowest boundary: its package fails to import)
        # and keep PATH free of any tritonserver.
        shadow = tmp_path / "shadow" / "pytriton"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env = {"PYTHONPATH": str(shadow.parent), "PATH": "/usr/bin:/bin"}
    if name == "docker without engine":
        env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    if name == "docker sdk missing":  # as without the [docker] extra: the package fails to import
        shadow = tmp_path / "shadow" / "docker"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env = {"PYTHONPATH": str(shadow.parent)}
    if name == "a GPU the machine lacks":  # NVML's boundary: a pynvml module that sees two GPUs
        shadow = tmp_path / "shadow"
        shadow.mkdir()
        (shadow / "pynvml.py").write_text(NVML_STAND_IN)
        env = {"PYTHONPATH": str(shadow)}
    before = tree(tmp_path)
    result = run_tsweep(*args(tmp_path), cwd=workdir, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    executors = ", ".join(sorted(make_plugin_manager().executors()))
    assert result.stderr.strip() == message.format(t=tmp_path, metrics=", ".join(sorted(known_metrics().rankable())), executors=executors)
    assert tree(tmp_path) == before  # nothing written anywhere (workdir included)
