"""tsweep's token-stream load against genai-perf, on the example token_engine, in one run.

    python bench/vs_genai_perf.py                       # concurrency 1 4 8, 2 s windows (~3 min)
    python bench/vs_genai_perf.py --concurrency 1 8 --window-s 1 --json out.json

One tritonserver (tsweep's ``LocalLauncher``, embedded server, loopback only) serves
``examples/model_repository/token_engine`` with its own settings. At each concurrency both
clients measure one point over HTTP generate_stream, one after the other, the order
alternating from level to level, with the same prompt length (``--isl`` words) and output
length asked (``--osl`` tokens), the same window length and 10% stability:

- **tsweep**: ``bench/_tsweep_stream_point.py`` runs ``tsweep.measure.measure`` with the
  ``http`` load-generator plugin and ``streaming`` on, as ``tsweep profile`` does;
- **genai-perf** (``--endpoint-type generate --endpoint v2/models/token_engine/generate_stream
  --streaming``), which drives perf_analyzer and reads its per-response timestamps.

Printed per level: each client's TTFT and ITL p50/p99, tokens/s, and CPU (user + system, from
``os.wait4`` of the child, so genai-perf's own perf_analyzer child is in its figure) per
request and per output token, requests counted by the server over the child's life; then the
ratios tsweep / genai-perf. "inner ms/req" is the sending loop alone: tsweep's ``measure()``
(without the interpreter's start-up and imports), and for genai-perf the perf_analyzer command
it ran, run once more on its own with genai-perf's inputs. The definitions differ in one place: tsweep's ITL percentiles are
over every gap between two tokens, genai-perf's over each request's mean gap ((latency - TTFT)
/ (tokens - 1)); the p50s agree when gaps are alike, a p99 of means is lower than a p99 of gaps.

Setup (first run): perf_analyzer 2.51.0 from the tritonclient wheel, as ``bench/loadgen.py``
fetches it (the PyPI ``perf-analyzer`` name holds only a placeholder); genai-perf into its own
venv ``bench/.cache/genai-venv`` (``pip install genai-perf``: about 1 GB with transformers,
pandas, plotly, so not in tsweep's venv); a word-level tokenizer built from genai-perf's own
Shakespeare corpus into ``bench/.cache/word-tokenizer`` (genai-perf downloads a Hugging Face
tokenizer by default, which cannot be fetched here; one word = one token is also how
token_engine counts, so both clients ask for and count the same tokens).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import loadgen  # noqa: E402  the perf_analyzer fetch and the wait4 child runner

CACHE = loadgen.CACHE
MODEL = "token_engine"
TOKENIZER = CACHE / "word-tokenizer"

_MAKE_TOKENIZER = r"""
import json, sys
from pathlib import Path
import genai_perf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
corpus = (Path(genai_perf.__file__).parent / "inputs" / "retrievers" / "shakespeare.txt").read_text()
vocab = {"[UNK]": 0}
for word in sorted(set(corpus.split())) + [f"tok{i}" for i in range(1, 4097)]:
    vocab.setdefault(word, len(vocab))
tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
tok.save(str(out / "tokenizer.json"))
(out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]"}))
"""


def ensure_genai_perf(venv: Path) -> str:
    """genai-perf in its own venv (created on first use); returns its version line."""
    exe = venv / "bin" / "genai-perf"
    if not exe.is_file():
        print(f"genai-perf not in {venv}: creating the venv and installing it (pip install genai-perf)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "genai-perf"], check=True, timeout=1200)
    if not (TOKENIZER / "tokenizer.json").is_file():
        subprocess.run([str(venv / "bin" / "python"), "-c", _MAKE_TOKENIZER, str(TOKENIZER)], check=True, timeout=300)
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    return (done.stdout + done.stderr).strip().splitlines()[-1]


class Bench:
    def __init__(self, args, url: str, config: Path, workdir: Path, venv: Path):
        from tsweep.triton import TritonHTTP

        self.args, self.url, self.config, self.workdir, self.venv = args, url, config, workdir, venv
        self.client = TritonHTTP(url)
        self.seq = 0
        self.env = loadgen.perf_analyzer_env()
        self.env["PATH"] = os.pathsep.join((str(loadgen.PA_BIN.parent), self.env.get("PATH", "")))

    def _served(self, run) -> tuple:
        before = self.client.stats(MODEL).success_count
        res = run()
        return res, self.client.stats(MODEL).success_count - before

    def tsweep_point(self, concurrency: int) -> dict:
        self.seq += 1
        a = self.args
        argv = [
            sys.executable, str(BENCH / "_tsweep_stream_point.py"), "--url", self.url, "--model", MODEL, "--config", str(self.config),
            "--concurrency", str(concurrency), "--window-s", str(a.window_s), "--max-windows", str(a.max_windows),
            "--isl", str(a.isl), "--osl", str(a.osl),
        ]  # fmt: skip
        tag = f"{self.seq:03d}-tsweep-c{concurrency}"
        res, served = self._served(lambda: loadgen.run_child(argv, dict(os.environ), self.workdir, tag, loadgen.child_timeout(a.window_s, a.max_windows)))
        lines = [line for line in res["stdout"].splitlines() if line.startswith("{")]
        point = json.loads(lines[-1]) if lines else {"status": "failed", "error": res["stderr"].strip()[-500:]}
        return self._finish("tsweep", point, res, served)

    def genai_point(self, concurrency: int) -> dict:
        self.seq += 1
        a = self.args
        artifacts = self.workdir / f"{self.seq:03d}-genai-c{concurrency}"
        argv = [
            str(self.venv / "bin" / "genai-perf"), "profile", "-m", MODEL, "--endpoint-type", "generate",
            "--endpoint", f"v2/models/{MODEL}/generate_stream", "--streaming", "-u", self.url.split("//", 1)[-1],
            "--tokenizer", str(TOKENIZER), "--synthetic-input-tokens-mean", str(a.isl), "--synthetic-input-tokens-stddev", "0",
            "--output-tokens-mean", str(a.osl), "--concurrency", str(concurrency), "--measurement-interval", str(int(a.window_s * 1000)),
            "--stability-percentage", "10", "--warmup-request-count", str(2 * concurrency), "--artifact-dir", str(artifacts),
        ]  # fmt: skip
        res, served = self._served(lambda: loadgen.run_child(argv, self.env, self.workdir, artifacts.name, 60 + 12 * a.window_s * a.max_windows))
        found = sorted(artifacts.glob("*/profile_export_genai_perf.json"))
        if res["rc"] != 0 or not found:
            return self._finish("genai-perf", {"status": "failed", "error": (res["stderr"] or res["stdout"]).strip()[-500:]}, res, served)
        d = json.loads(found[-1].read_text())
        pa = self.pa_alone(concurrency, found[-1].parent / "inputs.json", artifacts)
        point = {
            "status": "ok", "requests": d["request_count"]["avg"],
            "ttft_p50_ms": d["time_to_first_token"]["p50"], "ttft_p99_ms": d["time_to_first_token"]["p99"],
            "itl_p50_ms": d["inter_token_latency"]["p50"], "itl_p99_ms": d["inter_token_latency"]["p99"],
            "output_tokens_avg": d["output_sequence_length"]["avg"], "tokens_per_s": d["output_token_throughput"]["avg"],
        }  # fmt: skip
        point = self._finish("genai-perf", point, res, served)
        if pa["served"]:  # the perf_analyzer part alone: the loop that sends and times requests
            point["inner_ms_per_request"] = pa["cpu_s"] / pa["served"] * 1e3
        return point

    def pa_alone(self, concurrency: int, inputs: Path, artifacts: Path) -> dict:
        """The perf_analyzer command genai-perf ran (as its log shows it), run again on its
        own with genai-perf's inputs: its CPU without genai-perf's Python around it."""
        a = self.args
        argv = [
            str(loadgen.PA_BIN), "-m", MODEL, "--async", "--warmup-request-count", str(2 * concurrency), "--stability-percentage", "10",
            "--measurement-interval", str(int(a.window_s * 1000)), "-i", "http", "-u", self.url.split("//", 1)[-1],
            "--concurrency-range", str(concurrency), "--service-kind", "openai", "--endpoint", f"v2/models/{MODEL}/generate_stream",
            "--input-data", str(inputs), "--profile-export-file", str(artifacts / "pa_alone_export.json"),
        ]  # fmt: skip
        res, served = self._served(lambda: loadgen.run_child(argv, self.env, self.workdir, artifacts.name + "-pa-alone", 60 + 12 * a.window_s * a.max_windows))
        return {"cpu_s": res["cpu_s"], "served": served if res["rc"] == 0 else 0}

    @staticmethod
    def _finish(client: str, point: dict, res: dict, served: int) -> dict:
        tokens = served * (point.get("output_tokens_avg") or 0.0)
        if point.get("load_cpu_s") is not None and served:  # tsweep's measure() alone, without start-up and imports
            point["inner_ms_per_request"] = point["load_cpu_s"] / served * 1e3
        point.update(
            client=client, rc=res["rc"], cpu_s=res["cpu_s"], maxrss_mb=res["maxrss_mb"], served=served,
            cpu_ms_per_request=res["cpu_s"] / served * 1e3 if served else None, cpu_us_per_token=res["cpu_s"] / tokens * 1e6 if tokens else None,
        )  # fmt: skip
        return point


def ratio(a, b) -> Optional[float]:
    return a / b if a is not None and b not in (None, 0) else None


def geomean(values) -> Optional[float]:
    got = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in got) / len(got)) if got else None


COLUMNS = ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "tokens_per_s", "cpu_ms_per_request", "cpu_us_per_token", "inner_ms_per_request")
HEADINGS = ("TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "tok/s", "CPU ms/req", "CPU us/tok", "inner ms/req")


def _f(v, digits=2) -> str:
    return f"{v:>13.{digits}f}" if isinstance(v, (int, float)) else f"{'-':>13}"


def table(rows: List[dict]) -> str:
    lines = [f"{'conc':>4} {'client':<11}" + "".join(f"{h:>13}" for h in HEADINGS)]
    ratios: Dict[str, list] = {c: [] for c in COLUMNS}
    for conc, t, g in rows:
        for p in (t, g):
            lines.append(f"{conc:>4} {p['client']:<11}" + "".join(_f(p.get(c)) for c in COLUMNS) + ("" if p["status"] != "failed" else f"  failed: {p.get('error', '')[:80]}"))
        r = {c: ratio(t.get(c), g.get(c)) for c in COLUMNS}
        for c in COLUMNS:
            ratios[c].append(r[c])
        lines.append(f"{conc:>4} {'ratio t/g':<11}" + "".join(_f(r[c]) for c in COLUMNS))
    lines.append(f"{'all':>4} {'geomean':<11}" + "".join(_f(geomean(ratios[c])) for c in COLUMNS))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--max-windows", type=int, default=5)
    ap.add_argument("--isl", type=int, default=64)
    ap.add_argument("--osl", type=int, default=16)
    ap.add_argument("--genai-venv", type=Path, default=CACHE / "genai-venv")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from tsweep import repository
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings, Variant
    from tsweep.triton import TritonHTTP

    try:
        pa = loadgen.ensure_perf_analyzer()
        genai = ensure_genai_perf(args.genai_venv)
    except (loadgen.BenchError, subprocess.CalledProcessError) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    workdir = loadgen.LAST_RUN
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    repo = workdir / "repo"
    repository.prepare_output(repo, override=False)
    (model,) = repository.find_models(str(loadgen.EXAMPLES), [MODEL])
    repository.write_variant(repo, model, Variant(MODEL, model.config, {}, is_default=True, name=MODEL))
    launcher = LocalLauncher(LaunchSettings(model_repository=repo, log_dir=workdir / "server-log", ready_timeout_s=120))
    server = launcher.start()
    rows = []
    try:
        TritonHTTP(server.http_url).load_model(MODEL)
        bench = Bench(args, server.http_url, repo / MODEL / "config.pbtxt", workdir, args.genai_venv)
        print(f"{pa}; {genai}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
        for i, conc in enumerate(args.concurrency):
            first, second = (bench.tsweep_point, bench.genai_point) if i % 2 == 0 else (bench.genai_point, bench.tsweep_point)
            a, b = first(conc), second(conc)
            t, g = (a, b) if a["client"] == "tsweep" else (b, a)
            rows.append((conc, t, g))
            print(f"  c={conc}: tsweep {t['status']}, genai-perf {g['status']}", flush=True)
    finally:
        launcher.stop()
    print(f"\ntoken_engine over HTTP generate_stream, isl {args.isl} words, osl {args.osl} tokens, {args.window_s:g} s windows; "
          f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([{"concurrency": c, "tsweep": t, "genai_perf": g} for c, t, g in rows], indent=2))
    return 0 if all(t["status"] != "failed" and g["status"] != "failed" for _, t, g in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
