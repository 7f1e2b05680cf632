"""Shared fixtures. Tests that need a server start the real embedded tritonserver."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, serving_example


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
    with serving_example(tmp_path_factory.mktemp("inputs"), "add_sub") as (server, _):
        yield server
