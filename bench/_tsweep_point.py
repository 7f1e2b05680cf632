"""Measure one point with tsweep's measurement method and native HTTP load generator.

Run as a child process by bench/loadgen.py, so that its CPU time and peak RSS can be read
exactly from ``os.wait4``; prints one JSON line on stdout:

    python bench/_tsweep_point.py --url http://127.0.0.1:8000 --model add_sub \
        --config /path/to/add_sub/config.pbtxt --concurrency 4 --window-s 2

The load is built the way ``tsweep profile`` builds it (``tsweep.loads.make_load``) when that
module exists, otherwise from ``tsweep.inputs.request_bodies`` + ``HttpLoad`` directly.
``load_cpu_s`` is this process's CPU (all threads) from the start of ``measure()`` to its
end, i.e. without the interpreter start-up and imports that the parent's wait4 also counts.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

_T0 = time.monotonic()


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def point_arguments(ap: argparse.ArgumentParser, max_windows: int) -> None:
    """The arguments every one-point bench script takes (this one, _tsweep_stream_point.py)."""
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--config", required=True, type=Path, help="the served variant's config.pbtxt")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--warmup-s", type=float, default=0.5)
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--stable-windows", type=int, default=3)
    ap.add_argument("--max-windows", type=int, default=max_windows)


def method_of(args):
    """The measurement method those arguments ask for."""
    from tsweep.measure import MethodSettings

    return MethodSettings(
        window_s=args.window_s, throughput_precision=args.tolerance, latency_precision=args.tolerance, min_windows=args.stable_windows,
        max_windows=args.max_windows, warmup_s=args.warmup_s,
    )  # fmt: skip


class CountingLoad:
    """Pass-through around a load that counts every completed request, warm-up included."""

    def __init__(self, load):
        self.load = load
        self.completed = 0
        self.errors = 0

    def start(self):
        return self.load.start()

    def take_window(self):
        w = self.load.take_window()
        self.completed += w.completed
        self.errors += w.errors
        return w

    def stop(self):
        return self.load.stop()


def build_load(args, trial):
    """tsweep's own load factory when present (the ``http`` load-generator plugin; before it,
    ``tsweep.loads.make_load``), else the native generator by hand."""
    from tsweep.records import RunningServer

    try:
        from tsweep.pluginmanager import make_plugin_manager
        from tsweep.records import LoadSettings

        settings = LoadSettings(protocol="http", shapes={}, input_data=args.input_data, encoding=args.encoding)
        factory = make_plugin_manager().load_generator("http")
        return factory(trial, RunningServer(http_url=args.url), settings), "the http load-generator plugin"
    except (ImportError, AttributeError):
        pass
    try:
        from tsweep.loads import LoadSettings, make_load
    except ImportError:
        make_load = None
    if make_load is not None:
        settings = LoadSettings(protocol="http", shapes={}, input_data=args.input_data, encoding=args.encoding)
        return make_load(trial, RunningServer(http_url=args.url), settings), "tsweep.loads.make_load"

    from tsweep.ext.loadgen import HttpLoad, build_http_request
    from tsweep.inputs import request_bodies

    url = urlsplit(args.url)
    bodies = request_bodies(trial.variant.config, trial.batch_size, {})
    path = f"/v2/models/{trial.variant.name}/infer"
    reqs = [build_http_request(url.hostname, url.port, path, b, headers={"Content-Type": "application/json"}) for b in bodies]
    return HttpLoad(url.hostname, url.port, requests=reqs, concurrency=int(trial.load.value)), "HttpLoad(request_bodies) [json]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    point_arguments(ap, max_windows=10)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--encoding", choices=("binary", "json"), default="binary")
    ap.add_argument("--input-data", default="random", help="'random', 'zero' or a perf_analyzer-style JSON file")
    args = ap.parse_args()

    from tsweep.measure import measure
    from tsweep.modelconfig import read
    from tsweep.records import LoadLevel, Trial, Variant
    from tsweep.triton import TritonHTTP

    config = read(args.config)
    trial = Trial(Variant(args.model, config, {}, name=args.model), LoadLevel("concurrency", args.concurrency), args.batch_size)
    load, how = build_load(args, trial)
    counted = CountingLoad(load)
    client = TritonHTTP(args.url)
    settings = method_of(args)
    startup_s = time.monotonic() - _T0
    cpu0, t0 = _cpu_s(), time.monotonic()
    m = measure(trial, counted, lambda: client.stats(args.model), settings)
    cpu1, t1 = _cpu_s(), time.monotonic()
    print(json.dumps({
        "status": m.status,
        "error": m.error,
        "requests": m.requests,
        "throughput": m.throughput,
        "p50_ms": m.latency_p50_ms,
        "p99_ms": m.latency_p99_ms,
        "windows": m.windows,
        "window_throughputs": m.window_throughputs,
        "wall_s": m.duration_s,
        "measure_wall_s": t1 - t0,
        "startup_s": startup_s,
        "load_cpu_s": cpu1 - cpu0,
        "completed_total": counted.completed,
        "errors_total": counted.errors,
        "load": how,
    }), flush=True)  # fmt: skip
    return 0 if m.status in ("ok", "unstable") else 1


if __name__ == "__main__":
    sys.exit(main())
