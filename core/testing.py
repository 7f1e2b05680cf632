"""A test kit for plugin authors: register a plugin, run a small real sweep, look at the result.

It is a pytest plugin, loaded automatically where tsweep is installed (``pytest11`` entry
point; with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, write ``pytest_plugins =
["tsweep.testing"]`` in a conftest.py). It offers three fixtures:

``tsweep_hooks(*plugins, autoload=False)``
    a fresh plugin manager with the built-ins and ``plugins`` (modules or objects with
    ``@hookimpl`` methods) registered last, so they win a name clash. With ``autoload=True``
    installed third-party plugins load too (e.g. to test a plugin through its entry point).
``tsweep_model_repository``
    a model repository holding ``identity``, a tiny python-backend model (one FP32 input of
    4 values, echoed), cheap enough to sweep in seconds.
``tsweep_sweep(*plugins, autoload=False, **config)``
    runs ``tsweep profile`` as a library call against the embedded server (``pip install
    'tsweep[server]'``) on ``identity`` with a tiny space (its own config, concurrency 1,
    0.3 s windows), all files under the test's ``tmp_path``; keyword arguments are config
    keys and override those defaults. Returns a :class:`SweepResult`.

Tests that call ``tsweep_sweep`` start a real server: mark them ``@pytest.mark.server``
(this plugin registers the marker). :func:`make_hooks`, :func:`run_sweep` and
:func:`write_model_repository` are the plain functions behind the fixtures;
:class:`ServerProbe` is a plugin that records the server process (for launcher tests).
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from tsweep.plugin import hookimpl

IDENTITY_CONFIG = """backend: "python"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""

IDENTITY_MODEL = '''"""identity: OUTPUT0 = INPUT0 (python backend), tsweep's test-kit model."""
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
            for r in requests
        ]
'''

#: The smallest sweep that still measures: the model's own config at one load level.
QUICK_SWEEP: Dict[str, Any] = {
    "profile_models": "identity",
    "run_config_search_disable": True,
    "concurrency": "1",
    "measurement_window_s": 0.3,
    "remeasure_top_configs": 0,  # no final race: one point, one look
    "server_ready_timeout_s": 60.0,
}


@dataclass(frozen=True)
class ServerProcess:
    """What Linux says about a running server process (``/proc/<pid>``)."""

    pid: int
    exe: str
    cwd: str
    cmdline: List[str]
    environ: Dict[str, str]
    nice: int


def inspect_process(pid: int) -> ServerProcess:
    proc = Path(f"/proc/{pid}")
    environ = dict(e.split("=", 1) for e in (proc / "environ").read_text(errors="replace").split("\0") if "=" in e)
    after_name = (proc / "stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    return ServerProcess(
        pid=pid,
        exe=os.readlink(proc / "exe"),
        cwd=os.readlink(proc / "cwd"),
        cmdline=[a for a in (proc / "cmdline").read_text().split("\0") if a],
        environ=environ,
        nice=int(after_name[16]),  # field 19 of stat; field 3 is the first after the name
    )


class ServerProbe:
    """A plugin that looks at the server process as soon as it is up, for launcher tests.

    The core asks for metric collectors right after ``start()``; the probe offers none, it
    only reads ``/proc/<pid>`` of the server then (Linux): ``probe.process``.
    """

    def __init__(self) -> None:
        self.process: Optional[ServerProcess] = None

    @hookimpl
    def tsweep_metric_collectors(self, server):
        if server.pid:
            self.process = inspect_process(server.pid)
        return []


@dataclass
class SweepResult:
    """What :func:`run_sweep` produced: the outcome and where every file went."""

    outcome: Any  # tsweep.sweep.ProfileOutcome
    config: Any  # tsweep.config.Config
    store_path: Path
    export_path: Path
    output_repository: Path
    log_path: Path


def make_hooks(*plugins: Any, autoload: bool = False):
    """A fresh plugin manager with the built-ins and ``plugins`` registered last."""
    from tsweep.pluginmanager import make_plugin_manager

    named = [(getattr(p, "__name__", None) or f"{type(p).__name__}-{id(p):x}", p) for p in plugins]
    return make_plugin_manager(named, autoload=autoload)


def write_model_repository(root: Path) -> Path:
    """``root`` with the ``identity`` model in it."""
    (root / "identity" / "1").mkdir(parents=True, exist_ok=True)
    (root / "identity" / "config.pbtxt").write_text(IDENTITY_CONFIG)
    (root / "identity" / "1" / "model.py").write_text(IDENTITY_MODEL)
    return root


def run_sweep(workdir: Path, *plugins: Any, autoload: bool = False, **config: Any) -> SweepResult:
    """Profile (by default) ``identity`` on the embedded server, everything below ``workdir``."""
    from tsweep.config import load_config
    from tsweep.run import Run
    from tsweep.sweep import profile

    workdir.mkdir(parents=True, exist_ok=True)
    settings: Dict[str, Any] = {
        "model_repository": str(write_model_repository(workdir / "models")),
        "output_model_repository_path": str(workdir / "output_model_repository"),
        "checkpoint_directory": str(workdir / "checkpoints"),
        "export_path": str(workdir / "export"),
        **QUICK_SWEEP,
        **config,
    }
    hooks = make_hooks(*plugins, autoload=autoload)
    loaded = load_config(None, settings, hooks.config_keys())
    outcome = profile(Run.build(loaded, hooks, sweep=True))
    return SweepResult(
        outcome=outcome,
        config=loaded,
        store_path=loaded.checkpoint_path,
        export_path=Path(loaded.export_path),
        output_repository=Path(loaded.output_model_repository_path),
        log_path=Path(loaded.checkpoint_directory) / "tritonserver.log",
    )


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "server: starts a real Triton server (tsweep.testing's tsweep_sweep)")


@pytest.fixture
def tsweep_hooks() -> Callable[..., Any]:
    """``tsweep_hooks(*plugins, autoload=False)``: see the module docstring."""
    return make_hooks


@pytest.fixture
def tsweep_model_repository(tmp_path: Path) -> Path:
    return write_model_repository(tmp_path / "tsweep-models")


@pytest.fixture
def tsweep_sweep(tmp_path: Path) -> Callable[..., SweepResult]:
    """``tsweep_sweep(*plugins, autoload=False, **config)``: see the module docstring."""
    runs = itertools.count(1)

    def sweep(*plugins: Any, autoload: bool = False, **config: Any) -> SweepResult:
        return run_sweep(tmp_path / f"tsweep-sweep-{next(runs)}", *plugins, autoload=autoload, **config)

    return sweep
