"""Generative models (issue 18): prompts, streaming load and token metrics, on the example
token_engine (a decoupled python model that behaves like a continuous-batching engine with
known timing: examples/model_repository/token_engine/1/model.py).

The server tests load token_engine variants with slow, fixed timing and check the stored
token figures against what the engine is known to do: with one sequence at a time, time to
first token = prefill + one decode step and every gap between tokens = one decode step. Sleeps
only ever overshoot, so the figures are bounded below tightly and above loosely (a busy
2-core machine delays wake-ups); medians are compared, not tails.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep
from tsweep import catalogue, goals, prompts, repository
from tsweep.errors import UsageError
from tsweep.measure import MethodSettings, measure
from tsweep.records import LoadLevel, LoadSettings, Measurement, PromptSettings, Trial, Variant
from tsweep.triton import TritonHTTP

# ---------------------------------------------------------------------------- prompts


def test_synthetic_prompts_are_the_same_for_the_same_seed_and_follow_their_distribution():
    asked = PromptSettings(input_tokens_mean=40, input_tokens_stddev=8, output_tokens_mean=20, output_tokens_stddev=4, seed=7, count=400)
    made = prompts.make(asked)
    assert made == prompts.make(asked)  # every config sees the same prompts
    assert made != prompts.make(PromptSettings(**{**asked.__dict__, "seed": 8}))
    assert all(len(p.text.split()) == p.input_tokens >= 1 and p.max_tokens >= 1 for p in made)
    mean_in = sum(p.input_tokens for p in made) / len(made)
    mean_out = sum(p.max_tokens for p in made) / len(made)
    assert 38 < mean_in < 42 and 19 < mean_out < 21
    assert len({p.input_tokens for p in made}) > 10  # spread, not one length
    fixed = prompts.make(PromptSettings(input_tokens_mean=12, output_tokens_mean=5, count=3))
    assert [(p.input_tokens, p.max_tokens) for p in fixed] == [(12, 5)] * 3


def test_a_prompt_file_gives_text_or_lengths_and_a_bad_line_names_its_number(tmp_path):
    good = tmp_path / "prompts.jsonl"
    good.write_text('{"text": "tell me a story", "max_tokens": 7}\n\n{"input_tokens": 5}\n')
    made = prompts.make(PromptSettings(file=str(good), output_tokens_mean=3))
    assert [(p.text, p.input_tokens, p.max_tokens) for p in made][0] == ("tell me a story", 4, 7)
    assert (made[1].input_tokens, made[1].max_tokens, len(made[1].text.split())) == (5, 3, 5)
    for line, why in [
        ('{"text": "ok"}\nnot json\n', "not JSON"),
        ('{"text": "ok"}\n{"text": "a", "input_tokens": 3}\n', "does not fit"),
        ('{"text": "ok"}\n{"input_tokens": 0}\n', "input_tokens 0 is not a positive integer"),
        ('{"text": "ok"}\n{"text": "a", "max_tokens": "many"}\n', "max_tokens 'many' is not a positive integer"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(line)
        with pytest.raises(UsageError) as err:
            prompts.make(PromptSettings(file=str(bad)))
        assert str(err.value).startswith(f"prompt file {bad}:2: {why}") and "\n" not in str(err.value)


# ------------------------------------------------------------------- the catalogue


def test_token_metrics_are_in_the_catalogue_and_usable_as_constraints_and_objectives():
    for name in ("ttft_avg_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "itl_avg_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms", "output_tokens_per_s"):
        assert name in catalogue.BUILT_IN.rankable()
    assert not catalogue.BUILT_IN["ttft_p99_ms"].higher_is_better and catalogue.BUILT_IN["output_tokens_per_s"].higher_is_better
    from tsweep.config import load_config

    config = load_config(None, {"constraints": {"ttft_p99_ms": {"max": 300}}, "objectives": {"output_tokens_per_s": 1}})
    found = goals.for_model(config, catalogue.BUILT_IN)
    assert [(c.metric, c.max) for c in found.constraints] == [("ttft_p99_ms", 300)]
    assert found.objectives == {"output_tokens_per_s": 1}


def test_a_ttft_budget_is_what_the_adaptive_search_bisects_against():
    """Point 2: a streamed model's TTFT bound becomes its search goal's walk bound, so the
    load walk stops and bisects where TTFT p99 crosses it, though the end-to-end p99 stays
    far inside; a model that is not streamed keeps the end-to-end latency."""
    from tests.test_search import adaptive, run_strategy, space
    from tsweep.config import load_config

    asked = {"constraints": {"ttft_p99_ms": {"max": 24}, "itl_p99_ms": {"max": 50}}, "objectives": {"output_tokens_per_s": 1}}
    streamed = goals.for_model(load_config(None, {**asked, "model_type": "LLM"}), catalogue.BUILT_IN).goal
    assert streamed.walk_bound == ("ttft_p99_ms", 24)  # TTFT before ITL: it grows with load first
    assert goals.for_model(load_config(None, asked), catalogue.BUILT_IN).goal.walk_bound == ("latency_p99_ms", None)
    s = space(search_disable=True, concurrency=(1, 2, 4, 8, 16, 32))
    # TTFT p99 = 2 ms x concurrency (requests queue for admission); end-to-end p99 = 1 ms x concurrency
    figures = lambda i, b, conc, d: {"ttft_p99_ms": 2.0 * conc, "itl_p99_ms": 5.0, "output_tokens_per_s": 16.0 * conc}  # noqa: E731
    history = run_strategy(adaptive(s, streamed), lambda i, b, conc, d: 1.0 * conc, metrics=figures)
    # 16 breaks 24 ms of TTFT (32 ms); the line through (8, 16 ms) and (16, 32 ms) crosses at 12
    assert [int(m.load_value) for m in history] == [1, 2, 4, 8, 16, 12]


# ------------------------------------------------------------------ the space


def test_the_manual_space_varies_config_parameters_and_model_json_fields(tmp_path):
    """Point 4: config.pbtxt ``parameters`` entries (given as their values) and fields of the
    model's 1/model.json join one product; each variant's folder gets its own model.json, and
    every other file stays the model's own."""
    from tsweep.plugins.search.manual_space import variants

    (model,) = repository.find_models(str(MODEL_REPOSITORY), ["token_engine"])
    found = variants(model, {"parameters": {"decode_base_ms": [2, 6]}, "1/model.json": {"max_num_seqs": [1, 8]}})
    assert [v.is_default for v in found] == [True, False, False, False, False]
    chosen = [(v.config.parameters["decode_base_ms"].string_value, v.values["1/model.json:max_num_seqs"]) for v in found[1:]]
    assert sorted(chosen) == [("2", 1), ("2", 8), ("6", 1), ("6", 8)]
    assert all(v.config.parameters["prefill_base_ms"].string_value == "4" for v in found)  # other entries kept
    assert len({v.digest for v in found}) == 5  # a JSON field alone makes a different variant
    out = tmp_path / "out"
    repository.prepare_output(out, override=False)
    own = (model.path / "1" / "model.json").read_text()
    for v in found:
        named = dataclasses.replace(v, name=f"v{found.index(v)}")
        folder = repository.write_variant(out, model, named)
        written = json.loads((folder / "1" / "model.json").read_text())
        assert written == ({"max_num_seqs": v.values["1/model.json:max_num_seqs"]} if not v.is_default else json.loads(own))
        assert (folder / "1" / "model.py").read_bytes() == (model.path / "1" / "model.py").read_bytes()
    assert (model.path / "1" / "model.json").read_text() == own  # the user's file untouched


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"1/nope.json": {"max_num_seqs": [1]}}, "model_config_parameters of 'token_engine' name '1/nope.json', which is not a file in "),
        ({"../token_engine/1/model.json": {"max_num_seqs": [1]}}, "model_config_parameters of 'token_engine' name the file '../token_engine/1/model.json': give a path inside"),
        ({"1/model.json": {"max_num_sequences": [1]}}, "model_config_parameters of 'token_engine': 1/model.json has no field 'max_num_sequences': use one of its fields (max_num_seqs)"),
        ({"1/model.json": [1, 2]}, "model_config_parameters of 'token_engine': 1/model.json must map the file's fields to lists of values"),
        ({"1/list.json": {"a": [1]}}, "holds a JSON list, not an object: only an object's fields can be varied"),
        ({"1/broken.json": {"a": [1]}}, "is not valid JSON ("),
    ],
)
def test_a_bad_json_knob_is_one_line(tmp_path, parameters, message):
    import shutil

    from tsweep.plugins.search.manual_space import variants

    shutil.copytree(MODEL_REPOSITORY / "token_engine", tmp_path / "token_engine")
    (tmp_path / "token_engine" / "1" / "list.json").write_text("[1, 2]\n")
    (tmp_path / "token_engine" / "1" / "broken.json").write_text("{max_num_seqs: 1}\n")
    (model,) = repository.find_models(str(tmp_path), ["token_engine"])
    with pytest.raises(UsageError) as err:
        variants(model, parameters)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("loading, refused", [("config", True), ("files", False)])
def test_a_varied_json_file_needs_remote_loading_to_send_the_files(tmp_path, loading, refused):
    """In remote mode a server that reloads its own copy of the model cannot take a changed
    model.json: refused in one line before anything runs, unless the load sends the files."""
    from types import SimpleNamespace

    from tsweep import settings
    from tsweep.config import load_config
    from tsweep.loading import RequestLoading

    path = tmp_path / "c.yaml"
    path.write_text(f"remote_model_loading: {loading}\nprofile_models:\n  token_engine:\n    model_config_parameters: {{1/model.json: {{max_num_seqs: [1, 8]}}}}\n")
    remote = SimpleNamespace(serves_output_repository=False)  # the launcher's one answer read here: remote mode's
    if refused:
        with pytest.raises(UsageError, match=r"^model_config_parameters vary token_engine/1/model.json, which the server's own copy .*--remote-model-loading files"):
            settings.variant_loading(load_config(path, {}), remote, tmp_path / "out")
    else:
        assert isinstance(settings.variant_loading(load_config(path, {}), remote, tmp_path / "out"), RequestLoading)


# ------------------------------------------------------------------ bad input, CLI


def cli_config(workdir: Path, text: str) -> Path:
    path = workdir / "gen.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "model, yaml, message",
    [
        ("add_sub", "streaming: true\n", "error: model 'add_sub' is not decoupled (model_transaction_policy decoupled: true), so it has no token stream: remove streaming (and model_type: LLM) for it, or profile a decoupled model"),
        ("token_engine", "concurrency: [1]\n", "error: model 'token_engine' is decoupled (it answers with a stream): set streaming: true (or model_type: LLM) to measure its tokens"),
        ("token_engine", "model_type: LLM\nprompt_file: p.jsonl\n", "error: prompt file p.jsonl:2: not JSON (Expecting value); each line must be a JSON object"),
        ("token_engine", "model_type: LLM\nprofile_models:\n  token_engine:\n    model_config_parameters: {1/model.json: {max_seqs: [2]}}\n", "error: model_config_parameters of 'token_engine': 1/model.json has no field 'max_seqs': use one of its fields (max_num_seqs)"),
        ("token_engine", "model_type: LLM\nbatch_sizes: [1, 2]\n", "error: batch_sizes 1,2 with streaming: a generation request carries one prompt; remove batch_sizes"),
    ],
)  # fmt: skip
def test_bad_generative_input_is_one_line_exit_2_and_nothing_written(workdir, model, yaml, message):
    (workdir / "p.jsonl").write_text('{"text": "hello"}\n{"text": \n')
    config = cli_config(workdir, yaml)
    done = run_tsweep("profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", model, "-f", str(config), "--output-model-repository-path", "out", cwd=workdir)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["gen.yaml", "p.jsonl"]  # nothing written


# ------------------------------------------------------------------- on the server

#: Slow, fixed engine timing (ms): a test can tell its figures from scheduling noise.
PREFILL_MS, PER_PROMPT_TOKEN_MS, STEP_MS, PER_SEQUENCE_MS = 20.0, 0.5, 8.0, 2.0
PROMPT_TOKENS, OUTPUT_TOKENS = 20, 6


def engine_variant(model, name: str, **parameters) -> Variant:
    """token_engine with its timing parameters set, max_num_seqs in its 1/model.json (and
    max_tokens dropped with drop_max_tokens)."""
    config = type(model.config)()
    config.CopyFrom(model.config)
    drop = parameters.pop("drop_max_tokens", False)
    in_json = {f"1/model.json:{k}": parameters.pop(k) for k in ("max_num_seqs",) if k in parameters}
    for key, value in parameters.items():
        config.parameters[key].string_value = str(value)
    if drop:
        kept = [i for i in config.input if i.name != "max_tokens"]
        del config.input[:]
        config.input.extend(kept)
    return Variant("token_engine", config, in_json, name=name)


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory):
    """A real tritonserver serving token_engine variants: fixed slow timing with one active
    sequence ('engine_one') or four ('engine_four', the same but for max_num_seqs in its
    1/model.json), and one without a max_tokens input that always says 4 tokens ('engine_deaf')."""
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings

    tmp = tmp_path_factory.mktemp("token_engine")
    out = tmp / "repo"
    repository.prepare_output(out, override=False)
    (model,) = repository.find_models(str(MODEL_REPOSITORY), ["token_engine"])
    timing = dict(prefill_base_ms=PREFILL_MS, prefill_per_token_ms=PER_PROMPT_TOKEN_MS, decode_base_ms=STEP_MS, decode_per_sequence_ms=PER_SEQUENCE_MS)
    variants = [
        engine_variant(model, "engine_one", max_num_seqs=1, stall_s=2, **timing),
        engine_variant(model, "engine_four", max_num_seqs=4, **timing),
        engine_variant(model, "engine_deaf", drop_max_tokens=True, default_max_tokens=4, decode_base_ms=2, prefill_base_ms=1),
    ]
    for v in variants:
        repository.write_variant(out, model, v)
    launcher = LocalLauncher(LaunchSettings(model_repository=out, log_dir=tmp / "log", ready_timeout_s=60))
    server = launcher.start()
    try:
        for v in variants:
            TritonHTTP(server.http_url).load_model(v.name)
        yield server, {v.name: v for v in variants}
    finally:
        launcher.stop()


def measure_stream(server, variant, protocol="http", level=LoadLevel("concurrency", 1.0), asked=PromptSettings(input_tokens_mean=PROMPT_TOKENS, output_tokens_mean=OUTPUT_TOKENS), timeout_s=10.0, windows=2):
    from tsweep.pluginmanager import make_plugin_manager

    settings = LoadSettings(protocol=protocol, streaming=True, prompts=asked, timeout_s=timeout_s)
    trial = Trial(variant, level)
    load = make_plugin_manager().load_generators()[protocol](trial, server, settings)
    method = MethodSettings(window_s=0.6, min_windows=windows, max_windows=windows, warmup_s=0.2, min_requests=3)
    return measure(trial, load, lambda: TritonHTTP(server.http_url).stats(variant.name), method)


def expected_ms():
    prefill = PREFILL_MS + PER_PROMPT_TOKEN_MS * PROMPT_TOKENS
    step = STEP_MS + PER_SEQUENCE_MS * 1  # one active sequence
    return prefill + step, step, prefill + OUTPUT_TOKENS * step


@pytest.mark.server
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_stored_token_figures_match_what_the_engine_is_known_to_do(engine_server, protocol):
    server, variants = engine_server
    m = measure_stream(server, variants["engine_one"], protocol)
    ttft, itl, e2e = expected_ms()  # 40, 10 and 90 ms
    assert m.status != "failed", m.error
    assert m.client == ("native http stream" if protocol == "http" else "tritonclient grpc stream")
    got = m.metrics
    assert ttft <= got["ttft_p50_ms"] < ttft + 15, got
    assert itl <= got["itl_p50_ms"] < itl + 5, got
    assert e2e <= m.latency_p50_ms < e2e + 30, m
    assert got["ttft_avg_ms"] <= got["ttft_p99_ms"] and got["itl_p50_ms"] <= got["itl_p90_ms"] <= got["itl_p99_ms"]
    assert got["output_tokens_avg"] == OUTPUT_TOKENS == got["output_tokens_asked_avg"]  # every token counted, none twice
    per_request_s = m.latency_avg_ms / 1e3
    assert got["output_tokens_per_s"] == pytest.approx(OUTPUT_TOKENS / per_request_s, rel=0.25)  # one stream at a time
    assert m.error == ""


@pytest.mark.server
def test_an_open_loop_times_tokens_from_the_intended_send(engine_server):
    server, variants = engine_server
    # 25 requests/s against one 90 ms sequence at a time: requests queue for admission, and
    # the time to first token (from the intended send) shows the queue, the gaps do not.
    m = measure_stream(server, variants["engine_one"], level=LoadLevel("request_rate", 25.0), windows=2)
    ttft, itl, _ = expected_ms()
    assert m.metrics["ttft_p90_ms"] > 2 * ttft, m.metrics
    assert itl <= m.metrics["itl_p50_ms"] < itl + 5, m.metrics


@pytest.mark.server
def test_a_knob_in_the_model_json_changes_how_the_engine_serves(engine_server):
    """engine_one and engine_four differ only in max_num_seqs of 1/model.json, written into
    each variant's folder: at 4 concurrent streams, one sequence at a time queues the others
    (long time to first token, one-sequence steps); four at a time admit them at once and
    every step serves four (short time to first token, slower steps)."""
    server, variants = engine_server
    four = LoadLevel("concurrency", 4.0)
    one_seq = measure_stream(server, variants["engine_one"], level=four).metrics
    four_seqs = measure_stream(server, variants["engine_four"], level=four).metrics
    _, step_one, e2e_one = expected_ms()
    assert one_seq["ttft_p50_ms"] > 2 * e2e_one > four_seqs["ttft_p50_ms"], (one_seq, four_seqs)  # queued behind whole sequences
    assert step_one <= one_seq["itl_p50_ms"] < step_one + 5, one_seq
    assert four_seqs["itl_p50_ms"] >= STEP_MS + 3 * PER_SEQUENCE_MS, four_seqs  # at least 3 sequences share a step


@pytest.mark.server
def test_output_lengths_the_model_ignores_are_reported(engine_server):
    server, variants = engine_server
    m = measure_stream(server, variants["engine_deaf"], asked=PromptSettings(input_tokens_mean=4, output_tokens_mean=12))
    assert m.status != "failed" and m.metrics["output_tokens_avg"] == 4 and m.metrics["output_tokens_asked_avg"] == 12
    assert "the model returned 4.0 output tokens per request on average where 12.0 were asked for" in m.error


@pytest.mark.server
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_stalled_stream_fails_the_point_by_the_request_timeout(engine_server, tmp_path, protocol):
    server, variants = engine_server
    stalls = tmp_path / "stall.jsonl"
    stalls.write_text(json.dumps({"text": "wait <stall>", "max_tokens": 5}) + "\n")
    m = measure_stream(server, variants["engine_one"], protocol, asked=PromptSettings(file=str(stalls)), timeout_s=0.5, windows=1)
    assert m.status == "failed" and "timeout" in m.error, m


@pytest.mark.server
@pytest.mark.slow
def test_a_cli_sweep_under_a_ttft_budget_ranks_on_stored_token_metrics(workdir):
    """examples/generative.yaml from the CLI on the embedded server, with short windows: every
    stored point has its token figures, the ranking shows them, the budget decides which
    configs meet it, and the CSV carries the token columns. Its space is the engine's
    max_num_seqs in 1/model.json: each variant's folder holds its own file, and one sequence
    at a time under 4 streams queues requests far past the TTFT budget."""
    import csv
    import sqlite3

    done = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "token_engine",
        "-f", str(MODEL_REPOSITORY.parent / "generative.yaml"), "--output-model-repository-path", "out",
        "--concurrency", "1,4", "--measurement-window-s", "0.4", "--min-windows", "2", "--max-windows", "3",
        "--measurement-request-count", "5", "--remeasure-top-configs", "0", cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Ranking of token_engine" in done.stdout and "TTFT p99 (ms)" in done.stdout and "Tokens/s" in done.stdout
    assert " ms, ITL p99 " in done.stderr and " tokens/s (" in done.stderr  # each point's progress line
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    rows = conn.execute("SELECT variant, load_value, status, metrics FROM measurements").fetchall()
    knob = {name: json.loads(params).get("1/model.json:max_num_seqs") for name, params in conn.execute("SELECT name, params FROM variants")}
    one_seq = {(v, c) for v, c, _, _ in rows if knob.get(v) == 1 and c == 4}
    conn.close()
    assert sorted(knob.values(), key=str) == [1, 8, None]  # the model's own (4), then the two listed
    for name, seqs in knob.items():
        written = json.loads((workdir / "out" / name / "1" / "model.json").read_text())
        assert written == {"max_num_seqs": 4 if seqs is None else seqs}, name
    assert rows  # how many points the adaptive search measures depends on what it saw
    for variant, load, status, metrics in rows:
        figures = json.loads(metrics)
        assert status != "failed" and figures["output_tokens_avg"] == 16, (variant, figures)  # the engine follows max_tokens
        assert figures["ttft_p50_ms"] <= figures["ttft_p99_ms"] and figures["output_tokens_per_s"] > 0
        if (variant, load) in one_seq:  # 3 requests ahead, each ~60 ms of sleeps: the 100 ms budget cannot hold
            assert figures["ttft_p99_ms"] > 100, figures
    table = [line for line in done.stdout.splitlines() if "token_engine_config" in line and ("meets" in line or "misses" in line)]
    assert table and all(("meets" in line) != ("misses ttft_p99_ms" in line) for line in table)
    with open(workdir / "results" / "metrics-model-inference.csv") as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(rows) and all(float(r["p99 Time To First Token (ms)"]) > 0 for r in read)
    import pypdf  # the reports of the real sweep carry the token sections (point 5)

    read = lambda path: " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(str(path)).pages).split())  # noqa: E731
    summary = read(workdir / "reports" / "summaries" / "token_engine" / "result_summary.pdf")
    assert "TTFT budget (100 ms) drawn across" in summary and "Token figures at the chosen load" in summary
    detailed = sorted((workdir / "reports" / "detailed").glob("*/detailed_report.pdf"))
    assert detailed and all("Token-level breakdown" in read(d) for d in detailed)


# ------------------------------------------------------------------ reports (point 5)

#: name -> (is default, max_num_seqs, TTFT at concurrency 1 in ms): synthetic streamed configs
STREAMED = {"default": (True, 4, 30.0), "1": (False, 1, 20.0), "2": (False, 8, 40.0)}


def streamed_point(variant: str, seqs: int, ttft: float, load: int) -> Measurement:
    """A plausible streamed point: TTFT grows with load past the engine's sequences, each step
    slows with the sequences sharing it, 16 tokens per request; distinct figures."""
    queued = max(0, load - seqs)
    ttft_p99 = ttft * (1 + queued) + load + 0.004
    itl_p50 = 3.0 + 0.5 * min(load, seqs) + 0.001 * seqs
    tokens_per_s = 1000.0 * min(load, seqs) / (ttft_p99 / 16 + itl_p50) + 0.03
    metrics = {
        "ttft_avg_ms": ttft_p99 * 0.7, "ttft_p50_ms": ttft_p99 * 0.6, "ttft_p90_ms": ttft_p99 * 0.9, "ttft_p99_ms": ttft_p99,
        "itl_avg_ms": itl_p50 * 1.05, "itl_p50_ms": itl_p50, "itl_p90_ms": itl_p50 * 1.3, "itl_p99_ms": itl_p50 * 1.8,
        "output_tokens_avg": 15.5, "output_tokens_asked_avg": 16.0, "output_tokens_per_s": tokens_per_s,
    }
    return Measurement(
        model="token_engine", variant=variant, variant_digest=variant, load_kind="concurrency", load_value=load, batch_size=1,
        status="ok", throughput=tokens_per_s / 15.5, latency_avg_ms=ttft_p99 + 15 * itl_p50, latency_p50_ms=ttft_p99 + 14 * itl_p50,
        latency_p99_ms=ttft_p99 + 20 * itl_p50, requests=200, windows=3, metrics=metrics, throughput_ci=0.5, latency_p99_ci_ms=1.0,
    )  # fmt: skip


def test_reports_show_token_charts_and_the_token_breakdown_of_a_streamed_model(tmp_path, workdir):
    """The summary of a streamed model has the TTFT-vs-tokens/s and ITL-vs-load charts (named
    in their caption) and the token figures of each shown config at its chosen load; each
    detailed report has the token-level breakdown of every load level, read back from the PDF
    and checked against the stored rows."""
    import pypdf

    from tsweep.store import ResultsStore

    ck = tmp_path / "ck"
    store = ResultsStore.open(ck / "results.sqlite")
    rows = []
    (model,) = repository.find_models(str(MODEL_REPOSITORY), ["token_engine"])
    for suffix, (default, seqs, ttft) in STREAMED.items():
        name = f"token_engine_config_{suffix}"
        values = {} if default else {"1/model.json:max_num_seqs": seqs}
        store.add_variant(Variant("token_engine", model.config, values, is_default=default, name=name))
        for load in (1, 2, 4, 8):
            rows.append(streamed_point(name, seqs, ttft, load))
            store.add(rows[-1])
    store.close()
    budget = 100.0
    cli_config(workdir, f"constraints: {{ttft_p99_ms: {{max: {budget:g}}}}}\nobjectives: {{output_tokens_per_s: 1}}\n")
    done = run_tsweep("analyze", "--checkpoint-directory", str(ck), "-f", "gen.yaml", "--export-path", "out", cwd=workdir)
    assert done.returncode == 0, done.stderr
    read = lambda path: " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(str(path)).pages).split())  # noqa: E731
    summary = read(workdir / "out" / "reports" / "summaries" / "token_engine" / "result_summary.pdf")
    assert "Tokens: time to first token, inter-token latency, token throughput" in summary
    assert f"the TTFT budget ({budget:g} ms) drawn across" in summary and "inter-token latency p50 and p99 of the same configs against load" in summary
    table = summary[summary.index("Token figures at the chosen load"):]
    for suffix in STREAMED:
        name = f"token_engine_config_{suffix}"
        inside = [r for r in rows if r.variant == name and r.metrics["ttft_p99_ms"] <= budget]
        chosen = max(inside, key=lambda r: r.metrics["output_tokens_per_s"])
        f = chosen.metrics
        assert f"{f['ttft_p50_ms']:.2f} {f['ttft_p99_ms']:.2f} {f['itl_p50_ms']:.2f} {f['itl_p99_ms']:.2f} {f['output_tokens_per_s']:.1f}" in table, name

    report = run_tsweep("report", "--checkpoint-directory", str(ck), "--report-model-configs", "token_engine_config_2", "--export-path", "out", cwd=workdir)
    assert report.returncode == 0, report.stderr
    detailed = read(workdir / "out" / "reports" / "detailed" / "token_engine_config_2" / "detailed_report.pdf")
    breakdown = detailed[detailed.index("Token-level breakdown"):]
    assert "TTFT avg (ms) TTFT p50 (ms) TTFT p90 (ms) TTFT p99 (ms) ITL avg (ms) ITL p50 (ms)" in breakdown
    for r in (r for r in rows if r.variant == "token_engine_config_2"):
        f = r.metrics
        cells = [f"{f[k]:.2f}" for k in ("ttft_avg_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "itl_avg_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms")]
        assert " ".join(cells + ["16.0", "15.5", f"{f['output_tokens_per_s']:.1f}"]) in breakdown, r.load_value
