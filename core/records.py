"""The plain data that flows between the core and plugins.

These are deliberately dumb dataclasses: plugins receive and return them, the results store
persists them, and none of them knows how it was produced. Latencies are in milliseconds and
throughput in inferences per second everywhere outside the native code (which counts ns).

Why one file over 400 lines: it is declarations only (no behaviour beyond a derived field
or two), the vocabulary a plugin author reads in one place; splitting it would scatter the
types one hook signature names across modules.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tsweep import modelconfig, modeljson

# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class ContainerSettings:
    """How to run the server in a container, for launchers that do (Model Analyzer's keys).

    ``mounts`` are ``host:container[:ro|rw]`` strings. The container's GPUs are
    :attr:`LaunchSettings.gpus`, as for every launch mode.
    """

    image: str = ""
    shm_size: Optional[str] = None
    mounts: Tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    #: More arguments of the engine's run call (``triton_docker_args``), e.g. ``cpuset_cpus``.
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TlsSettings:
    """How to reach a server behind TLS (perf_analyzer's ssl flags), per protocol.

    gRPC: ``grpc_use_ssl`` turns TLS on; the three files are PEM paths (the CA that signed
    the server's certificate, and the client's key and chain for mutual TLS). HTTPS is on
    when the HTTP endpoint is ``https://``; ``https_verify_peer`` (0/1) and
    ``https_verify_host`` (0: off, 1 or 2: on, as in curl) say what is checked, the files
    are the CA bundle and the client's certificate and key (PEM only)."""

    grpc_use_ssl: bool = False
    grpc_root_certificates: Optional[str] = None
    grpc_private_key: Optional[str] = None
    grpc_certificate_chain: Optional[str] = None
    https_verify_peer: int = 1
    https_verify_host: int = 2
    https_ca_certificates_file: Optional[str] = None
    https_client_certificate_file: Optional[str] = None
    https_private_key_file: Optional[str] = None


@dataclass(frozen=True)
class LaunchSettings:
    """What a launcher needs to know, and nothing else from the user's config.

    ``model_repository`` is the directory the server must serve: tsweep's output model
    repository, where the variants are written. ``source_repository`` is the user's model
    repository the variants were copied from (a server in a container must see it too:
    version folders may hold symlinks into it). ``server_log`` is the file the server's
    output goes to.
    ``environment`` is added to the server's environment. ``gpus`` are the UUIDs of the
    GPUs the server may use (the ``gpus`` key, resolved by :func:`tsweep.gpus.select`;
    empty: none): a launcher that starts a server gives it exactly these. ``options`` is the free-form
    ``triton_launch_options`` mapping, for launch modes that plugins add: each documents its
    own keys.
    """

    model_repository: Path
    log_dir: Path
    server_path: Optional[str] = None
    server_flags: Mapping[str, Any] = field(default_factory=dict)
    http_endpoint: Optional[str] = None
    grpc_endpoint: Optional[str] = None
    metrics_url: Optional[str] = None
    ready_timeout_s: float = 120.0
    bind_address: str = "127.0.0.1"
    source_repository: Optional[Path] = None
    environment: Mapping[str, str] = field(default_factory=dict)
    container: ContainerSettings = field(default_factory=ContainerSettings)
    gpus: Tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    log_path: Optional[Path] = None
    #: How to reach the server through TLS (remote mode: an ``https://`` endpoint, gRPC TLS).
    tls: TlsSettings = field(default_factory=TlsSettings)
    #: The load puts tensors in this host's system shared memory: the server must see it.
    shared_memory: bool = False
    #: The user says the server runs on this host and sees its /dev/shm (remote mode).
    on_this_host: bool = False

    @property
    def server_log(self) -> Path:
        """Where a started server's output goes: ``log_path`` (``triton_output_path``), else
        ``<log_dir>/tritonserver.log``."""
        return self.log_path or self.log_dir / "tritonserver.log"


@dataclass(frozen=True)
class RunningServer:
    """Where a started (or attached) server answers, and how to identify it.

    ``gpus``: the UUIDs of the GPUs the run measures (the core sets them from the ``gpus``
    key before asking for collectors); None, for a server the core did not describe, means
    every GPU NVML sees."""

    http_url: str
    grpc_url: Optional[str] = None
    metrics_url: Optional[str] = None
    pid: Optional[int] = None
    log_path: Optional[Path] = None
    description: str = "tritonserver"
    gpus: Optional[Tuple[str, ...]] = None
    #: How to reach it through TLS: its control plane and the load generators use the same.
    tls: TlsSettings = field(default_factory=TlsSettings)


# --------------------------------------------------------------------------- the space


@dataclass(frozen=True)
class LoadLevel:
    """One level of offered load: ``concurrency`` (closed loop) or ``request_rate`` (open)."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in ("concurrency", "request_rate"):
            raise ValueError(f"unknown load kind {self.kind!r}")

    def __str__(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.kind}={value}"


@dataclass(frozen=True)
class ModelSpec:
    """A model as found in the user's repository: its name, folder and parsed config."""

    name: str
    path: Path
    config: Any  # tritonclient's model_config_pb2.ModelConfig
    #: The models it runs (an ensemble's steps, a BLS model's ``bls_composing_models``),
    #: searched with it as one pipeline (:mod:`tsweep.pipeline`); ``pipeline`` says which kind.
    composing: Tuple["ModelSpec", ...] = ()
    pipeline: str = ""


@dataclass(frozen=True)
class Coordinates:
    """Where a variant sits in its space: what search strategies move on and compare.

    The first four are read from the config itself (a generator cannot get them wrong):
    total ``instances``, their ``kind`` (``KIND_GPU``, ``KIND_CPU``, ``KIND_AUTO``, ``KIND_MODEL``,
    or ``mixed``), ``max_batch_size`` and whether ``dynamic_batching`` is on. ``values`` are
    the other fields a space varies (a manual space's ``model_config_parameters``, as
    dotted field paths), sorted by name.
    """

    instances: int
    kind: str
    max_batch_size: int
    dynamic_batching: bool
    values: Tuple[Tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, config: Any, values: Mapping[str, Any] = ()) -> "Coordinates":
        kinds = {type(group).Kind.Name(group.kind) for group in config.instance_group} or {"KIND_AUTO"}
        return cls(
            instances=modelconfig.instance_count(config),
            kind=kinds.pop() if len(kinds) == 1 else "mixed",
            max_batch_size=int(config.max_batch_size),
            dynamic_batching=config.HasField("dynamic_batching"),
            values=tuple(sorted(dict(values).items())),
        )


#: The coordinates read from a variant's config, never given as values.
READ_FROM_CONFIG = ("instances", "kind", "max_batch_size", "dynamic_batching")
#: The coordinates a person compares variants by, in tables; ``values`` follow them.
DISPLAYED = ("instances", "max_batch_size", "dynamic_batching")


def cell(value: Any) -> str:
    """A displayed coordinate as a table cell: dynamic batching on or off is yes/no; a
    pipeline's cells (``preprocess:1 mlp:2``) and numbers as they are; missing is ``-``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None or value == "" else str(value)


@dataclass(frozen=True)
class Variant:
    """One candidate config.pbtxt for a model.

    ``config`` is a ModelConfig message. ``values`` are the fields the space varied besides
    instances, kind, max_batch_size and dynamic batching, which are read from ``config``
    (e.g. ``{"dynamic_batching.max_queue_delay_microseconds": 100}``); together they are
    :attr:`coordinates`. ``params`` is their display text for tables. ``name`` is assigned
    by the core (``<model>_config_<n>`` or ``<model>_config_default``), so generators may
    leave it empty.

    A pipeline's variant (an ensemble or a BLS model, :mod:`tsweep.pipeline`) carries the
    variants of its ``composing`` models, named ``<composing>_config_<n>``; its digest and
    params cover them. ``by_own_name``: they are loaded under their models' own names (a BLS
    model's code calls them by name), else under their variant names.
    """

    model: str
    config: Any
    values: Mapping[str, Any] = field(default_factory=dict)
    is_default: bool = False
    name: str = ""
    composing: Tuple["Variant", ...] = ()
    by_own_name: bool = False

    def __post_init__(self) -> None:
        repeated = sorted(set(READ_FROM_CONFIG) & set(self.values))
        if repeated:
            raise ValueError(f"Variant values must not repeat {repeated[0]!r}: it is read from the config")

    @property
    def coordinates(self) -> Coordinates:
        return Coordinates.of(self.config, self.values)

    @property
    def params(self) -> Dict[str, Any]:
        """What differs between variants, for tables: the displayed coordinates, then values."""
        c = self.coordinates
        own = {**{name: getattr(c, name) for name in DISPLAYED}, **dict(c.values)}
        if self.composing and not self.by_own_name:  # an ensemble's own instances and batching are its stages'
            stages = {name: " ".join(f"{part.model}:{cell(getattr(part.coordinates, name))}" for part in self.composing) for name in DISPLAYED}
            own = {**stages, **dict(c.values)}
        elif self.composing:  # a BLS model's own, then its composing models' displayed coordinates by name
            own = {**own, **{f"{part.model}.{name}": getattr(part.coordinates, name) for part in self.composing for name in DISPLAYED}}
        # then what each stage's space varied besides (its model_config_parameters)
        return {**own, **{f"{part.model}.{k}": v for part in self.composing for k, v in part.coordinates.values}}

    @property
    def digest(self) -> str:
        """Content hash of the config ignoring its name: equal configs share a digest."""
        msg = type(self.config)()
        msg.CopyFrom(self.config)
        msg.name = ""
        own = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()[:16]
        in_files = sorted((k, v) for k, v in self.values.items() if modeljson.is_file_value(k))
        if in_files:  # what the variant changes in the model's JSON files is its config too
            own = hashlib.sha256(f"{own}|{json.dumps(in_files)}".encode()).hexdigest()[:16]
        if not self.composing:
            return own
        parts = ",".join(f"{part.model}={part.digest}" for part in self.composing)
        return hashlib.sha256(f"{own}|{parts}|{int(self.by_own_name)}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SpaceSettings:
    """The user's bounds and lists for one model's config space (Model Analyzer's keys).

    Lists, when given, replace the automatic ranges: ``concurrency`` / ``request_rate`` the
    load levels, ``model_config_parameters`` the generated variants. ``request_rate_search``
    makes the automatic load range request rates. ``search_disable`` turns the automatic
    ranges off (the listed loads, else concurrency 1). ``gpu_available``: the
    variants use GPU instances (the run has a GPU, see :func:`tsweep.gpus.select`, and the
    model is not ``cpu_only``), as Model Analyzer does: a KIND_GPU count is per GPU.
    """

    min_instance_count: int = 1
    max_instance_count: int = 5
    min_model_batch_size: int = 1
    max_model_batch_size: int = 128
    min_concurrency: int = 1
    max_concurrency: int = 1024
    request_rate_search: bool = False
    min_request_rate: int = 16
    max_request_rate: int = 8092
    concurrency: Tuple[int, ...] = ()
    request_rate: Tuple[float, ...] = ()
    batch_sizes: Tuple[int, ...] = (1,)
    model_config_parameters: Mapping[str, Any] = field(default_factory=dict)
    search_disable: bool = False
    gpu_available: bool = False
    #: How many GPUs the server has (the ``gpus`` key), whatever the model's kind.
    gpu_count: int = 0


@dataclass(frozen=True)
class ConfigSpace:
    """Everything a search strategy may try for one model.

    ``gpus``: how many GPUs the server has. A KIND_GPU group's count is per GPU (Triton's
    rule, and Model Analyzer's instance bounds), so a strategy that reasons about how many
    instances serve at once multiplies by it (:func:`tsweep.modelconfig.instance_count`)."""

    model: ModelSpec
    variants: Tuple[Variant, ...]
    load_levels: Tuple[LoadLevel, ...]
    batch_sizes: Tuple[int, ...] = (1,)
    gpus: int = 0


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class PromptSettings:
    """The prompts of a generative model's requests (:mod:`tsweep.prompts`): synthetic ones
    whose input tokens (words) and requested output tokens are drawn from normal
    distributions (mean, stddev; at least 1), ``count`` of them from ``seed`` so that every
    config sees the same prompts; or the lines of a JSONL ``file``."""

    input_tokens_mean: int = 128
    input_tokens_stddev: float = 0.0
    output_tokens_mean: int = 16
    output_tokens_stddev: float = 0.0
    file: Optional[str] = None
    seed: int = 0
    count: int = 100


@dataclass(frozen=True)
class SequenceSettings:
    """How a stateful model's requests go out as sequences (perf_analyzer's sequence flags):
    ``length`` requests each, varied uniformly by ``variation`` percent either way; ids from
    ``id_start`` to ``id_end`` (0: no end); in an open loop ``slots`` sequences in flight.
    A sequence's next request always waits for its previous answer; ``serial`` records that
    perf_analyzer's --serial-sequences was given."""

    length: int = 20
    variation: float = 20.0
    id_start: int = 1
    id_end: int = 0
    serial: bool = False
    slots: int = 4


@dataclass(frozen=True)
class LoadSettings:
    """How requests are made and sent, for the load generator (``client_protocol`` picks it).

    ``shapes`` fixes variable input dimensions (``--shape``); ``input_data`` is ``random``,
    ``zero`` or a perf_analyzer-style JSON file; ``encoding`` is the HTTP body's (``binary``
    tensor extension or ``json``); ``distribution`` spaces an open loop's sends (``constant``
    or ``poisson``); ``timeout_s`` fails a request that takes longer; ``model_version`` and
    ``headers`` are perf_analyzer's ``--model-version`` and ``-H``."""

    protocol: str = "http"
    shapes: Optional[Mapping[str, Tuple[int, ...]]] = None
    input_data: str = "random"
    encoding: str = "binary"
    timeout_s: float = 30.0
    distribution: str = "constant"
    #: The model version requests name ("" leaves it to the server's version policy).
    model_version: str = ""
    #: Extra request headers (``-H``), sent with every request of either protocol.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: BYTES inputs without a data file: random letters of this length, or this string.
    string_length: int = 128
    string_data: Optional[str] = None
    #: Open loop on perf_analyzer's request intervals: the gaps between sends in microseconds,
    #: cycled through; when set they replace ``distribution`` (the load level is their mean rate).
    intervals_us: Tuple[float, ...] = ()
    #: ``system``: tensors travel through system shared memory regions (perf_analyzer's
    #: --shared-memory), outputs in regions of ``output_shared_memory_size`` bytes each.
    shared_memory: str = "none"
    output_shared_memory_size: int = 102400
    #: TLS to the server: gRPC's settings, and HTTPS's when the endpoint is ``https://``.
    tls: TlsSettings = field(default_factory=TlsSettings)
    #: Sequences asked for by the sequence keys; None: none asked (a model with
    #: sequence_batching still gets perf_analyzer's defaults, :mod:`tsweep.sequences`).
    sequences: Optional[SequenceSettings] = None
    #: Generative models: generation requests whose token stream is read (``streaming``), made
    #: from these prompts (docs/generative-models.md).
    streaming: bool = False
    prompts: PromptSettings = field(default_factory=PromptSettings)


@dataclass
class LoadWindow:
    """What a load generator did between two ``take_window`` calls.

    Latencies (in the histogram, ns) are from the *intended* send time in an open loop, so a
    server that falls behind shows its queueing. ``send_ns``/``recv_ns`` are the client's
    own time spent sending and receiving; ``sent``, ``late_sends`` and ``max_lateness_ns``
    say how well an open loop kept its schedule. The native generator's ``Window`` has these
    fields too (and more)."""

    duration_ns: int
    completed: int
    errors: int
    histogram: Any  # tsweep.ext.histogram.Histogram
    error_samples: List[Tuple[int, str]] = field(default_factory=list)
    send_ns: int = 0
    recv_ns: int = 0
    sent: int = 0
    late_sends: int = 0
    max_lateness_ns: int = 0
    in_flight: int = 0


def point_key(model: str, digest: str, load: "LoadLevel", batch_size: int, repeat: int = 0, combination: str = "") -> str:
    """The results store's identity of a point: same config, load and batch, same key; a
    point measured beside other models (:mod:`tsweep.combination`) also names its
    combination point, since the same variant and load beside other loads is another point."""
    key = f"{model}/{digest}/{load}/b{batch_size}" + (f"/{combination}" if combination else "")
    return f"{key}/r{repeat}" if repeat else key


@dataclass(frozen=True)
class Trial:
    """One point to measure: a variant under one load level at one client batch size."""

    variant: Variant
    load: LoadLevel
    batch_size: int = 1
    repeat: int = 0  # 0: the search's measurement; n > 0: the n-th re-measurement of the point

    @property
    def key(self) -> str:
        """Identity of the point in the results store (what resume compares)."""
        return point_key(self.variant.model, self.variant.digest, self.load, self.batch_size, self.repeat)

    @property
    def point(self) -> str:
        """The point this trial looks at, whichever repeat it is."""
        return point_key(self.variant.model, self.variant.digest, self.load, self.batch_size, 0)


@dataclass(frozen=True)
class Objective:
    """One ranking objective: a metric, its weight, and which way is better."""

    metric: str
    weight: float
    higher_is_better: bool = True


@dataclass(frozen=True)
class SearchGoal:
    """What the user wants, for strategies that stop early or skip hopeless variants.

    ``objectives`` and ``constraints`` are the ranking's (the model's own, else the global
    ones; the budget and minimum throughput included), for a strategy that scores a point
    as the ranker would (optuna); empty when a goal was built from the two bounds alone."""

    latency_budget_ms: Optional[float] = None
    min_throughput: Optional[float] = None
    #: The latency the budget bounds: the p99 unless ``percentile`` says another.
    latency_metric: str = "latency_p99_ms"
    objectives: Tuple[Objective, ...] = ()
    constraints: Tuple["Constraint", ...] = ()
    #: A streamed model's bound on a token latency (``ttft_p99_ms <= 300``), which a load
    #: walk keeps inside instead of the end-to-end budget (:func:`tsweep.goals.token_bound`).
    token_metric: str = ""
    token_budget_ms: Optional[float] = None

    @property
    def walk_bound(self) -> Tuple[str, Optional[float]]:
        """The latency a load walk keeps inside a budget, and that budget (None: no budget)."""
        if self.token_metric:
            return self.token_metric, self.token_budget_ms
        return self.latency_metric, self.latency_budget_ms


# --------------------------------------------------------------------------- results


#: How several looks at one point combine a metric (:attr:`MetricInfo.looks`).
INTERVAL = "interval"  # weighted by each look's 95% interval (tsweep.intervals.combine); needs ``interval``
MEAN = "mean"  # the plain mean of the looks that have it
MAX = "max"  # the highest look: a peak, e.g. memory (does it fit?)
COUNT = "count"  # how many looks there were
FIRST = "first"  # the first look's value


@dataclass(frozen=True)
class MetricInfo:
    """One metric, described once, so that rankers, the store and reports never hard-code it.

    ``label`` titles it in tables and charts (with the unit: :attr:`heading`); ``csv`` is its
    CSV column title when that differs from the heading (Model Analyzer's names for the core
    metrics). ``looks`` says how several looks at one point combine it (:data:`MEAN` unless
    said otherwise); ``interval`` names the Measurement field holding its 95% half-width, if
    it has one; ``rankable`` is False for figures that are no objective (a count of looks);
    ``windows`` says in words how a point's windows make it (for the docs); ``short`` titles
    it in narrow table columns.
    The catalogue of a run is :class:`tsweep.catalogue.Catalogue`.
    """

    name: str
    unit: str
    higher_is_better: bool
    label: str = ""
    csv: str = ""
    looks: str = MEAN
    interval: Optional[str] = None
    rankable: bool = True
    windows: str = ""
    short: str = ""

    @property
    def short_heading(self) -> str:
        """'p99 (ms)': the title of a narrow table column (``short``, else the label)."""
        label = self.short or self.label or self.name
        return f"{label} ({self.unit})" if self.unit and self.unit not in label else label

    @property
    def heading(self) -> str:
        """'GPU memory used (MB)': the label with its unit (once, if the label has it)."""
        label = self.label or self.name
        return f"{label} ({self.unit})" if self.unit and self.unit not in label else label

    @property
    def csv_title(self) -> str:
        return self.csv or self.heading

    @property
    def interval_title(self) -> str:
        """The CSV title of the interval's half-width: 'Throughput 95% CI (+/- infer/sec)'."""
        title, _, unit = self.csv_title.rpartition(" (")
        return f"{title} 95% CI (+/- {unit}" if title else f"{self.csv_title} 95% CI (+/-)"


@dataclass
class Measurement:
    """One measured point, exactly as stored: one row of the results store.

    ``status`` is ``ok`` (known to the precision asked for), ``unstable`` (window limit hit
    first; data and intervals kept) or ``failed`` (``error`` says why; metrics may be
    missing). ``throughput_ci`` and ``latency_p99_ci_ms`` are the half-widths of the 95%
    confidence intervals (``inf`` when one window left nothing to estimate them from; None
    when the row records none, e.g. written by hand: such figures count as exact); the
    :class:`tsweep.judge.Judge` decides with them.
    """

    model: str
    variant: str
    variant_digest: str
    load_kind: str
    load_value: float
    batch_size: int
    status: str
    throughput: Optional[float] = None
    latency_avg_ms: Optional[float] = None
    latency_p50_ms: Optional[float] = None
    latency_p90_ms: Optional[float] = None
    latency_p95_ms: Optional[float] = None
    latency_p99_ms: Optional[float] = None
    queue_ms: Optional[float] = None
    compute_input_ms: Optional[float] = None
    compute_infer_ms: Optional[float] = None
    compute_output_ms: Optional[float] = None
    client_send_ms: Optional[float] = None
    client_recv_ms: Optional[float] = None
    throughput_ci: Optional[float] = None  # half-width of the throughput's 95% interval (infer/s)
    latency_p99_ci_ms: Optional[float] = None  # half-width of p99's 95% interval (ms)
    server_batch_avg: Optional[float] = None  # requests per model execution: how full Triton's batches were
    requests: int = 0
    errors: int = 0
    windows: int = 0
    duration_s: float = 0.0
    error: str = ""
    metrics: Dict[str, float] = field(default_factory=dict)
    window_throughputs: List[float] = field(default_factory=list)
    window_p99s_ms: List[float] = field(default_factory=list)
    histogram: bytes = b""
    variant_params: Dict[str, Any] = field(default_factory=dict)
    repeat: int = 0
    client: str = ""  # which client measured the point, e.g. "native http", "tritonclient http (TLS)"
    #: The combination point this row was measured in, beside the other models' rows of the
    #: same id (same windows); empty for a model measured alone (:mod:`tsweep.combination`).
    combination: str = ""
    #: The lane that measured the point (:mod:`tsweep.lanes`), e.g. "local" or "lane 2";
    #: empty in rows stored before lanes existed.
    lane: str = ""
    id: Optional[int] = None
    looks: int = 1  # how many looks this row stands for (more than 1 only once combined; not stored)

    @property
    def load(self) -> LoadLevel:
        return LoadLevel(self.load_kind, self.load_value)

    @property
    def key(self) -> str:
        return point_key(self.model, self.variant_digest, self.load, self.batch_size, self.repeat, self.combination)

    @property
    def point(self) -> str:
        """The point measured, whichever repeat this row is."""
        return point_key(self.model, self.variant_digest, self.load, self.batch_size, 0, self.combination)

    def value(self, metric: str) -> Optional[float]:
        """A metric by name: a column of this row or one a collector reported."""
        if metric in _MEASUREMENT_COLUMNS:
            return getattr(self, metric)
        return self.metrics.get(metric)


_MEASUREMENT_COLUMNS = {f.name for f in dataclasses.fields(Measurement)}


@dataclass(frozen=True)
class Constraint:
    """A bound on one metric: ``min <= value <= max`` (either side optional)."""

    metric: str
    min: Optional[float] = None
    max: Optional[float] = None

    def miss(self, value: Optional[float]) -> float:
        """How far ``value`` misses the bound, relative to it; 0.0 when satisfied."""
        if value is None:
            return float("inf")
        if self.max is not None and value > self.max:
            return (value - self.max) / max(abs(self.max), 1e-12)
        if self.min is not None and value < self.min:
            return (self.min - value) / max(abs(self.min), 1e-12)
        return 0.0


@dataclass(frozen=True)
class RankedConfig:
    """A variant's place in the ranking, with the load point that represents it."""

    rank: int
    variant: str
    model: str
    best: Measurement
    passes: bool
    score: float
    misses: Mapping[str, float] = field(default_factory=dict)
    is_default: bool = False
    aliases: Tuple[str, ...] = ()  # other variant names with the very same config
    tied_with: Tuple[str, ...] = ()  # variants whose result differs by less than the noise
