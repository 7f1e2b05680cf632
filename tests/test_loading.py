"""What a load request carries in remote mode, and the ways variants are loaded, without a
server (tests/test_remote.py loads them on a real one)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tsweep import loading, modelconfig
from tsweep.config import load_config
from tsweep.errors import UsageError
from tsweep.plugins.launchers.local import LocalLauncher
from tsweep.plugins.launchers.remote import RemoteLauncher
from tsweep.records import ModelSpec, Variant
from tsweep.settings import variant_loading


def a_model(root: Path) -> ModelSpec:
    """A model folder with what a real one may hold: versions, a nested folder, a top-level
    file, hidden entries, a bytecode cache, and a version folder that is a symlink to elsewhere."""
    folder = root / "m"
    (folder / "1" / "assets").mkdir(parents=True)
    (folder / "config.pbtxt").write_text('backend: "python"\nmax_batch_size: 4\n')
    (folder / "1" / "model.py").write_text("print('v1')\n")
    (folder / "1" / "assets" / "vocab.txt").write_text("a\nb\n")
    (folder / "labels.txt").write_text("cat\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref\n")
    (folder / "1" / ".model.py.swp").write_text("x")
    (folder / "1" / "__pycache__").mkdir()
    (folder / "1" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"pyc")
    elsewhere = root / "store" / "2"
    elsewhere.mkdir(parents=True)
    (elsewhere / "model.py").write_bytes(b"\x00\xffbinary")
    os.symlink(elsewhere, folder / "2")
    return ModelSpec(name="m", path=folder, config=modelconfig.read(folder / "config.pbtxt"))


def test_the_model_files_are_every_file_but_the_config_hidden_ones_and_caches_through_symlinks(tmp_path: Path):
    model = a_model(tmp_path)
    sent = loading.model_files(model)
    assert sent == {
        "1/assets/vocab.txt": b"a\nb\n", "1/model.py": b"print('v1')\n", "2/model.py": b"\x00\xffbinary", "labels.txt": b"cat\n",
    }  # fmt: skip
    assert loading.files_size(model) == sum(len(b) for b in sent.values())


def test_a_model_over_the_limit_is_refused_before_anything_runs_naming_the_key(tmp_path: Path):
    model = a_model(tmp_path)
    size = loading.files_size(model)
    loading.RequestLoading(tmp_path / "out", send_files=True, max_mb=size / 1e6).check(model)  # exactly at the limit: fine
    loading.RequestLoading(tmp_path / "out", send_files=False, max_mb=1e-9).check(model)  # config only sends no files
    with pytest.raises(UsageError, match=r"over remote_load_max_mb \(1e-05\): raise --remote-load-max-mb, or .* --remote-model-loading config$"):
        loading.RequestLoading(tmp_path / "out", send_files=True, max_mb=1e-5).check(model)


def test_served_names_of_each_way(tmp_path: Path):
    model = a_model(tmp_path)
    variant = Variant("m", model.config, name="m_config_3")
    assert loading.RepositoryLoading(tmp_path).served_name(model, variant) == "m_config_3"
    assert loading.RequestLoading(tmp_path, send_files=True).served_name(model, variant) == "m_config_3"
    assert loading.RequestLoading(tmp_path, send_files=False).served_name(model, variant) == "m"
    assert loading.ServedAsIs().served_name(model, variant) == "m" and not loading.ServedAsIs().unloads


@pytest.mark.parametrize(
    "launcher, keys, way",
    [
        (LocalLauncher, {}, loading.RepositoryLoading),
        (RemoteLauncher, {}, loading.RequestLoading),
        (RemoteLauncher, {"remote_model_loading": "config"}, loading.RequestLoading),
        (RemoteLauncher, {"reload_model_disable": True}, loading.ServedAsIs),
    ],
)
def test_the_way_follows_the_launcher_and_the_keys(tmp_path: Path, launcher, keys, way):
    config = load_config(None, keys)
    chosen = variant_loading(config, launcher, tmp_path)
    assert type(chosen) is way
    if way is loading.RequestLoading:
        assert chosen.send_files == (config.remote_model_loading == "files") and chosen.max_mb == 256.0


def test_the_config_travels_as_triton_reads_it(tmp_path: Path):
    """JSON with the protobuf field names, parsed back into the very same ModelConfig."""
    from google.protobuf import json_format

    config = modelconfig.parse('name: "m" max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 100 } instance_group [{ kind: KIND_CPU count: 2 }]')
    text = modelconfig.to_json(config)
    assert json.loads(text)["instance_group"] == [{"kind": "KIND_CPU", "count": 2}]
    assert json_format.Parse(text, modelconfig.ModelConfig()) == config
