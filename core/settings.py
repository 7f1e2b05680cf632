"""The user's config translated into each component's own settings: one place per rule.

Components never read the whole :class:`tsweep.config.Config`; each gets the frozen
settings record it needs (:mod:`tsweep.records`, :class:`tsweep.measure.MethodSettings`),
built here. A model's own ``profile_models`` entry overrides the global bounds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tsweep import gpus, inputs, modeljson, requestintervals, sequences, tls
from tsweep.config import SEQUENCE_KEYS, Config
from tsweep.errors import UsageError
from tsweep.loading import SEND_FILES, RepositoryLoading, RequestLoading, ServedAsIs, VariantLoading
from tsweep.measure import MIN_WINDOW_REQUESTS, MethodSettings
from tsweep.records import ContainerSettings, LaunchSettings, LoadSettings, PromptSettings, SpaceSettings


def space_settings(config: Config, model: str, lane_gpus: Optional[int] = None) -> SpaceSettings:
    """The global bounds, overridden by the model's own entry in profile_models. The GPUs
    are this machine's (the ``gpus`` key), or ``lane_gpus`` per server when the executor's
    lanes see others (:class:`tsweep.lanes.LanePool`)."""
    own = config.per_model.get(model, {})
    parameters = own.get("parameters", {})
    chosen = gpus.select(config.gpus) if lane_gpus is None else tuple(range(lane_gpus))
    gaps = request_intervals(config, model)
    if gaps:  # the open loop on the file's gaps: one load level, their mean rate
        parameters = {**parameters, "request_rate": (requestintervals.mean_rate(gaps),), "concurrency": ()}
    return SpaceSettings(
        min_instance_count=config.run_config_search_min_instance_count,
        max_instance_count=config.run_config_search_max_instance_count,
        min_model_batch_size=config.run_config_search_min_model_batch_size,
        max_model_batch_size=config.run_config_search_max_model_batch_size,
        min_concurrency=config.run_config_search_min_concurrency,
        max_concurrency=config.run_config_search_max_concurrency,
        request_rate_search=config.request_rate_search_enable,
        min_request_rate=config.run_config_search_min_request_rate,
        max_request_rate=config.run_config_search_max_request_rate,
        concurrency=parameters.get("concurrency", tuple(config.concurrency)),
        request_rate=parameters.get("request_rate", tuple(config.request_rate)),
        batch_sizes=parameters.get("batch_sizes", tuple(config.batch_sizes)),
        model_config_parameters=own.get("model_config_parameters", {}),
        search_disable=config.run_config_search_disable,
        gpu_available=bool(chosen) and not own.get("cpu_only", False),  # cpu_only: KIND_CPU variants only
        gpu_count=len(chosen),
    )


def search_mode(config: Config) -> str:
    """The search strategy's name: the one asked for, else Model Analyzer's choice for a
    listed grid (run_config_search_disable): every listed point as listed, or brute with
    its early exits when early_exit_enable asks for them; else tsweep's adaptive search."""
    if config.run_config_search_mode:
        return config.run_config_search_mode
    if config.run_config_search_disable:
        return "brute" if config.early_exit_enable else "exhaustive"
    return "adaptive"


def together_mode(config: Config) -> str:
    """How combinations of models profiled together are searched (:mod:`tsweep.combosearch`):
    the mode asked for, else brute over a listed grid (every listed point, as Model
    Analyzer's listed grid), else adaptive."""
    mode = search_mode(config)
    return "brute" if mode == "exhaustive" else mode


def method_settings(config: Config) -> MethodSettings:
    return MethodSettings(
        count_windows=config.measurement_mode == "count_windows",
        window_s=config.measurement_window_s,
        throughput_precision=config.throughput_precision,
        latency_precision=config.latency_precision,
        min_windows=config.min_windows,
        max_windows=config.max_windows,
        warmup_s=min(0.5, config.measurement_window_s),
        min_requests=config.measurement_request_count or MIN_WINDOW_REQUESTS,
        max_error_fraction=config.max_error_fraction,
    )


def load_settings(config: Config, model: str = "") -> LoadSettings:
    """The load settings of ``model``: the global ones, overridden by what the model's own
    perf_analyzer_flags say (shape, input-data, request-distribution, the sequence flags)."""
    own = config.per_model.get(model, {}).get("load", {})
    return LoadSettings(
        protocol=config.client_protocol,
        shapes=inputs.parse_shapes(list(own.get("shape", config.shape))),
        input_data=own.get("input_data", config.input_data),
        encoding=config.http_encoding,
        timeout_s=config.request_timeout_s,
        distribution=own.get("request_distribution", config.request_distribution),
        model_version=own.get("model_version", config.model_version) or "",
        headers=inputs.parse_headers(own.get("http_headers", config.http_headers)),
        string_length=own.get("string_length", config.string_length),
        string_data=own.get("string_data", config.string_data),
        intervals_us=request_intervals(config, model),
        shared_memory=config.shared_memory,
        output_shared_memory_size=config.output_shared_memory_size,
        tls=tls.settings(config),
        sequences=sequences.settings({key: own.get(key, getattr(config, key)) for key in SEQUENCE_KEYS}),
        streaming=is_streamed(config, model),
        prompts=prompt_settings(config, model),
    )


def is_streamed(config: Config, model: str = "") -> bool:
    """Whether ``model``'s points read token streams: its own streaming key (genai_perf_flags),
    else the global one, which Model Analyzer's ``model_type: LLM`` turns on."""
    own = config.per_model.get(model, {}).get("load", {})
    return bool(own.get("streaming", config.streaming or config.model_type == "LLM"))


def streaming_models(config: Config) -> list:
    """The run's models whose points are streamed (\"\" for the run as a whole when it names none)."""
    return [m for m in (config.profile_models or ("",)) if is_streamed(config, m)]


def prompt_settings(config: Config, model: str = "") -> PromptSettings:
    """``model``'s prompts: the generative keys, overridden by its own genai_perf_flags."""
    own = config.per_model.get(model, {}).get("load", {})
    value = lambda key: own.get(key, getattr(config, key))  # noqa: E731
    return PromptSettings(
        input_tokens_mean=value("synthetic_input_tokens_mean"), input_tokens_stddev=float(value("synthetic_input_tokens_stddev")),
        output_tokens_mean=value("output_tokens_mean"), output_tokens_stddev=float(value("output_tokens_stddev")),
        file=value("prompt_file"), seed=value("prompt_seed"),
    )  # fmt: skip


def request_intervals(config: Config, model: str = "") -> tuple:
    """The gaps of ``model``'s request-intervals file (its own, else the global one), in
    microseconds; empty without one."""
    path = config.per_model.get(model, {}).get("load", {}).get("request_intervals", config.request_intervals)
    return requestintervals.read(path) if path else ()


def launch_settings(config: Config, output: Path) -> LaunchSettings:
    return LaunchSettings(
        model_repository=output,
        log_dir=Path(config.checkpoint_directory),
        server_path=config.triton_server_path,
        server_flags=dict(config.triton_server_flags),
        http_endpoint=config.triton_http_endpoint,
        grpc_endpoint=config.triton_grpc_endpoint,
        metrics_url=config.triton_metrics_url,
        ready_timeout_s=config.server_ready_timeout_s,
        bind_address=config.triton_bind_address,
        source_repository=Path(config.model_repository).resolve() if config.model_repository else None,
        environment=dict(config.triton_server_environment),
        container=ContainerSettings(
            image=config.triton_docker_image,
            shm_size=config.triton_docker_shm_size,
            mounts=tuple(config.triton_docker_mounts),
            labels=dict(config.triton_docker_labels),
            args=dict(config.triton_docker_args),
        ),
        gpus=gpus.select(config.gpus),
        options=dict(config.triton_launch_options),
        log_path=Path(config.triton_output_path) if config.triton_output_path else None,
        tls=tls.settings(config),
        shared_memory=config.shared_memory == "system",
        on_this_host=config.triton_server_on_this_host,
    )


def variant_loading(config: Config, launcher: object, output: Path) -> VariantLoading:
    """How variants reach the run's server (:mod:`tsweep.loading`). A launcher whose server
    cannot read tsweep's disk (remote mode) says ``serves_output_repository = False``."""
    serves_output = getattr(launcher, "serves_output_repository", True)
    if config.reload_model_disable:
        if serves_output:
            raise UsageError(
                f"reload_model_disable measures a model on a server you run, but launch mode {config.triton_launch_mode} starts one: "
                "pass --triton-launch-mode remote, or drop reload_model_disable"
            )
        return ServedAsIs()
    if serves_output:
        return RepositoryLoading(output)
    send_files = config.remote_model_loading == SEND_FILES
    changing = sorted(json_files_varied(config))
    if changing and not send_files:
        raise UsageError(
            f"model_config_parameters vary {', '.join(changing)}, which the server's own copy of the model cannot take "
            f"(remote_model_loading {config.remote_model_loading}): pass --remote-model-loading {SEND_FILES}, or vary config.pbtxt fields only"
        )
    return RequestLoading(output, send_files=send_files, max_mb=config.remote_load_max_mb)


def json_files_varied(config: Config) -> set:
    """``model/file`` for every JSON file of a model's folder that some model_config_parameters
    vary (:mod:`tsweep.modeljson`), the composing models' included."""
    owners = {**config.per_model, **config.ensemble_composing_models, **config.bls_composing_models}
    return {f"{name}/{key}" for name, own in owners.items() for key in (own.get("model_config_parameters") or {}) if modeljson.is_file_key(key)}
