"""Ensembles and BLS models as pipelines (tsweep.pipeline): discovery, bad input, naming,
the combined space, the store, the per-stage figures, and search over a synthetic pipeline.
The end-to-end runs on the embedded server are in tests/test_pipeline_e2e.py."""
from __future__ import annotations

import dataclasses
import shutil
import warnings

import pytest

from tsweep import pipeline, repository, stagestats
from tsweep.config import ConfigWarning, load_config
from tsweep.errors import UsageError
from tsweep.plugins.reporters import stages
from tsweep.plugins.search.automatic_space import tsweep_config_space
from tsweep.plugins.search.brute import BruteSearch
from tsweep.plugins.search.grid import coord
from tsweep.plugins.search.manual_space import tsweep_config_space as manual_space
from tsweep.plugins.search.manual_space import variants as manual_variants
from tsweep.plugins.search.quick import QuickSearch
from tsweep.records import Measurement, SearchGoal, SpaceSettings
from tsweep.store import SCHEMA_VERSION, ResultsStore
from tsweep.sweep import name_variants
from tsweep.triton import ServerStats

from tests.support import MODEL_REPOSITORY, run_tsweep


def found(names, ensemble=None, bls=None, root=MODEL_REPOSITORY):
    models = repository.find_models(str(root), names)
    return pipeline.attach(models, str(root), ensemble or {}, bls or {})


def test_an_ensembles_composing_models_come_from_its_steps():
    (pipe,) = found(["pipeline"])
    assert pipe.pipeline == pipeline.ENSEMBLE
    assert [m.name for m in pipe.composing] == ["preprocess", "mlp"]
    (bls,) = found(["bls_mlp"], bls={"mlp": {}})
    assert bls.pipeline == pipeline.BLS and [m.name for m in bls.composing] == ["mlp"]
    (single,) = found(["add_sub"])
    assert single.composing == () and single.pipeline == ""


def test_a_missing_composing_model_is_one_line_naming_it_and_the_ensemble(model_repo):
    shutil.rmtree(model_repo / "preprocess")
    with pytest.raises(UsageError, match=r"ensemble 'pipeline' runs model 'preprocess' \(ensemble_scheduling\), which is not in .*: add its folder"):
        found(["pipeline"], root=model_repo)


def test_the_cli_refuses_a_missing_composing_model_with_exit_2_and_writes_nothing(model_repo, workdir):
    shutil.rmtree(model_repo / "mlp")
    result = run_tsweep("profile", "--model-repository", str(model_repo), "--profile-models", "pipeline", cwd=workdir)
    assert result.returncode == 2
    assert "ensemble 'pipeline' runs model 'mlp'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(workdir.iterdir()) == []


def test_a_composing_model_the_ensemble_does_not_use_gets_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found(["pipeline"], ensemble={"preprocess": {}, "tokenizer": {}})
    said = [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
    assert said == ["ensemble_composing_models lists 'tokenizer', which no profiled ensemble runs: ignored"]


def test_composing_keys_read_model_analyzers_forms():
    config = load_config(None, {
        "ensemble_composing_models": {"mlp": {"model_config_parameters": {"max_batch_size": [4, 8]}}},
        "bls_composing_models": "mlp", "cpu_only_composing_models": "preprocess",
    })  # fmt: skip
    assert config.ensemble_composing_models == {"mlp": {"model_config_parameters": {"max_batch_size": [4, 8]}}}
    assert config.bls_composing_models == {"mlp": {"model_config_parameters": {}}}
    assert config.cpu_only_composing_models == ("preprocess",)
    with pytest.raises(UsageError, match="ensemble_composing_models entry 'mlp' may set model_config_parameters only"):
        load_config(None, {"ensemble_composing_models": {"mlp": {"objectives": {}}}})


def pipeline_space(settings=SpaceSettings(search_disable=False, max_instance_count=2, max_model_batch_size=8), parameters=None, cpu_only=()):
    (pipe,) = found(["pipeline"])
    parts = []
    for part in pipe.composing:  # the manual space answers first where there are parameters, as in a run
        own = pipeline.composing_settings(settings, pipe, part, parameters or {}, cpu_only)
        parts.append(manual_space(part, own) or tsweep_config_space(part, own))
    own = tsweep_config_space(pipe, settings)
    return pipe, pipeline.space(pipe, own, parts)


def test_variants_are_named_as_model_analyzer_names_them_and_steps_name_the_composing_variants():
    pipe, space = pipeline_space()
    named = name_variants("pipeline", space.variants)
    default = named[0]
    assert default.name == "pipeline_config_default" and default.is_default
    assert [c.name for c in default.composing] == ["preprocess_config_default", "mlp_config_default"]
    assert named[1].name == "pipeline_config_0"
    composing_names = {c.name for v in named for c in v.composing}
    assert {"preprocess_config_0", "mlp_config_0"} <= composing_names
    # a composing variant keeps one name wherever it appears
    by_digest = {}
    for v in named:
        for c in v.composing:
            assert by_digest.setdefault((c.model, c.digest), c.name) == c.name
    # the ensemble as written names the composing variants it is loaded with
    v = named[5]
    steps = [s.model_name for s in pipeline.top_config(v).ensemble_scheduling.step]
    assert steps == [c.name for c in v.composing]
    # the ensemble batches 4: composing variants never batch less (Triton would refuse the ensemble)
    assert min(c.config.max_batch_size for v in named for c in v.composing) == 4
    # digests tell combinations apart; params name each stage's settings
    assert len({v.digest for v in named}) == len(named) - sum(  # equal combinations (a stage's default = one of its variants) share one
        1 for i, v in enumerate(named) if any(w.digest == v.digest for w in named[:i])
    )
    pre, mlp = named[1].composing  # an ensemble's own instances and batching are its stages', each named once
    assert named[1].params["instances"] == f"preprocess:{pre.coordinates.instances} mlp:{mlp.coordinates.instances}"
    assert named[1].params["dynamic_batching"] == " ".join(f"{c.model}:{'yes' if c.coordinates.dynamic_batching else 'no'}" for c in (pre, mlp))
    assert not any(k.endswith((".instances", ".max_batch_size", ".dynamic_batching")) for k in named[1].params)


def test_cpu_only_composing_models_get_cpu_instances_and_parameters_reach_their_model():
    settings = SpaceSettings(max_instance_count=1, max_model_batch_size=4, gpu_available=True)
    _, space = pipeline_space(settings, cpu_only=("preprocess",))
    kinds = {(c.model, c.coordinates.kind) for v in space.variants for c in v.composing if not c.is_default}
    assert kinds == {("preprocess", "KIND_CPU"), ("mlp", "KIND_GPU")}
    _, space = pipeline_space(settings, {"mlp": {"model_config_parameters": {"max_batch_size": [4, 8]}}})
    assert sorted({c.config.max_batch_size for v in space.variants for c in v.composing if c.model == "mlp" and not c.is_default}) == [4, 8]


def test_a_huge_product_space_is_refused_with_a_line_saying_how_to_narrow_it():
    (pipe,) = found(["pipeline"])
    many = [dataclasses.replace(v, is_default=False) for v in manual_variants(pipe.composing[0], {"max_batch_size": list(range(4, 205))})]
    with pytest.raises(UsageError, match=r"pipeline 'pipeline' has 41006 variants \(1 x 202 x 203\), over 10000: narrow"):
        pipeline.combine(pipe, [next(iter(manual_variants(pipe, {})))], [many, many + many[:1]])


def test_the_store_keeps_composing_variants_for_resume_and_analyze(tmp_path):
    _, space = pipeline_space()
    named = name_variants("pipeline", space.variants)
    with ResultsStore.open(tmp_path / "r.sqlite") as store:
        for v in named:
            store.add_variant(v)
        back = store.variant(named[3].name)
    assert back.digest == named[3].digest
    assert [c.name for c in back.composing] == [c.name for c in named[3].composing]
    assert back.params == named[3].params


def test_stage_figures_and_the_bounding_stage():
    d = ServerStats(success_count=100, success_ns=0, queue_ns=100 * 200_000, compute_input_ns=100 * 10_000, compute_infer_ns=100 * 2_000_000,
                    compute_output_ns=100 * 40_000, inference_count=100, execution_count=50)  # fmt: skip
    f = stagestats.stage_figures(d, elapsed_ns=1e9, instances=2)
    assert f["queue_ms"] == pytest.approx(0.2) and f["compute_infer_ms"] == pytest.approx(2.0) and f["batch_avg"] == 2
    # 50 executions of 2.05 ms each over 1 s on 2 instances: 5% busy
    assert f["busy"] == pytest.approx(50 * 2.05e-3 / 2)
    metrics = {**{f"stage.pre.{k}": v for k, v in f.items()}, "stage.mlp.busy": 0.9, "stage.mlp.queue_ms": 1.0, "host_cpu_utilization": 50.0}
    assert stagestats.bounding_stage(metrics) == "mlp"
    m = Measurement("pipe", "pipe_config_0", "x", "concurrency", 2, 1, "ok", metrics=metrics)
    assert "Stage mlp bounds throughput: its instances were busy 90% of the time (pre 5%)" in stages.bounding_sentence(m)
    rows = stages.csv_rows([m])
    assert [(r[6], r[-1]) for r in rows] == [("pre", "no"), ("mlp", "yes")]


def synthetic(strategy_class, goal=SearchGoal(latency_budget_ms=8.0)):
    """A pipeline whose throughput is its slower stage's capacity: preprocess serves 300/s
    per instance, mlp 100/s per instance and 1.5x with max_batch_size 8, and more than four
    instances in all halve both (a 4-core host); the best is 300/s (preprocess at 1 instance,
    mlp batching 8 at 2 or 3). Each point's busy figures say which stage bounds."""
    _, space = pipeline_space(SpaceSettings(max_instance_count=3, max_model_batch_size=8, concurrency=(1, 2, 4, 8)))
    space = dataclasses.replace(space, variants=tuple(name_variants("pipeline", space.variants)))
    strategy = strategy_class(space, goal)
    history = []
    while trials := strategy.propose(history):
        for t in trials:
            pre, mlp = t.variant.composing
            caps = {"preprocess": 300.0 * pre.coordinates.instances, "mlp": 100.0 * mlp.coordinates.instances * (1.5 if mlp.config.max_batch_size >= 8 else 1.0)}
            if pre.coordinates.instances + mlp.coordinates.instances > 4:
                caps = {k: v * 0.5 for k, v in caps.items()}  # a 4-core host: more instances than cores thrash
            throughput = min(caps.values()) * min(t.load.value, 4) / 4
            history.append(Measurement(
                "pipeline", t.variant.name, t.variant.digest, t.load.kind, t.load.value, t.batch_size, "ok", throughput=throughput,
                latency_p99_ms=t.load.value, throughput_ci=0.0, latency_p99_ci_ms=0.0, repeat=t.repeat,
                metrics={f"stage.{k}.busy": throughput / v for k, v in caps.items()},
            ))  # fmt: skip
    top = max(history, key=lambda m: m.throughput)
    best = next(v for v in space.variants if v.name == top.variant)
    return history, {c.model: (c.coordinates.instances, c.config.max_batch_size) for c in best.composing}, top.throughput, space


@pytest.mark.parametrize("name", ["quick", "adaptive"])
def test_quick_and_adaptive_find_the_pipelines_best_with_fewer_points_than_brute(name):
    from tsweep.plugins.search.adaptive import AdaptiveSearch

    strategy = {"quick": QuickSearch, "adaptive": AdaptiveSearch}[name]
    brute, brute_best, brute_top, _ = synthetic(BruteSearch)
    found_history, found_best, found_top, _ = synthetic(strategy)
    assert brute_top == pytest.approx(300.0) and brute_best["preprocess"][0] == 1 and brute_best["mlp"][1] == 8
    assert found_top == pytest.approx(brute_top)
    assert len(found_history) < 0.5 * len(brute), (len(found_history), len(brute))


def test_adaptive_moves_the_bounding_stage_first():
    from tsweep.plugins.search.adaptive import AdaptiveSearch

    history, _, _, space = synthetic(AdaptiveSearch)
    by_name = {v.name: v for v in space.variants}
    walked = list(dict.fromkeys(coord(by_name[m.variant]) for m in history if m.variant != "pipeline_config_default"))
    start, moves = walked[0], walked[1:3]
    at_start = next(m for m in history if coord(by_name[m.variant]) == start)
    assert stagestats.bounding_stage(at_start.metrics) == "mlp"  # 100/s against preprocess's 300/s
    assert start == (1, 4, 1, 4) and moves == [(1, 4, 2, 4), (1, 4, 1, 8)]  # mlp's neighbours, preprocess held


def test_remote_mode_refuses_a_pipeline_with_one_line(tmp_path):
    from tsweep.loading import RequestLoading

    (pipe,) = found(["pipeline"])
    with pytest.raises(UsageError, match="ensemble 'pipeline': remote mode does not load pipelines' composing variants yet"):
        RequestLoading(tmp_path, send_files=True).check(pipe)


def test_optuna_searches_each_stages_coordinates():
    from tsweep.plugins.search.optuna import OptunaSearch, StudySettings, _dimensions

    _, space = pipeline_space(SpaceSettings(max_instance_count=3, max_model_batch_size=8, concurrency=(1, 2, 4, 8)))
    named = name_variants("pipeline", space.variants)
    dimensions = {name: values for name, values, _ in _dimensions([v for v in named if not v.is_default])}
    assert dimensions["preprocess.instances"] == (1, 2, 3) and dimensions["mlp.max_batch_size"] == (4, 8)
    strategy = OptunaSearch(dataclasses.replace(space, variants=tuple(named)), SearchGoal(latency_budget_ms=8.0), StudySettings(max_trials=12, early_exit_threshold=1000))
    proposed = set()
    history = []
    while trials := strategy.propose(history):
        for t in trials:
            proposed.add(t.variant.name)
            history.append(Measurement("pipeline", t.variant.name, t.variant.digest, t.load.kind, t.load.value, t.batch_size, "ok",
                                       throughput=100.0, latency_p99_ms=1.0, throughput_ci=0.0, latency_p99_ci_ms=0.0, repeat=t.repeat))  # fmt: skip
    assert len(proposed) > 3  # it moves over the stages' coordinates, not the ensemble's one


def test_a_store_of_schema_4_gains_the_composing_column(tmp_path):
    import sqlite3

    _, space = pipeline_space()
    (add_sub,) = repository.find_models(str(MODEL_REPOSITORY), ["add_sub"])
    single = name_variants("add_sub", manual_variants(add_sub, {}))[0]  # its default config
    with ResultsStore.open(tmp_path / "r.sqlite") as store:
        store.add_variant(single)
    conn = sqlite3.connect(tmp_path / "r.sqlite")
    conn.execute("ALTER TABLE variants DROP COLUMN composing")
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with ResultsStore.open(tmp_path / "r.sqlite") as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.variant(single.name).digest == single.digest and store.variant(single.name).composing == ()
        named = name_variants("pipeline", space.variants)
        store.add_variant(named[1])
        assert store.variant(named[1].name).digest == named[1].digest
