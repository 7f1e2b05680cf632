"""The metric catalogue: every metric tsweep knows, declared once.

A metric's facts (name, unit, which direction is better, its titles, how a point's windows
make it, how several looks at one point combine, whether it can be an objective or a
constraint, where its 95% interval is kept) live in one :class:`MetricInfo` here, or in the
collector plugin that measures it (``tsweep_metric_infos``). Everything that lists metrics
reads them from here instead of naming them again:

* the results store's columns (:mod:`tsweep.store`),
* combining repeated looks (:mod:`tsweep.repeats`),
* which metrics an objective or a constraint may name (:mod:`tsweep.goals`),
* the CSV export's columns and the titles of tables and charts (reporters).

Three kinds of metric:

* **core** metrics, measured on every point: a column of the ``measurements`` table and a
  field of :class:`tsweep.records.Measurement` (a test keeps the two in step);
* **derived** metrics, computed from a point's figures by the core (how full Triton's
  batches were, how many looks a combined point stands for, how late an open loop sent);
* **token** metrics of streaming points (generative models: :mod:`tsweep.tokens`);
* **collected** metrics, reported by collector plugins into ``Measurement.metrics``.
"""
from __future__ import annotations

from typing import Dict, Iterable, Iterator, List, Mapping

from tsweep.records import COUNT, INTERVAL, MAX, MetricInfo

#: Per-device figures are stored as ``gpu/<uuid>/<metric>``; ``gpu_<metric>`` describes them.
PER_GPU_PREFIX = "gpu/"

#: Measured on every point: columns of the store, fields of Measurement, in CSV order.
CORE: tuple = (
    MetricInfo("throughput", "infer/s", True, "Throughput", short="Throughput", csv="Throughput (infer/sec)", looks=INTERVAL,
               interval="throughput_ci", windows="completed responses x client batch / judged time"),
    MetricInfo("latency_p99_ms", "ms", False, "p99 latency", short="p99", csv="p99 Latency (ms)", looks=INTERVAL,
               interval="latency_p99_ci_ms", windows="99th percentile of all judged windows' merged histogram"),
    MetricInfo("latency_p95_ms", "ms", False, "p95 latency", short="p95", csv="p95 Latency (ms)", windows="percentile of the merged histogram"),
    MetricInfo("latency_p90_ms", "ms", False, "p90 latency", short="p90", csv="p90 Latency (ms)", windows="percentile of the merged histogram"),
    MetricInfo("latency_p50_ms", "ms", False, "p50 latency", short="p50", csv="p50 Latency (ms)", windows="percentile of the merged histogram"),
    MetricInfo("latency_avg_ms", "ms", False, "Avg latency", short="Avg", csv="Avg Latency (ms)", windows="mean of the merged histogram"),
    MetricInfo("queue_ms", "ms", False, "Server queue", short="Queue", csv="Server Queue (ms)", windows="Triton's statistics delta / successes"),
    MetricInfo("compute_input_ms", "ms", False, "Compute input", short="Input", csv="Server Compute Input (ms)", windows="Triton's statistics delta / successes"),
    MetricInfo("compute_infer_ms", "ms", False, "Compute infer", short="Infer", csv="Server Compute Infer (ms)", windows="Triton's statistics delta / successes"),
    MetricInfo("compute_output_ms", "ms", False, "Compute output", short="Output", csv="Server Compute Output (ms)", windows="Triton's statistics delta / successes"),
    MetricInfo("client_send_ms", "ms", False, "Client send", short="Send", csv="Client Send (ms)", windows="client time spent sending / responses"),
    MetricInfo("client_recv_ms", "ms", False, "Client receive", short="Receive", csv="Client Receive (ms)", windows="client time spent receiving / responses"),
    MetricInfo("server_batch_avg", "requests", True, "Server batch", short="Batch", csv="Server Batch Avg (requests)",
               windows="Triton's inferences / executions: how full the dynamic batcher's batches were"),
)  # fmt: skip

#: Computed by the core from a point's figures, kept in ``Measurement.metrics``.
DERIVED: tuple = (
    MetricInfo("looks", "", False, "Looks", looks=COUNT, rankable=False, windows="looks at the point combined into this row"),
    MetricInfo("late_send_fraction", "", False, "Late sends", csv="Late Send Fraction", looks=MAX,
               windows="open loop: sends later than planned / sends"),
    MetricInfo("max_lateness_ms", "ms", False, "Worst lateness", csv="Max Send Lateness (ms)", looks=MAX,
               windows="open loop: the latest send behind its plan"),
)  # fmt: skip

#: Streaming points of generative models (:mod:`tsweep.tokens`), kept in ``Measurement.metrics``;
#: their end-to-end request latency is the core ``latency_*`` figures, requests/s the throughput.
TOKEN: tuple = (
    MetricInfo("ttft_avg_ms", "ms", False, "Avg time to first token", short="TTFT avg", csv="Avg Time To First Token (ms)", windows="streams: mean of the merged histogram of send -> first token"),
    MetricInfo("ttft_p50_ms", "ms", False, "p50 time to first token", short="TTFT p50", csv="p50 Time To First Token (ms)", windows="streams: percentile of send -> first token"),
    MetricInfo("ttft_p90_ms", "ms", False, "p90 time to first token", short="TTFT p90", csv="p90 Time To First Token (ms)", windows="streams: percentile of send -> first token"),
    MetricInfo("ttft_p99_ms", "ms", False, "p99 time to first token", short="TTFT p99", csv="p99 Time To First Token (ms)", windows="streams: percentile of send -> first token"),
    MetricInfo("itl_avg_ms", "ms", False, "Avg inter-token latency", short="ITL avg", csv="Avg Inter-Token Latency (ms)", windows="streams: mean of every gap between two tokens of a request"),
    MetricInfo("itl_p50_ms", "ms", False, "p50 inter-token latency", short="ITL p50", csv="p50 Inter-Token Latency (ms)", windows="streams: percentile of the gaps between tokens"),
    MetricInfo("itl_p90_ms", "ms", False, "p90 inter-token latency", short="ITL p90", csv="p90 Inter-Token Latency (ms)", windows="streams: percentile of the gaps between tokens"),
    MetricInfo("itl_p99_ms", "ms", False, "p99 inter-token latency", short="ITL p99", csv="p99 Inter-Token Latency (ms)", windows="streams: percentile of the gaps between tokens"),
    MetricInfo("output_tokens_per_s", "tokens/s", True, "Output token throughput", short="Tokens/s", csv="Output Token Throughput (tokens/sec)",
               windows="streams: tokens of the completed requests / judged time"),
    MetricInfo("output_tokens_avg", "tokens", True, "Output tokens per request", short="Out tokens", csv="Avg Output Tokens", rankable=False,
               windows="streams: tokens of the completed requests / completed requests"),
    MetricInfo("output_tokens_asked_avg", "tokens", True, "Output tokens asked", short="Asked tokens", csv="Avg Output Tokens Asked", rankable=False,
               windows="streams: the mean output length the prompts asked for"),
)  # fmt: skip


class Catalogue(Mapping[str, MetricInfo]):
    """The metrics of one run: the core's and derived ones first, then the plugins'.

    A name described twice keeps its first description, so no plugin redefines throughput.
    A read-only mapping from name to :class:`MetricInfo`."""

    def __init__(self, plugin_infos: Iterable[MetricInfo] = ()):
        self._infos: Dict[str, MetricInfo] = {}
        for info in (*CORE, *DERIVED, *TOKEN, *plugin_infos):
            self._infos.setdefault(info.name, info)

    def __getitem__(self, name: str) -> MetricInfo:
        return self._infos[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)

    def rankable(self) -> List[str]:
        """The names an objective or a constraint may use."""
        return [name for name, info in self._infos.items() if info.rankable]

    def info(self, name: str) -> MetricInfo:
        """``name``'s description. A per-GPU key (``gpu/<uuid>/memory_used_mb``) or a bare
        per-GPU name (``memory_used_mb``) is described by ``gpu_memory_used_mb``; a metric
        nobody described is titled by its bare name."""
        bare = name.rpartition("/")[2] if name.startswith(PER_GPU_PREFIX) else name
        for candidate in (name, bare, f"gpu_{bare}"):
            if candidate in self._infos:
                return self._infos[candidate]
        return MetricInfo(bare, "", False, bare)

    def heading(self, name: str) -> str:
        """'GPU memory used (MB)': a column or axis title (the unit once, if the label has it)."""
        return self.info(name).heading

    def short(self, name: str) -> str:
        """'p99 (ms)': the title of a narrow table column."""
        return self.info(name).short_heading

    def combine_rule(self, name: str) -> str:
        """How looks at one point combine ``name`` (:data:`MEAN` for metrics nobody described)."""
        return self.info(name).looks


def columns() -> List[MetricInfo]:
    """The core metrics, in the order of the store's columns and the CSV export."""
    return list(CORE)


#: The core's own metrics, for callers without a run's plugins (a search's combined looks):
#: collected metrics then combine by the mean.
BUILT_IN = Catalogue()
