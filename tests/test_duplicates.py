"""A variant identical to another is measured once and reported under both names."""
from tsweep import analysis, modelconfig
from tsweep.config import load_config
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.search.automatic_space import tsweep_config_space
from tsweep.plugins.search.brute import BruteSearch
from tsweep.records import Measurement, ModelSpec, SearchGoal, SpaceSettings
from tsweep.run import Run
from tsweep.store import ResultsStore
from tsweep.sweep import name_variants
from tsweep.verdict import verdict

# Already what the generator would make for 1 instance, max_batch_size 4: a twin of config_0.
CONFIG = modelconfig.parse(
    'name: "m" backend: "python" max_batch_size: 4 dynamic_batching {} instance_group [{count: 1 kind: KIND_CPU}]'
)


def test_twin_is_measured_once_and_named_everywhere(tmp_path):
    space = tsweep_config_space(
        ModelSpec("m", None, CONFIG),
        SpaceSettings(max_instance_count=2, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2)),
    )
    variants = name_variants("m", space.variants)
    assert [v.name for v in variants] == ["m_config_default", "m_config_0", "m_config_1"]
    assert variants[0].digest == variants[1].digest != variants[2].digest
    space = type(space)(space.model, tuple(variants), space.load_levels, space.batch_sizes)

    store = ResultsStore.open(tmp_path / "results.sqlite")
    for v in variants:
        store.add_variant(v)
    strategy, history = BruteSearch(space, SearchGoal()), []
    while trials := strategy.propose(history):
        t = trials[0]  # as one lane measures: the first of the answer
        m = Measurement(model="m", variant=t.variant.name, variant_digest=t.variant.digest, load_kind=t.load.kind,
                        load_value=t.load.value, batch_size=1, status="ok", throughput=100.0 * t.load.value * (2 if t.variant.is_default else 1),
                        latency_p99_ms=1.0)  # fmt: skip
        store.add(m)
        history.append(m)
    assert sorted({m.variant for m in history}) == ["m_config_1", "m_config_default"]  # config_0 never measured
    assert store.count() == 4

    config = load_config(None, {"latency_budget": 10.0})
    (ranking,) = analysis.rank(store, Run.build(config, make_plugin_manager(autoload=False)), ["m"]).values()
    default = next(r for r in ranking if r.variant == "m_config_default")
    assert default.aliases == ("m_config_0",) and default.is_default
    assert analysis.measured_name(store, "m_config_0") == "m_config_default"
    assert analysis.measured_name(store, "m_config_9") is None
    assert ranking[0] is default  # the twin pair measured 2x the throughput of config_1
    assert verdict("m", ranking, []).endswith(", which is the default config. It is the same config as m_config_0, measured once.")
    store.close()
