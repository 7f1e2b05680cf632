"""Shared fixtures. Tests that need a server start the real embedded tritonserver."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tsweep import repository
from tsweep.plugins.launchers.local import LocalLauncher
from tsweep.records import LaunchSettings, Variant
from tsweep.triton import TritonHTTP

from tests.support import MODEL_REPOSITORY


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory; tests check that failures leave it empty."""
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """A writable copy of the example model repository."""
    dst = tmp_path / "models"
    shutil.copytree(MODEL_REPOSITORY, dst)
    return dst


@pytest.fixture(scope="session")
def add_sub_server(tmp_path_factory):
    """One real tritonserver with the example add_sub model loaded as 'add_sub'."""
    tmp = tmp_path_factory.mktemp("inputs")
    out = tmp / "repo"
    repository.prepare_output(out, override=False)
    (model,) = repository.find_models(str(MODEL_REPOSITORY), ["add_sub"])
    repository.write_variant(out, model, Variant("add_sub", model.config, {}, name="add_sub"))
    launcher = LocalLauncher(LaunchSettings(model_repository=out, log_dir=tmp / "log", ready_timeout_s=60))
    server = launcher.start()
    try:
        TritonHTTP(server.http_url).load_model("add_sub")
        yield server
    finally:
        launcher.stop()
