"""Measure one streamed point with tsweep's measurement method and token-stream load.

Run as a child process by bench/vs_genai_perf.py, so that its CPU time can be read exactly
from ``os.wait4``; prints one JSON line on stdout:

    python bench/_tsweep_stream_point.py --url http://127.0.0.1:8000 --model token_engine \
        --config /path/to/token_engine/config.pbtxt --concurrency 4 --window-s 2

The load is the ``http`` load-generator plugin with ``streaming`` on, built as ``tsweep
profile`` builds it: the native generate_stream client, synthetic prompts of ``--isl``
words asking ``--osl`` tokens. ``load_cpu_s`` is this process's CPU from the start of
``measure()`` to its end (without the interpreter's start-up and imports, which the
parent's wait4 counts too).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from _tsweep_point import _T0, _cpu_s, method_of, point_arguments  # run as a script from bench/: its folder is on sys.path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    point_arguments(ap, max_windows=5)
    ap.add_argument("--isl", type=int, default=64, help="prompt length in tokens (words)")
    ap.add_argument("--osl", type=int, default=16, help="output tokens asked per request")
    args = ap.parse_args()

    from tsweep.measure import measure
    from tsweep.modelconfig import read
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.records import LoadLevel, LoadSettings, PromptSettings, RunningServer, Trial, Variant
    from tsweep.triton import TritonHTTP

    trial = Trial(Variant(args.model, read(args.config), {}, name=args.model), LoadLevel("concurrency", args.concurrency))
    asked = PromptSettings(input_tokens_mean=args.isl, output_tokens_mean=args.osl)
    settings = LoadSettings(protocol="http", streaming=True, prompts=asked)
    load = make_plugin_manager().load_generators()["http"](trial, RunningServer(http_url=args.url), settings)
    client = TritonHTTP(args.url)
    method = method_of(args)
    startup_s = time.monotonic() - _T0
    cpu0 = _cpu_s()
    m = measure(trial, load, lambda: client.stats(args.model), method)
    cpu1 = _cpu_s()
    f = m.metrics
    print(json.dumps({
        "status": m.status, "error": m.error, "requests": m.requests, "windows": m.windows, "client": m.client,
        "ttft_p50_ms": f.get("ttft_p50_ms"), "ttft_p99_ms": f.get("ttft_p99_ms"),
        "itl_p50_ms": f.get("itl_p50_ms"), "itl_p99_ms": f.get("itl_p99_ms"),
        "output_tokens_avg": f.get("output_tokens_avg"), "tokens_per_s": f.get("output_tokens_per_s"),
        "request_throughput": m.throughput, "startup_s": startup_s, "load_cpu_s": cpu1 - cpu0,
    }), flush=True)  # fmt: skip
    return 0 if m.status in ("ok", "unstable") else 1


if __name__ == "__main__":
    sys.exit(main())
