"""Model Analyzer's config keys, as facts, and what tsweep does with each: the one place.

Every key of Model Analyzer's profile and report reference (docs/config.md and
docs/config_search.md of triton-inference-server/model_analyzer) is here with its treatment:

* **same**: tsweep has the key, with the meaning Model Analyzer documents;
* **different**: tsweep has the key, and the note says what differs;
* **renamed**: tsweep's key of another name does the job;
* **ignored**: accepted, with one warning line saying why it has no effect in tsweep;
* **refused**: one error line naming the tsweep way (or saying tsweep lacks it).

The config loader (:mod:`tsweep.config`) warns and refuses from these tables; the reference
(:mod:`tsweep.configdoc`) renders them; a test checks that every key has a treatment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Dict, Tuple

#: Model Analyzer's documented keys: profile, report, YAML-only and search keys.
MODEL_ANALYZER_KEYS: Tuple[str, ...] = (
    # profile: what and where
    "model_repository", "profile_models", "bls_composing_models", "cpu_only_composing_models",
    "ensemble_composing_models", "checkpoint_directory", "output_model_repository_path",
    "override_output_model_repository", "export_path",
    # load
    "concurrency", "batch_sizes", "request_rate", "client_max_retries", "client_protocol",
    # metrics
    "duration_seconds", "monitoring_interval", "collect_cpu_metrics", "always_report_gpu_metrics",
    # perf_analyzer and genai-perf
    "perf_analyzer_path", "perf_analyzer_timeout", "perf_analyzer_cpu_util", "perf_output", "perf_output_path",
    "perf_analyzer_max_auto_adjusts", "perf_analyzer_flags", "genai_perf_flags",
    # the server
    "reload_model_disable", "triton_launch_mode", "triton_docker_image", "triton_http_endpoint",
    "triton_grpc_endpoint", "triton_metrics_url", "triton_install_path", "triton_server_path",
    "triton_output_path", "triton_docker_mounts", "triton_docker_shm_size", "triton_docker_labels",
    "triton_docker_args", "triton_server_flags", "triton_server_environment", "gpus", "dcgm_disable",
    # the search
    "run_config_search_mode", "run_config_search_disable", "run_config_search_min_concurrency",
    "run_config_search_max_concurrency", "run_config_search_min_model_batch_size",
    "run_config_search_max_model_batch_size", "run_config_search_min_instance_count",
    "run_config_search_max_instance_count", "run_config_search_min_request_rate",
    "run_config_search_max_request_rate", "run_config_search_max_binary_search_steps",
    "run_config_profile_models_concurrently_enable", "request_rate_search_enable",
    "min_percentage_of_search_space", "max_percentage_of_search_space", "optuna_min_trials",
    "optuna_max_trials", "optuna_early_exit_threshold", "use_concurrency_formula",
    "concurrency_sweep_disable", "early_exit_enable", "model_type",
    # what is best
    "latency_budget", "min_throughput", "constraints", "objectives", "weighting",
    # reports and exports
    "skip_summary_reports", "skip_detailed_reports", "num_configs_per_model", "num_top_model_configs",
    "filename_model_inference", "filename_model_gpu", "filename_server_only", "inference_output_fields",
    "gpu_output_fields", "server_output_fields", "report_model_configs", "plots",
)  # fmt: skip

#: Keys tsweep has under the same name but where the meaning or the accepted values differ.
DIFFERENT: Dict[str, str] = {
    "ensemble_composing_models": "searched with quick, adaptive or brute (Model Analyzer: quick only); the report breaks latency down per stage",
    "bls_composing_models": "not a CLI flag; its variants are loaded under the composing models' own names, one pipeline at a time",
    "checkpoint_directory": "holds `results.sqlite`, a SQLite file any SQLite tool opens, not a pickle; a rerun resumes from it",
    "client_protocol": "default `http` (tsweep's native load generator, the fastest); `grpc` goes through tritonclient",
    "concurrency": "a list, a comma-separated string or a `{start, stop, step}` range",
    "batch_sizes": "a list, a comma-separated string or a `{start, stop, step}` range",
    "request_rate": "a list, a comma-separated string or a `{start, stop, step}` range; it replaces concurrency (open loop)",
    "objectives": "a list (equal weights) or a mapping `{metric: weight}`; ranking maximizes the weighted, normalized objectives",
    "profile_models": "the mapping form takes Model Analyzer's per-model keys: `perf_analyzer_flags` (request and spacing flags and percentile, over the global ones), `objectives` and `constraints` (replacing them), server flags, environment and container settings (merged into the run's one server), `weighting` (when profiled together); `genai_perf_flags` (the prompt and streaming flags only)",
    "run_config_search_mode": "adds `adaptive`, the default, and `exhaustive` (every listed point; the default under run_config_search_disable) next to `brute`, `quick` and `optuna` (docs/search.md)",
    "run_config_search_disable": "also decides the strategy when none is named: `exhaustive` (every listed point, as Model Analyzer measures a listed grid), or `brute` with early_exit_enable",
    "genai_perf_flags": "mapped onto tsweep's generative keys (streaming, prompts, load levels); tsweep's own generator measures the stream, other flags are refused",
    "model_type": "`LLM` turns streaming on: a generative model is measured through its token stream (a decoupled model)",
    "early_exit_enable": "matters only under run_config_search_disable (it picks `brute`): tsweep's searches of the automatic space always exit early",
    "run_config_search_max_binary_search_steps": "declared by the adaptive strategy, which bisects the latency budget; `brute` and `quick` do not bisect",
    "optuna_max_trials": "declared by the optuna strategy plugin; never more trials than points in the space",
    "max_percentage_of_search_space": "declared by the optuna strategy plugin; a space with a point gets at least one trial",
    "concurrency_sweep_disable": "declared by the optuna strategy plugin (its top 3 configs' load walks); quick and adaptive walk each config's load while they search, so nothing is left to turn off",
    "triton_launch_mode": "`local`, `docker` and `remote`, plus any a plugin adds; there is no `c_api`",
    "gpus": "also takes `none`; indices are NVML's (nvidia-smi's), and `all` is every GPU NVML sees, whatever tsweep's own CUDA_VISIBLE_DEVICES says",
    "reload_model_disable": "remote mode only; measures only the default config, and stores the local config.pbtxt, not the server's",
    "triton_docker_image": "default `{image}`, the release of the embedded server",
    "triton_docker_shm_size": "default `1g`, because the python backend moves tensors through /dev/shm",
    "triton_server_flags": "refuses the flags tsweep sets itself (ports, addresses, repository, model control); a model's own are merged into the one server of the run",
    "triton_server_environment": "refuses `CUDA_VISIBLE_DEVICES` (the `gpus` key sets it); a model's own are merged into the one server of the run (two models asking different values is an error)",
    "triton_docker_mounts": "the repositories are mounted already, read-only, at the same path inside as outside",
    "perf_analyzer_flags": "only {pa_flags} are understood, mapped onto tsweep's own keys; others are refused with a message, because tsweep does not run perf_analyzer; an https endpoint is measured through tritonclient (PEM files only)",
    "report_model_configs": "also prints every load level of each config; the mapping form takes only `plots`",
    "inference_output_fields": "column titles are tsweep's, intervals beside their figures; it also sets the console ranking's columns",
    "gpu_output_fields": "column titles are tsweep's; model_config_path is the config's name, instance_group its instance count",
    "server_output_fields": "column titles are tsweep's; rows are the idle server process and each GPU",
    "plots": "one key for the summary's and the detailed reports' charts; unset: tsweep's own (docs/reports.md)",
    "perf_output": "writes tsweep's load log (one block per point: status, figures, each window's throughput), since there is no perf_analyzer output",
    "perf_output_path": "the file the load log is appended to (stderr without it)",
    "duration_seconds": "default one monitoring_interval (Model Analyzer's is 3 s): the baseline is a mean of samples, and every profile pays it once",
    "filename_model_inference": "declared by the CSV reporter plugin; a plain file name under results/",
    "filename_model_gpu": "declared by the CSV reporter plugin; a plain file name under results/",
    "filename_server_only": "declared by the CSV reporter plugin; a plain file name under results/",
    "skip_summary_reports": "declared by the summary reporter plugin: no summary PDFs; the console ranking is still printed",
    "skip_detailed_reports": "declared by the detailed reporter plugin; it also stops `tsweep report`'s PDFs (the tables are still printed)",
    "run_config_profile_models_concurrently_enable": "searches combinations with adaptive (default), quick or brute; every model's load shares the same windows; detailed reports too",
    "weighting": "a profile_models entry's key only: weights that model's normalised objective score in a combination's score (a weighted mean) when models are profiled together",
    "num_top_model_configs": "ranks by the global objectives and constraints, which need not be set",
}

#: Model Analyzer keys that tsweep spells differently: key -> (tsweep's key, note).
RENAMED: Dict[str, Tuple[str, str]] = {}

#: Accepted, with one warning line saying why the key has no effect in tsweep.
IGNORED: Dict[str, str] = {
    "perf_analyzer_path": "tsweep has no perf_analyzer: its load generator is built in",
    "perf_analyzer_timeout": "tsweep has no perf_analyzer to time out: request_timeout_s bounds each request, and a point ends by the precision rule",
    "perf_analyzer_cpu_util": "tsweep has no perf_analyzer process to watch: the client's CPU time is in each point's host metrics",
    "perf_analyzer_max_auto_adjusts": "tsweep has no perf_analyzer to relaunch: a window too short for enough responses is extended",
    "dcgm_disable": "tsweep reads GPUs through NVML, not DCGM",
    "client_max_retries": "tsweep waits for the server and its models by time (server_ready_timeout_s), not by a count of retries; failed requests count as errors",
    "triton_install_path": "only Model Analyzer's c_api launch mode reads it, and tsweep has none (use local)",
    "collect_cpu_metrics": "tsweep always collects the server process's and the host's CPU and memory",
    "always_report_gpu_metrics": "tsweep reports GPU metrics whenever a GPU collector recorded them",
}

#: Refused: key -> the tsweep way, or what tsweep lacks.
REFUSED: Dict[str, str] = {}


@dataclass(frozen=True)
class Treatment:
    """What tsweep does with one Model Analyzer key: ``kind`` is same, different, renamed,
    ignored or refused; ``note`` says how (empty for same)."""

    kind: str
    note: str = ""


def treatment(key: str, ours: AbstractSet[str]) -> Treatment:
    """The treatment of ``key``, given the names of the keys tsweep reads (its own and its
    plugins'). A key tsweep reads and no table mentions is the same as Model Analyzer's."""
    if key in IGNORED:
        return Treatment("ignored", IGNORED[key])
    if key in REFUSED:
        return Treatment("refused", REFUSED[key])
    if key in RENAMED:
        ours_name, note = RENAMED[key]
        return Treatment("renamed", f"`{ours_name}`: {note}")
    if key in DIFFERENT:
        return Treatment("different", DIFFERENT[key])
    if key in ours:
        return Treatment("same")
    return Treatment("refused", "tsweep does not have it")
