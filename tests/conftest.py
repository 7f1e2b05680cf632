"""Shared fixtures. Tests that need a server start the real embedded tritonserver."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL_REPOSITORY = EXAMPLES / "model_repository"
TSWEEP = [sys.executable, "-m", "tsweep"]


def run_tsweep(*args: str, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [*TSWEEP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


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


def tree(path: Path) -> list:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
