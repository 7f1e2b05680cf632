"""The user's configuration: one schema, read from a YAML file and CLI flags, validated once.

:class:`Config` is the single source of truth: each field's metadata gives its help text,
whether it is a CLI flag and for which subcommands. The CLI builds its options from it and
the docs' config reference is generated from it. Precedence: defaults < YAML file < flags.

Keys and flags follow Model Analyzer's names where the meaning is the same, so an existing
``-f config.yaml`` mostly works; docs/config.md lists the differences.
"""
from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import yaml

from tsweep import compat, gpus, requestintervals, tls
from tsweep.configvalues import ConfigKey, KeyRule, as_float, as_int, check, coerce, expand_range, split, type_name
from tsweep.errors import UsageError

PROFILE, ANALYZE, REPORT = "profile", "analyze", "report"
#: The Triton release whose server nvidia-pytriton embeds (2.51), for docker mode.
DOCKER_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
ALL = (PROFILE, ANALYZE, REPORT)
#: The executor that measures in this process, on one lane (tsweep.plugins.executors.local).
LOCAL_EXECUTOR = "local"


def _opt(default: Any, help: str, commands: Iterable[str] = (PROFILE,), flag: bool = True, short: str = "", **extra: Any) -> Any:
    meta = {"help": help, "commands": tuple(commands), "flag": flag, "short": short, **extra}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    """Every setting of a tsweep run. Field metadata drives the CLI and the docs."""

    # what to profile -----------------------------------------------------------------
    model_repository: Optional[str] = _opt(None, "Folder of models to profile (Triton model repository layout).")
    profile_models: Tuple[str, ...] = _opt((), "Models to profile, comma-separated (names of folders in the model repository).", kind="list_str")
    ensemble_composing_models: Dict[str, Any] = _opt({}, "Settings of an ensemble's composing models (found from its steps), as {name: {model_config_parameters: ...}}; a list of names is accepted. docs/ensembles-and-bls.md.", flag=False)
    bls_composing_models: Dict[str, Any] = _opt({}, "The models a BLS model calls by name, searched with it: a list of names, or {name: {model_config_parameters: ...}}. docs/ensembles-and-bls.md.", flag=False)
    cpu_only_composing_models: Tuple[str, ...] = _opt((), "Composing models whose generated variants use CPU instances only, comma-separated.", kind="list_str")

    # the server ----------------------------------------------------------------------
    triton_launch_mode: str = _opt("local", "How to get a Triton server: local (start one), docker (start a container; pip install 'tsweep[docker]') or remote (attach); plugins add more.")
    triton_server_path: Optional[str] = _opt(None, "tritonserver binary for local mode; default: PATH, then the embedded one (pip install 'tsweep[server]').")
    triton_http_endpoint: Optional[str] = _opt(None, "HTTP endpoint host:port of the server (remote mode; https://host:port for a server behind a TLS proxy); in local mode, pins the HTTP port (default: a free one).")
    triton_grpc_endpoint: Optional[str] = _opt(None, "gRPC endpoint host:port of the server (remote mode); in local mode, pins the gRPC port.")
    triton_metrics_url: Optional[str] = _opt(None, "Prometheus metrics URL of the server (remote mode); in local mode, pins the metrics port.")
    triton_bind_address: str = _opt("127.0.0.1", "Address a started tritonserver listens on. Anything but 127.0.0.1 exposes it to the network; tsweep logs it.")
    triton_server_flags: Dict[str, Any] = _opt({}, "Extra tritonserver flags for local and docker modes, as {flag: value}.", flag=False)
    triton_server_environment: Dict[str, Any] = _opt({}, "Extra environment variables of the server in local and docker modes, as {NAME: value}.", flag=False)
    triton_docker_image: str = _opt(DOCKER_IMAGE, "Triton image for docker mode; the default is the release of the embedded server (Triton 2.51).")
    gpus: Tuple[str, ...] = _opt(("all",), "GPUs of the run: all, none, or NVML indices (as nvidia-smi numbers them) or UUIDs, comma-separated. Only these reach the server (CUDA_VISIBLE_DEVICES; in docker mode also the container's GPUs) and only these are measured; remote mode: only measured.", kind="list_str")
    triton_docker_shm_size: Optional[str] = _opt("1g", "Size of /dev/shm in docker mode (the python backend's tensors travel through it; Docker's own default is 64m).")
    triton_docker_mounts: Tuple[str, ...] = _opt((), "More volumes for docker mode, as host:container[:ro|rw] strings (the model repositories are mounted already).", flag=False, kind="list_str")
    triton_docker_labels: Dict[str, Any] = _opt({}, "Labels of the container in docker mode, as {name: value}, besides tsweep's own.", flag=False)
    triton_docker_args: Dict[str, Any] = _opt({}, "More arguments of the container's run call in docker mode, as {name: value} in the Docker SDK's names (e.g. cpuset_cpus, mem_limit); those tsweep sets itself are refused.", flag=False)
    triton_launch_options: Dict[str, Any] = _opt({}, "Options of a launch mode that a plugin adds, as {key: value}: see the plugin's documentation.", flag=False)
    triton_output_path: Optional[str] = _opt(None, "File the server's log is written to in local and docker modes; default: <checkpoint_directory>/tritonserver.log.")
    reload_model_disable: bool = _opt(False, "Remote mode: measure the server's model as it is, under the model's own name; tsweep neither loads nor unloads it, so only the default config is measured.")
    remote_model_loading: str = _opt(
        "files",
        "Remote mode: what each load request carries. files: the variant's config and the model's files, loaded under the variant's name (the server needs no copy of the model); "
        "config: only the config, and the server reloads the model of the same name from its own repository with it (docs/remote.md).",
        choices=("files", "config"),
    )
    remote_load_max_mb: float = _opt(256.0, "Remote mode, remote_model_loading files: most MB of model files one load request may carry.", kind="positive")
    executor: str = _opt(LOCAL_EXECUTOR, "Where trials are measured: local (this process, one server) or, with pip install 'tsweep[ray]', ray (one lane per Ray actor, each with a server of its own; docs/scale-out.md); plugins add more.")
    lanes: int = _opt(0, "How many lanes (servers measuring at once) the executor runs; 0: as many as the cluster can give (ray), one for local, which has only one.", kind="count")
    cluster_address: Optional[str] = _opt(None, "The cluster the executor runs on: for ray, local or empty (a private Ray cluster on 127.0.0.1 for this run), host:port, auto, or ray://host:10001.")
    server_ready_timeout_s: float = _opt(120.0, "Seconds to wait for the server (and each model) to become ready.", kind="positive")

    # outputs -------------------------------------------------------------------------
    output_model_repository_path: str = _opt("./output_model_repository", "Where the generated model variants are written and served from; in remote mode, where each variant's config.pbtxt is kept as a record.")
    override_output_model_repository: bool = _opt(False, "Replace the output model repository if it exists.")
    checkpoint_directory: str = _opt("./checkpoints", "Folder of the SQLite results store (the checkpoint).", commands=ALL)
    export_path: str = _opt(".", "Folder under which results/ (CSV) and reports/ are written.", commands=ALL, short="-e")

    # what is best --------------------------------------------------------------------
    latency_budget: Optional[float] = _opt(None, "Constraint: p99 latency at most this many ms.", commands=(PROFILE, ANALYZE), kind="positive")
    min_throughput: Optional[float] = _opt(None, "Constraint: throughput at least this many inferences/s.", commands=(PROFILE, ANALYZE), kind="positive")
    objectives: Dict[str, float] = _opt({"throughput": 1.0}, "Metrics to optimize, as {metric: weight}, or a list of metrics (equal weights).", commands=(PROFILE, ANALYZE), flag=False)
    constraints: Dict[str, Dict[str, float]] = _opt({}, "Bounds, as {metric: {min: x, max: y}}.", commands=(PROFILE, ANALYZE), flag=False)
    ranker: str = _opt("objectives", "Ranker plugin that orders the configs.", commands=(PROFILE, ANALYZE), flag=False)
    mode: str = _opt(
        "online",
        "What the reports focus on: online (latency: throughput vs p99 latency, the latency budget) or offline "
        "(throughput: throughput vs load, the minimum throughput). Ranking maximizes the objectives in both.",
        commands=ALL, choices=("online", "offline"),
    )  # no short flag: Model Analyzer's -m is --model-repository
    num_configs_per_model: int = _opt(3, "How many top configs per model to show and report.", commands=(PROFILE, ANALYZE), kind="positive")
    num_top_model_configs: int = _opt(0, "Also rank all models' configs together and show this many (0: off).", commands=(PROFILE, ANALYZE), kind="count")
    reporters: Tuple[str, ...] = _opt((), "Reporter plugins to run (default: all installed).", commands=ALL, flag=False, kind="list_str")
    inference_output_fields: Tuple[str, ...] = _opt(
        (), "Columns of metrics-model-inference.csv and of the console ranking, as Model Analyzer's field tags, comma-separated "
        "(docs/reports.md); default: tsweep's columns.", commands=ALL, kind="list_str",
    )  # fmt: skip
    gpu_output_fields: Tuple[str, ...] = _opt(
        (), "Columns of metrics-model-gpu.csv, as Model Analyzer's field tags, comma-separated; default: tsweep's columns.",
        commands=ALL, kind="list_str",
    )  # fmt: skip
    server_output_fields: Tuple[str, ...] = _opt(
        (), "Columns of metrics-server-only.csv, as Model Analyzer's field tags, comma-separated; default: tsweep's columns.",
        commands=ALL, kind="list_str",
    )  # fmt: skip
    plots: Dict[str, Any] = _opt(
        {},
        "Charts of the summary and detailed reports, as {name: {title, x_axis, y_axis, monotonic}} with Model Analyzer's "
        "metric tags (docs/reports.md); default: tsweep's charts.",
        commands=ALL, flag=False,
    )  # fmt: skip

    # the search space ----------------------------------------------------------------
    run_config_search_mode: Optional[str] = _opt(
        None,
        "Search strategy plugin: adaptive (measures only where the answer can be; docs/search.md), brute (everything, early exits), "
        "quick (hill-climbing), exhaustive (every listed point, as listed) or optuna (Model Analyzer's optuna mode: a seeded TPE study); "
        "plugins add more. Default: adaptive, or exhaustive under run_config_search_disable (brute with early_exit_enable).",
    )
    run_config_search_disable: bool = _opt(False, "No automatic ranges: measure the model's own config (or the model_config_parameters variants) at the listed loads only (concurrency 1 if none are listed).")
    run_config_profile_models_concurrently_enable: bool = _opt(
        False,
        "Profile the listed models together: one variant of each loaded at once, each model under its own load in the same "
        "windows; the search walks combinations (adaptive, quick or brute; docs/multi-model.md), weighted by each model's weighting.",
    )
    early_exit_enable: bool = _opt(False, "Under run_config_search_disable, let the search skip listed points that cannot win (brute's early exits) instead of measuring all of them.")
    run_config_search_min_instance_count: int = _opt(1, "Fewest model instances to try.", kind="positive")
    run_config_search_max_instance_count: int = _opt(5, "Most model instances to try.", kind="positive")
    run_config_search_min_model_batch_size: int = _opt(1, "Smallest max_batch_size to try (powers of two).", kind="positive")
    run_config_search_max_model_batch_size: int = _opt(128, "Largest max_batch_size to try (powers of two).", kind="positive")
    run_config_search_min_concurrency: int = _opt(1, "Lowest concurrency to try (powers of two).", kind="positive")
    run_config_search_max_concurrency: int = _opt(1024, "Highest concurrency to try (powers of two).", kind="positive")
    request_rate_search_enable: bool = _opt(False, "Search request rates (open loop) instead of concurrency: powers of two between the request-rate bounds.")
    run_config_search_min_request_rate: int = _opt(16, "Lowest request rate (requests/s) request_rate_search_enable tries (powers of two).", kind="positive")
    run_config_search_max_request_rate: int = _opt(8092, "Highest request rate (requests/s) request_rate_search_enable tries (Model Analyzer's default, 8092).", kind="positive")
    concurrency: Tuple[int, ...] = _opt((), "Exact concurrency levels to measure, comma-separated or {start, stop, step} in the file (replaces the range).", kind="list_int")
    batch_sizes: Tuple[int, ...] = _opt((1,), "Client batch sizes, comma-separated or {start, stop, step} in the file.", kind="list_int")
    remeasure_top_configs: int = _opt(3, "The final race: after the search, the leader and up to this many minus one challengers the Judge cannot yet rank below it are measured again, interleaved, until separated (0 or 1: no race).", kind="count")
    remeasure_rounds: int = _opt(3, "The final race: at most this many more looks at each contender.", kind="count")

    # load and measurement --------------------------------------------------------------
    client_protocol: str = _opt("http", "Load generator, by the protocol a plugin offers it under: http (native, fastest) or grpc (tritonclient) built in.")
    request_rate: Tuple[float, ...] = _opt((), "Open loop: request rates (requests/s) to measure, comma-separated or {start, stop, step} in the file (replaces concurrency).", kind="list_float")
    model_version: Optional[str] = _opt(None, "Model version the requests name (perf_analyzer's --model-version); default: whichever the server's version policy serves.")
    http_headers: Tuple[str, ...] = _opt((), "Extra request headers as 'Name: Value' (perf_analyzer's -H), sent with every request; several in the file as a list.", flag=False, kind="list_text")
    string_length: int = _opt(128, "Length of the random strings in BYTES inputs (perf_analyzer's --string-length).", kind="positive")
    string_data: Optional[str] = _opt(None, "A string to put in every BYTES input element instead of random ones (perf_analyzer's --string-data).")
    request_distribution: str = _opt("constant", "Open loop: spacing of sends, constant or poisson.", choices=("constant", "poisson"))
    sequence_length: Optional[int] = _opt(None, "Stateful models: requests per sequence (perf_analyzer's --sequence-length; default 20). A model with sequence_batching is always sent sequences; docs/sequence-models.md.", flag=False, kind="positive")
    sequence_length_variation: Optional[float] = _opt(None, "Stateful models: a sequence's length varies uniformly by this percent either way (--sequence-length-variation; default 20).", flag=False, kind="count")
    sequence_id_range: Optional[str] = _opt(None, "Stateful models: the sequence ids, 'start:end' or 'start' (--sequence-id-range; default from 1 up); an id is reused only after its sequence ended.", flag=False)
    serial_sequences: bool = _opt(False, "Stateful models: a sequence's next request waits for its previous answer (--serial-sequences); accepted for perf_analyzer's sake, tsweep's loads always do (docs/sequence-models.md).", flag=False)
    num_of_sequences: Optional[int] = _opt(None, "Stateful models, open loop: sequences in flight at once (--num-of-sequences; default 4); a closed loop has one per concurrency slot.", flag=False, kind="positive")
    request_intervals: Optional[str] = _opt(None, "Open loop: a file of gaps between sends, one per line in microseconds (perf_analyzer's --request-intervals), cycled through; replaces request_rate and request_distribution.")
    percentile: int = _opt(99, "Latency percentile the latency budget and perf_latency constraints and objectives read: 50, 90, 95 or 99 (perf_analyzer's --percentile).", commands=(PROFILE, ANALYZE), choices=(50, 90, 95, 99))
    shape: Tuple[str, ...] = _opt((), "Shapes of variable-size inputs, as NAME:d1,d2 (space-separated for several).", kind="list_shape")
    input_data: str = _opt("random", "Request data: random, zero, or a JSON file in perf_analyzer's input-data format.")
    http_encoding: str = _opt("binary", "HTTP request encoding: binary (tensor extension) or json.", choices=("binary", "json"))
    request_timeout_s: float = _opt(30.0, "A request taking longer than this counts as an error.", kind="positive")
    max_error_fraction: float = _opt(0.01, "A point whose failed requests exceed this fraction is recorded as failed (its figures kept).", kind="fraction")
    measurement_window_s: float = _opt(1.0, "Length of one measurement window in seconds (a window with too few responses is extended).", kind="positive")
    measurement_mode: str = _opt("time_windows", "time_windows: a window lasts measurement_window_s (extended while it has fewer than measurement_request_count responses); count_windows: a window ends once it holds measurement_request_count responses.", choices=("time_windows", "count_windows"))
    measurement_request_count: Optional[int] = _opt(None, "Responses a window must hold (default 50): the least in time windows, the count that ends a count window.", kind="positive")
    throughput_precision: float = _opt(0.05, "A point ends when its throughput's 95% confidence interval is this narrow (relative half-width) and its p99's is within latency_precision.", kind="positive")
    latency_precision: float = _opt(0.10, "Relative half-width of the p99 latency's 95% confidence interval a point must reach.", kind="positive")
    min_windows: int = _opt(3, "Fewest windows per point (an interval needs a few).", kind="positive")
    max_windows: int = _opt(10, "Most windows per look at a point; a look that reaches it first is kept as unstable, with its wider intervals, and where a decision is close the final race looks again.", kind="positive")
    monitoring_interval: float = _opt(1.0, "Seconds between two samples of the metric collectors (GPU, Triton metrics, server process).", kind="positive")
    duration_seconds: Optional[float] = _opt(None, "Seconds the idle server's baseline (server-only metrics) is sampled for, before any model loads; default: one monitoring_interval.", kind="positive")
    perf_output: bool = _opt(False, "Write the load log: one block per measured point (its windows and figures) to perf_output_path, or to stderr without one.")
    perf_output_path: Optional[str] = _opt(None, "File the load log (perf_output) is appended to.")
    shared_memory: str = _opt("none", "Tensors through Triton's system shared memory (perf_analyzer's --shared-memory): none or system; the server must share this host's /dev/shm (local mode, or triton_server_on_this_host).", choices=("none", "system"))
    output_shared_memory_size: int = _opt(102400, "Bytes of the shared memory region of each output when shared_memory is system (perf_analyzer's --output-shared-memory-size).", kind="positive")
    triton_server_on_this_host: bool = _opt(False, "Remote mode: the server runs on this machine and sees its /dev/shm, so shared_memory system can work.")
    grpc_use_ssl: bool = _opt(False, "gRPC through TLS (perf_analyzer's --ssl-grpc-use-ssl).", flag=False)
    grpc_root_certificates: Optional[str] = _opt(None, "PEM file of the CA that signed the gRPC server's certificate (--ssl-grpc-root-certifications-file).", flag=False)
    grpc_private_key: Optional[str] = _opt(None, "PEM file of the client's private key, for mutual TLS over gRPC (--ssl-grpc-private-key-file).", flag=False)
    grpc_certificate_chain: Optional[str] = _opt(None, "PEM file of the client's certificate chain, for mutual TLS over gRPC (--ssl-grpc-certificate-chain-file).", flag=False)
    https_verify_peer: int = _opt(1, "HTTPS: check the server's certificate against the CA, 1 or 0 (--ssl-https-verify-peer). HTTPS is used when triton_http_endpoint is https://HOST:PORT (remote mode).", flag=False, kind="count")
    https_verify_host: int = _opt(2, "HTTPS: check that the certificate names the host, 0 (off), 1 or 2 (on) (--ssl-https-verify-host).", flag=False, kind="count")
    https_ca_certificates_file: Optional[str] = _opt(None, "HTTPS: PEM file of the CAs to trust (--ssl-https-ca-certificates-file); default: the system's.", flag=False)
    https_client_certificate_file: Optional[str] = _opt(None, "HTTPS: PEM file of the client's certificate, for mutual TLS (--ssl-https-client-certificate-file).", flag=False)
    https_private_key_file: Optional[str] = _opt(None, "HTTPS: PEM file of the client's private key, for mutual TLS (--ssl-https-private-key-file).", flag=False)
    https_client_certificate_type: str = _opt("PEM", "HTTPS: format of the client's certificate; PEM only (--ssl-https-client-certificate-type).", flag=False)
    https_private_key_type: str = _opt("PEM", "HTTPS: format of the client's private key; PEM only (--ssl-https-private-key-type).", flag=False)
    perf_analyzer_flags: Dict[str, Any] = _opt({}, "Load options in perf_analyzer's names, mapped onto the keys above (see below).", flag=False)

    # filled from the mapping form of profile_models, not a key of its own
    per_model: Dict[str, Dict[str, Any]] = _opt({}, "Per-model settings from the mapping form of profile_models.", flag=False, internal=True)
    # the values of the keys plugins declare (tsweep_config_keys), defaults filled in
    plugin_options: Dict[str, Any] = _opt({}, "Values of the config keys installed plugins declare.", flag=False, internal=True)

    # report --------------------------------------------------------------------------
    report_model_configs: Tuple[str, ...] = _opt(
        (), "Configs to write detailed reports for, comma-separated; in the file also {config: {plots: ...}}, charts of its own.",
        commands=(REPORT,), kind="list_str",
    )  # fmt: skip
    complete_load_curves: bool = _opt(
        False, "Before reporting, measure each config at the load levels its search skipped (the concurrency or request_rate "
        "list, else every level its model was measured at), against a server started as profile would; those points are "
        "marked as measured later.", commands=(REPORT,),
    )  # fmt: skip
    # filled from the mapping form of report_model_configs, not a key of its own
    report_plots: Dict[str, Any] = _opt({}, "Per-config plots from the mapping form of report_model_configs.", flag=False, internal=True)

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_directory) / "results.sqlite"


#: Model Analyzer's metric names, accepted in objectives, constraints, plots and output fields.
METRIC_ALIASES = {
    "perf_throughput": "throughput",
    "perf_latency": "latency_p99_ms",
    "perf_latency_avg": "latency_avg_ms",
    "perf_latency_p90": "latency_p90_ms",
    "perf_latency_p95": "latency_p95_ms",
    "perf_latency_p99": "latency_p99_ms",
    "perf_server_queue": "queue_ms",
    "perf_server_compute_input": "compute_input_ms",
    "perf_server_compute_infer": "compute_infer_ms",
    "perf_server_compute_output": "compute_output_ms",
    "gpu_used_memory": "gpu_memory_used_mb",
    "gpu_power_usage": "gpu_power_w",
    "cpu_used_ram": "server_memory_mb",
}

FIELDS = {f.name: f for f in dataclasses.fields(Config)}

#: perf_analyzer flags (as Model Analyzer passes them) -> (our key, conversion).
PERF_ANALYZER_FLAGS = {
    "shape": ("shape", lambda v: v),
    "input-data": ("input_data", str),
    "measurement-interval": ("measurement_window_s", lambda ms: float(ms) / 1000.0),
    "measurement-request-count": ("measurement_request_count", int),
    "stability-percentage": ("throughput_precision", lambda pct: float(pct) / 100.0),
    "max-trials": ("max_windows", int),
    "request-distribution": ("request_distribution", str),
    "request-intervals": ("request_intervals", str),
    "percentile": ("percentile", int),
    "measurement-mode": ("measurement_mode", str),
    "protocol": ("client_protocol", str),
    "model-version": ("model_version", str),
    "string-length": ("string_length", int),
    "string-data": ("string_data", str),
    "H": ("http_headers", lambda v: v),
    "header": ("http_headers", lambda v: v),
    **tls.PERF_ANALYZER_FLAGS,
    "shared-memory": ("shared_memory", str),
    "output-shared-memory-size": ("output_shared_memory_size", int),
    "sequence-length": ("sequence_length", int),
    "sequence-length-variation": ("sequence_length_variation", float),
    "sequence-id-range": ("sequence_id_range", str),
    "start-sequence-id": ("sequence_id_range", str),  # perf_analyzer's older form of the range's start
    "serial-sequences": ("serial_sequences", lambda v: v),
    "num-of-sequences": ("num_of_sequences", int),
}


def _refused_flag(flag: str, value: Any) -> Optional[str]:
    """Why a perf_analyzer flag tsweep knows cannot be used, or None: CUDA shared memory (on
    a machine without a GPU, or anywhere until tsweep has it). The sequence flags, refused
    until issue 16, are load keys now (docs/sequence-models.md)."""
    if flag == "shared-memory" and str(value).lower() == "cuda":
        if not gpus.gpu_available():
            return "perf_analyzer flag 'shared-memory: cuda' needs a GPU and NVML sees none on this machine: use shared-memory none or system"
        return "perf_analyzer flag 'shared-memory: cuda' is not supported by tsweep's load generators: use shared-memory none or system"
    return None


def option_fields(command: str):
    """The Config fields that are CLI flags of ``command``, in schema order."""
    return [f for f in dataclasses.fields(Config) if f.metadata["flag"] and command in f.metadata["commands"]]


def read_yaml(path: Path) -> Dict[str, Any]:
    """Load a config file safely; any problem is one UsageError line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"malformed YAML in {path}{where}: {problem}; fix the file's syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must be a mapping of keys to values, not {type(data).__name__}")
    return data


def load_config(path: Optional[Path], overrides: Mapping[str, Any], plugin_keys: Sequence[ConfigKey] = ()) -> Config:
    """Defaults, then the YAML file at ``path``, then ``overrides`` (CLI flags that were set).

    ``plugin_keys`` are the keys installed plugins declare (``Hooks.config_keys()``): the
    file may set them too; their values, defaults filled in, land in
    ``Config.plugin_options``."""
    raw: Dict[str, Any] = {}
    source = "the command line"
    if path is not None:
        raw = read_yaml(Path(path))
        source = str(path)
    declared = {key.name: key for key in plugin_keys}
    plugin_options = {name: key.value() for name, key in declared.items()}
    overrides = dict(overrides)
    for given in (raw, overrides):  # a library user may pass plugin keys as overrides
        for key in [k for k in given if k in declared]:
            plugin_options[key] = coerce(declared[key].rule(), given.pop(key))
            check(declared[key].rule(), plugin_options[key])
    for key in list(raw):
        if key not in FIELDS or FIELDS[key].metadata.get("internal"):
            _foreign_key(key, source, declared)  # warns (and drops) or raises
            raw.pop(key)
    if isinstance(raw.get("profile_models"), dict):
        raw = {**raw, "profile_models": list(raw["profile_models"]), "per_model": _per_model(raw["profile_models"], source)}
        raw = _server_settings(raw, raw["per_model"])
    if isinstance(raw.get("report_model_configs"), dict):
        raw = {**raw, "report_model_configs": list(raw["report_model_configs"]), "report_plots": _report_plots(raw["report_model_configs"], source)}
    merged = {**_from_perf_analyzer_flags(raw.get("perf_analyzer_flags")), **raw, **{k: v for k, v in overrides.items() if v is not None}}
    if "objectives" in merged:
        merged["objectives"] = _objectives_form(merged["objectives"])
    _one_send_plan(merged, "")
    for name, own in merged.get("per_model", {}).items():
        _one_send_plan({**own["load"], **own["parameters"]}, f" of model {name!r}")
        if merged.get("request_intervals") and not own["load"].get("request_intervals") and (
            set(own["parameters"]) & {"request_rate", "concurrency"} or "request_distribution" in own["load"]
        ):
            raise UsageError(f"request_intervals and parameters or request-distribution of model {name!r} both set its load: remove one of them")
    for key in ("ensemble_composing_models", "bls_composing_models"):
        if key in merged:
            merged[key] = composing_form(merged[key], key)
    values = {key: coerce(rule(FIELDS[key]), value) for key, value in merged.items()}
    config = Config(**values, plugin_options=plugin_options)
    _check(config)
    return config


#: The keys of stateful models' sequences (perf_analyzer's sequence flags).
SEQUENCE_KEYS = ("sequence_length", "sequence_length_variation", "sequence_id_range", "serial_sequences", "num_of_sequences")
#: What the mapping form of profile_models may say about one model.
PER_MODEL_PARAMETERS = {"concurrency": "list_int", "batch_sizes": "list_int", "request_rate": "list_float"}
#: The keys a model's own perf_analyzer_flags may set (what requests look like and how they
#: are spaced); they override the global ones for that model. The rest are global.
PER_MODEL_LOAD_KEYS = ("shape", "input_data", "request_distribution", "model_version", "http_headers", "string_length", "string_data", "request_intervals", "percentile") + SEQUENCE_KEYS
#: TLS flags a model's own perf_analyzer_flags may give (Model Analyzer's examples do): they
#: describe the one server of the run, so they are merged like its other settings.
PER_MODEL_TLS_KEYS = tuple(key for key, _ in tls.PERF_ANALYZER_FLAGS.values())
#: The server's settings a model's own entry may add to (one server runs all of a run's models).
PER_MODEL_SERVER_KEYS = ("triton_server_flags", "triton_server_environment", "triton_docker_labels", "triton_docker_args")
PER_MODEL_KEYS = ("model_config_parameters", "parameters", "perf_analyzer_flags", "objectives", "constraints", "cpu_only", "weighting") + PER_MODEL_SERVER_KEYS


def _per_model(models: Dict[str, Any], source: str) -> Dict[str, Dict[str, Any]]:
    """``profile_models: {name: {model_config_parameters: ..., parameters: ...,
    perf_analyzer_flags: ...}}`` checked."""
    result = {}
    for name, settings in models.items():
        settings = settings or {}
        if not isinstance(settings, dict):
            raise UsageError(f"profile_models entry {name!r} in {source} must be a mapping, got {settings!r}")
        if "genai_perf_flags" in settings:
            raise UsageError(f"genai_perf_flags of {name!r} (Model Analyzer's) is not supported: {compat.REFUSED['genai_perf_flags']}")
        unknown = set(settings) - set(PER_MODEL_KEYS)
        if unknown:
            key = sorted(unknown)[0]
            close = difflib.get_close_matches(str(key), PER_MODEL_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use {', '.join(PER_MODEL_KEYS)}"
            raise UsageError(f"profile_models entry {name!r} has unknown key {key!r}: {hint}")
        parameters = settings.get("parameters") or {}
        if not isinstance(parameters, dict) or set(parameters) - set(PER_MODEL_PARAMETERS):
            raise UsageError(f"parameters of {name!r} may set {', '.join(PER_MODEL_PARAMETERS)}, got {parameters!r}")
        coerced = {}
        for key, value in parameters.items():
            try:
                convert = as_int if PER_MODEL_PARAMETERS[key] == "list_int" else as_float
                if isinstance(value, dict):  # Model Analyzer's {start, stop, step}
                    coerced[key] = expand_range(f"parameters.{key} of {name}", value, convert)
                else:
                    coerced[key] = tuple(convert(v) for v in split(value))
            except (TypeError, ValueError):
                raise UsageError(f"parameters.{key} of {name!r} must be a list of positive numbers, got {value!r}") from None
            if any(v <= 0 for v in coerced[key]):
                raise UsageError(f"parameters.{key} of {name!r} must be a list of positive numbers, got {value!r}")
        mcp = settings.get("model_config_parameters") or {}
        if not isinstance(mcp, dict):
            raise UsageError(f"model_config_parameters of {name!r} must be a mapping of config.pbtxt fields, got {mcp!r}")
        flags = _from_perf_analyzer_flags(settings.get("perf_analyzer_flags"))
        result[str(name)] = {"parameters": coerced, "model_config_parameters": mcp, "load": _model_load(name, flags)}
        result[str(name)]["cpu_only"] = coerce(KeyRule(f"cpu_only of {name}", "bool"), settings.get("cpu_only", False))
        if "weighting" in settings:  # counts when the models are profiled together (tsweep.combination)
            weighting = coerce(KeyRule(f"weighting of {name}", "int"), settings["weighting"])
            check(KeyRule(f"weighting of {name}", "int", "positive"), weighting)
            result[str(name)]["weighting"] = weighting
        for key in PER_MODEL_SERVER_KEYS:
            if settings.get(key) is not None:
                result[str(name)][key] = coerce(KeyRule(f"{key} of {name}", "Dict"), settings[key])
        result[str(name)]["tls"] = {key: coerce(rule(FIELDS[key]), v) for key, v in flags.items() if key in PER_MODEL_TLS_KEYS}
        for section in ("objectives", "constraints"):  # replace the global ones for this model
            if settings.get(section) is not None:
                value = _objectives_form(settings[section]) if section == "objectives" else settings[section]
                result[str(name)][section] = coerce(KeyRule(f"{section} of {name}", "Dict"), value)
                for metric in result[str(name)][section]:
                    canonical_metric(metric, f"{section} of {name!r}")
    return result


def _server_settings(raw: Dict[str, Any], per_model: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """The models' own server flags, environment, container and TLS settings merged into the
    run's: one server runs every model of a run, so a model's value wins over the global
    one for the whole run, and two models asking different values for the same name is
    one error line (profile them in separate runs)."""
    merged = dict(raw)
    for key in PER_MODEL_SERVER_KEYS:
        values = _merge_models(dict(raw.get(key) or {}), {model: own.get(key) for model, own in per_model.items()}, f"{key} {{name!r}}")
        if values:
            merged[key] = values
    return _merge_models(merged, {model: own.get("tls") for model, own in per_model.items()}, "{name}")


def _merge_models(values: Dict[str, Any], by_model: Mapping[str, Optional[Mapping[str, Any]]], label: str) -> Dict[str, Any]:
    """``values`` with each model's own entries over them; two models giving one name
    different values is one error line (``label`` names the entry)."""
    chosen_by: Dict[str, str] = {}
    for model, own in by_model.items():
        for name, value in (own or {}).items():
            if name in chosen_by and values[name] != value:
                raise UsageError(
                    f"{label.format(name=name)} is {values[name]!r} for {chosen_by[name]!r} but {value!r} for {model!r}, and one server "
                    f"runs every model of a run: profile them in separate runs"
                )
            values[name], chosen_by[name] = value, model
    return values


def _report_plots(configs: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``report_model_configs: {config: {plots: {...}}}``: each config's own plots (checked
    against the metric catalogue later, by the Run)."""
    result = {}
    for name, settings in configs.items():
        settings = settings or {}
        if not isinstance(settings, dict) or set(settings) - {"plots"}:
            raise UsageError(f"report_model_configs entry {name!r} in {source} may only set plots, got {settings!r}")
        result[str(name)] = settings.get("plots") or {}
    return result


def _objectives_form(value: Any) -> Any:
    """Model Analyzer's list form of objectives (``[perf_latency_p99, perf_throughput]``) as
    equal weights; a mapping (or anything else, refused later) as given."""
    if isinstance(value, (list, tuple, str)):
        return {str(metric): 1.0 for metric in split(value)}
    return value


def _one_send_plan(given: Mapping[str, Any], where: str) -> None:
    """request_intervals replaces the rates and their spacing (and the closed loop): with any of
    them also given, one line; the file itself is read, so a bad line stops the run here."""
    if not given.get("request_intervals"):
        return
    for other in ("request_rate", "request_distribution", "concurrency"):
        if other in given:
            raise UsageError(
                f"request_intervals and {other}{where} both set: the intervals file sets the open loop's sends; remove {other} or request_intervals"
            )
    requestintervals.read(str(given["request_intervals"]))


def _model_load(model: str, flags: Mapping[str, Any]) -> Dict[str, Any]:
    """A model's own perf_analyzer_flags as tsweep's load keys, each coerced and checked as the
    global key is; the TLS flags are left for :func:`_server_settings` (they are the
    server's, and one server runs every model); other flags that only make sense for the
    whole run are refused by name."""
    load = {}
    for key, value in flags.items():
        if key in PER_MODEL_TLS_KEYS:
            continue
        if key not in PER_MODEL_LOAD_KEYS:
            flag = next(f for f, (k, _) in PERF_ANALYZER_FLAGS.items() if k == key)
            raise UsageError(f"perf_analyzer flag {flag!r} of model {model!r} applies to the whole run: set it in the top-level perf_analyzer_flags")
        load[key] = coerce(rule(FIELDS[key]), value)
        check(rule(FIELDS[key]), load[key])
    return load


def _from_perf_analyzer_flags(flags: Any) -> Dict[str, Any]:
    """Our keys for the perf_analyzer flags we support; explicit keys still win."""
    if not flags:
        return {}
    if not isinstance(flags, dict):
        raise UsageError(f"config key 'perf_analyzer_flags' must be a mapping, got {flags!r}")
    mapped = {}
    for flag, value in flags.items():
        refused = _refused_flag(flag, value)
        if refused:
            raise UsageError(refused)
        if flag not in PERF_ANALYZER_FLAGS:
            raise UsageError(f"perf_analyzer flag {flag!r} is not supported: tsweep understands {', '.join(PERF_ANALYZER_FLAGS)}")
        key, convert = PERF_ANALYZER_FLAGS[flag]
        try:
            mapped[key] = convert(value)
        except (TypeError, ValueError):
            raise UsageError(f"perf_analyzer flag {flag!r} has an invalid value {value!r}") from None
    return mapped


#: Keys of tsweep 0.1 that the precision rule replaced, and what to write instead.
RENAMED = {
    "stability_tolerance": "points now end by precision; use throughput_precision and latency_precision (relative half-widths of 95% intervals; docs/measurement.md)",
    "stable_windows": "points now end by precision; use min_windows (docs/measurement.md)",
    "triton_gpus": "Model Analyzer's gpus now chooses the GPUs, for the server in every launch mode and for the metrics: use gpus",
}


def composing_form(value: Any, key: str) -> Dict[str, Dict[str, Any]]:
    """``ensemble_composing_models`` / ``bls_composing_models`` as {name: {model_config_parameters:
    ...}}, from a comma-separated string, a list of names or the mapping (Model Analyzer's forms)."""
    if isinstance(value, (str, list, tuple)):
        value = {name: {} for name in split(value)}
    if not isinstance(value, dict):
        raise UsageError(f"{key} must be a list of model names or a mapping of them to settings, got {value!r}")
    found = {}
    for name, own in value.items():
        own = own or {}
        if not isinstance(own, dict) or set(own) - {"model_config_parameters"}:
            raise UsageError(f"{key} entry {name!r} may set model_config_parameters only, got {own!r}")
        mcp = own.get("model_config_parameters") or {}
        if not isinstance(mcp, dict):
            raise UsageError(f"model_config_parameters of {name!r} in {key} must be a mapping of config.pbtxt fields, got {mcp!r}")
        found[str(name)] = {"model_config_parameters": mcp}
    return found


class ConfigWarning(UserWarning):
    """A key that tsweep accepts but that has no effect (shown as one line by the CLI)."""


def _foreign_key(key: str, source: str, declared: Mapping[str, ConfigKey]) -> None:
    """A key that is not tsweep's: a Model Analyzer key tsweep ignores gets one warning
    line; one it refuses, or an unknown key, one error line (:mod:`tsweep.compat`)."""
    if key in compat.MODEL_ANALYZER_KEYS:
        treated = compat.treatment(key, set(FIELDS) | set(declared))
        if treated.kind == "ignored":
            warnings.warn(f"config key {key!r} in {source} has no effect in tsweep: {treated.note}", ConfigWarning, stacklevel=4)
            return
        if treated.kind == "renamed":
            raise UsageError(f"config key {key!r} in {source} is Model Analyzer's; tsweep's is {treated.note}")
        raise UsageError(f"config key {key!r} in {source} (Model Analyzer's) is not supported: {treated.note}")
    raise UsageError(_unknown_key(key, source, declared))


def _unknown_key(key: str, source: str, declared: Mapping[str, ConfigKey]) -> str:
    if key in RENAMED:
        return f"config key {key!r} in {source} is gone: {RENAMED[key]}"
    keys = [name for name, f in FIELDS.items() if not f.metadata.get("internal")] + list(declared) + list(compat.MODEL_ANALYZER_KEYS)
    close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "see docs/config.md for the valid keys"
    return f"unknown config key {key!r} in {source}: {hint}"


def base_type(f: dataclasses.Field) -> str:
    """The field's type name without Optional[...]: 'int', 'float', 'Tuple[int, ...]', ..."""
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return name[len("Optional["):-1] if name.startswith("Optional[") else name


def rule(f: dataclasses.Field) -> KeyRule:
    """The value rule of one of tsweep's own keys, from its field and metadata."""
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return KeyRule(f.name, type_name(name), f.metadata.get("kind", ""), tuple(f.metadata.get("choices", ())), optional=name.startswith("Optional["))


def _check(config: Config) -> None:
    """Checks across fields and bounds; the first problem found is the error."""
    for f in dataclasses.fields(Config):
        if not f.metadata.get("internal"):
            check(rule(f), getattr(config, f.name))
    for what in ("instance_count", "model_batch_size", "concurrency", "request_rate"):
        low = getattr(config, f"run_config_search_min_{what}")
        high = getattr(config, f"run_config_search_max_{what}")
        if low > high:
            raise UsageError(
                f"run_config_search_min_{what} ({low}) is greater than run_config_search_max_{what} ({high}): swap or fix them"
            )
    try:
        ipaddress.ip_address(config.triton_bind_address)
    except ValueError:
        raise UsageError(f"triton_bind_address {config.triton_bind_address!r} is not an IP address: use e.g. 127.0.0.1") from None
    if config.request_rate and config.concurrency:
        raise UsageError("request_rate and concurrency both set: choose open loop (request_rate) or closed loop (concurrency)")
    if config.request_rate_search_enable and config.concurrency:
        raise UsageError("request_rate_search_enable searches request rates, but concurrency lists concurrencies: drop one of them")
    _check_executor(config)
    if config.min_windows > config.max_windows:
        raise UsageError(f"min_windows ({config.min_windows}) must not exceed max_windows ({config.max_windows})")
    for section in ("objectives", "constraints"):
        for metric in getattr(config, section):
            canonical_metric(metric, section)
    tls.check(config)


def _check_executor(config: Config) -> None:
    """What the local executor cannot do, and what lanes elsewhere cannot do yet (a launch
    mode that attaches to a server, rather than starting one per lane, is refused by the sweep)."""
    if config.executor == LOCAL_EXECUTOR and config.lanes > 1:
        raise UsageError(f"executor local measures on one lane (this process's one server), not {config.lanes}: use --executor ray for several lanes, or drop lanes")
    if config.executor != LOCAL_EXECUTOR and config.run_config_profile_models_concurrently_enable:
        raise UsageError(f"run_config_profile_models_concurrently_enable is not supported with executor {config.executor} yet: use executor local, or drop the key")


def canonical_metric(name: str, where: str = "objectives") -> str:
    """Our name for a metric (Model Analyzer's names are accepted too). Unknown names are
    checked later against what collectors report, so here only the aliases are mapped."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where} must be keyed by metric names, got {name!r}")
    return METRIC_ALIASES.get(name, name)
