"""model_config_parameters: Model Analyzer's per-model manual space."""
import pytest

from tsweep import modelconfig
from tsweep.config import load_config
from tsweep.errors import UsageError
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.search.manual_space import expand
from tsweep.records import ModelSpec
from tsweep.settings import space_settings

from tests.support import MODEL_REPOSITORY

YAML = """
profile_models:
  mlp:
    model_config_parameters:
      max_batch_size: [4, 8]
      dynamic_batching:
        max_queue_delay_microseconds: [100, 500]
        preferred_batch_size: [[2, 4], 8]
      instance_group:
      - kind: KIND_CPU
        count: [1, 2]
    parameters:
      concurrency: 1,2
      batch_sizes: [2]
  add_sub:
"""


def test_expand_is_the_cartesian_product():
    assert expand({"a": [1, 2], "b": {"c": [3, 4]}}) == [
        {"a": 1, "b": {"c": 3}}, {"a": 1, "b": {"c": 4}}, {"a": 2, "b": {"c": 3}}, {"a": 2, "b": {"c": 4}}
    ]
    assert expand({"g": [{"count": [1, 2], "kind": "KIND_CPU"}]}) == [
        {"g": [{"count": 1, "kind": "KIND_CPU"}]}, {"g": [{"count": 2, "kind": "KIND_CPU"}]}
    ]
    assert expand({"p": [[4, 8], [8]]}) == [{"p": [4, 8]}, {"p": [8]}]


def test_mapping_form_of_profile_models_drives_the_space(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(YAML)
    config = load_config(path, {})
    assert config.profile_models == ("mlp", "add_sub")
    settings = space_settings(config, "mlp")
    assert settings.concurrency == (1, 2) and settings.batch_sizes == (2,)
    assert space_settings(config, "add_sub").model_config_parameters == {}

    hooks = make_plugin_manager(autoload=False)
    mlp = ModelSpec("mlp", MODEL_REPOSITORY / "mlp", modelconfig.read(MODEL_REPOSITORY / "mlp" / "config.pbtxt"))
    space = hooks.config_space(mlp, settings)
    assert len(space.variants) == 1 + 2 * 2 * 2 * 2  # default + the product
    assert space.variants[0].is_default and space.variants[0].config == mlp.config
    v = space.variants[-1].config
    assert (v.max_batch_size, v.dynamic_batching.max_queue_delay_microseconds) == (8, 500)
    assert list(v.dynamic_batching.preferred_batch_size) == [8]  # a single value for a repeated field
    assert [(g.kind, g.count) for g in v.instance_group] == [(modelconfig.KIND_CPU, 2)]
    assert space.variants[1].params["dynamic_batching.max_queue_delay_microseconds"] == 100
    assert [str(l) for l in space.load_levels] == ["concurrency=1", "concurrency=2"]
    # a model without parameters still gets the automatic space
    add_sub = ModelSpec("add_sub", MODEL_REPOSITORY / "add_sub", modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt"))
    auto = hooks.config_space(add_sub, space_settings(config, "add_sub"))
    assert all(set(v.params) == {"instances", "max_batch_size", "dynamic_batching"} for v in auto.variants)


@pytest.mark.parametrize(
    "text, message",
    [
        ("profile_models:\n  mlp:\n    paramters: {}\n", "profile_models entry 'mlp' has unknown key 'paramters': did you mean 'parameters'?"),
        ("profile_models:\n  mlp:\n    zzz: 1\n", "profile_models entry 'mlp' has unknown key 'zzz': use model_config_parameters, parameters, perf_analyzer_flags, genai_perf_flags, objectives, constraints, cpu_only, weighting, triton_server_flags, triton_server_environment, triton_docker_labels, triton_docker_args"),
        ("profile_models:\n  mlp:\n    parameters: {concurrency: [0]}\n", "parameters.concurrency of 'mlp' must be a list of positive numbers, got [0]"),
        ("profile_models:\n  mlp:\n    parameters: {warmup: 1}\n", "parameters of 'mlp' may set concurrency, batch_sizes, request_rate, got {{'warmup': 1}}"),
        ("per_model: {}\n", "unknown config key 'per_model' in {p}: did you mean 'profile_models'?"),
    ],
)  # fmt: skip
def test_bad_per_model_settings(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert str(err.value) == message.format(p=path)


def test_misspelt_config_field_is_caught_before_anything_runs():
    hooks = make_plugin_manager(autoload=False)
    mlp = ModelSpec("mlp", MODEL_REPOSITORY / "mlp", modelconfig.read(MODEL_REPOSITORY / "mlp" / "config.pbtxt"))
    from tsweep.records import SpaceSettings

    with pytest.raises(UsageError, match=r"^model_config_parameters of 'mlp': .*max_batch_sise.*; use config.pbtxt field names$"):
        hooks.config_space(mlp, SpaceSettings(model_config_parameters={"max_batch_sise": [2]}))
