"""The user's model repository is validated; the output repository is tsweep's own."""

import pytest

from tsweep import modelconfig, repository
from tsweep.errors import UsageError
from tsweep.records import Variant


def test_finds_and_parses_example_models(model_repo):
    (mlp,) = repository.find_models(str(model_repo), ["mlp"])
    assert mlp.config.max_batch_size == 4
    assert mlp.config.input[0].name == "INPUT"


@pytest.mark.parametrize(
    "setup, names, message",
    [
        ("missing", ["mlp"], "model repository {repo} does not exist or is not a folder: check --model-repository"),
        ("empty", ["mlp"], "model repository {repo} is empty: it needs one folder per model, each with a config.pbtxt"),
        ("examples", ["nope"], "model 'nope' is not in {repo}: choose from accumulator, add_sub, bls_mlp, mlp, pipeline, preprocess, token_engine"),
        ("examples", ["../mlp"], "invalid model name '../mlp': use the name of a folder in {repo}"),
        ("examples", [], "no models to profile: pass --profile-models with some of: accumulator, add_sub, bls_mlp, mlp, pipeline, preprocess, token_engine"),
        ("noconfig", ["mlp"], "model 'mlp' has no config.pbtxt in {repo}/mlp: tsweep needs the model's config file"),
    ],
)
def test_bad_repository(tmp_path, model_repo, setup, names, message):
    repo = {"missing": tmp_path / "none", "empty": tmp_path / "empty", "examples": model_repo, "noconfig": model_repo}[setup]
    if setup == "empty":
        repo.mkdir()
    if setup == "noconfig":
        (repo / "mlp" / "config.pbtxt").unlink()
    with pytest.raises(UsageError) as err:
        repository.find_models(str(repo), names)
    assert str(err.value) == message.format(repo=repo)


def test_invalid_config_pbtxt_is_caught_before_the_server(model_repo):
    (model_repo / "mlp" / "config.pbtxt").write_text('backend: "python"\nmax_batch_sise: 4\n')
    with pytest.raises(UsageError, match=r"invalid model config .*mlp/config.pbtxt: 2:1 : .*max_batch_sise"):
        repository.find_models(str(model_repo), ["mlp"])


def test_foreign_output_repository_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists: pass --override-output-model-repository"):
        repository.check_output(str(out), override=False)
    assert repository.check_output(str(out), override=True) == out
    repository.prepare_output(out, override=True)
    assert not (out / "precious.txt").exists()
    assert repository.check_output(str(out), override=False) == out  # ours now: reusable


def test_write_variant_is_a_complete_model_folder(tmp_path, model_repo):
    (mlp,) = repository.find_models(str(model_repo), ["mlp"])
    out = tmp_path / "out"
    repository.prepare_output(out, override=False)
    config = modelconfig.copy(mlp.config)
    config.max_batch_size = 16
    variant = Variant("mlp", config, name="mlp_config_0")
    target = repository.write_variant(out, mlp, variant)
    written = modelconfig.read(target / "config.pbtxt")
    assert written.name == "mlp_config_0" and written.max_batch_size == 16
    assert (target / "1" / "model.py").read_text() == (model_repo / "mlp" / "1" / "model.py").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".mlp_config_0")]  # no staging left
