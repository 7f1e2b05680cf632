"""Remote mode without a shared disk: each load request carries the variant.

The user's server is the real embedded tritonserver, started by the test with explicit model
control on a repository tsweep never gets to write: read-only, holding only add_sub, and
checked byte for byte after each sweep. What the server really ran is read from its own log:
Triton logs one line per model instance it initializes, named after the served model.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep, stored, tree
from tsweep import modelconfig
from tsweep.plugins.launchers.local import LocalLauncher
from tsweep.records import LaunchSettings, RunningServer
from tsweep.triton import TritonHTTP

pytestmark = [pytest.mark.server, pytest.mark.slow]


@dataclass
class UsersServer:
    server: RunningServer
    repository: Path  # the server's own model repository
    contents: Dict[str, str]  # its files' digests before any sweep

    @property
    def client(self) -> TritonHTTP:
        return TritonHTTP(self.server.http_url)

    def log_size(self) -> int:
        return self.server.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.server.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


def digests(root: Path) -> Dict[str, str]:
    """Every entry under ``root``: a file's sha256, a folder's '<dir>'. Python's bytecode
    caches are left out: the server's python backend writes them when it loads its own copy
    of add_sub (as root, whatever the modes say), which is the server's doing, not tsweep's."""
    return {
        str(p.relative_to(root)): "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if "__pycache__" not in p.parts
    }


def set_writable(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | 0o200 if writable else mode & ~0o222)


@pytest.fixture(scope="module")
def users_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("users")
    repo = tmp / "models"
    repo.mkdir()
    shutil.copytree(MODEL_REPOSITORY / "add_sub", repo / "add_sub", ignore=shutil.ignore_patterns("__pycache__"))
    set_writable(repo, False)
    launcher = LocalLauncher(LaunchSettings(model_repository=repo, log_dir=tmp / "log", ready_timeout_s=60))
    server = launcher.start()
    try:
        yield UsersServer(server, repo, digests(repo))
    finally:
        launcher.stop()
        set_writable(repo, True)


def remote_profile(users: UsersServer, model: str, *extra: str) -> List[str]:
    """A remote-mode sweep of ``model``: its default config and one variant of 2 instances
    (max_batch_size 8), at concurrency 1."""
    return [
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", model,
        "--triton-launch-mode", "remote", "--triton-http-endpoint", users.server.http_url.removeprefix("http://"),
        "--output-model-repository-path", "out", "--run-config-search-mode", "brute",
        "--run-config-search-min-instance-count", "2", "--run-config-search-max-instance-count", "2",
        "--run-config-search-min-model-batch-size", "8", "--run-config-search-max-model-batch-size", "8",
        "--concurrency", "1", "--remeasure-top-configs", "0", "--measurement-window-s", "0.3", *extra,
    ]  # fmt: skip


def instances_started(log: str, served: str) -> List[int]:
    """Per load of ``served`` in ``log``, how many model instances the server initialized."""
    loads = re.split(rf'"loading: {re.escape(served)}:\d+"', log)[1:]
    return [len(re.findall(rf"ModelInstanceInitialize: {re.escape(served)}_\d+_\d+ ", part.split('"loading: ')[0])) for part in loads]


def test_variants_and_model_files_travel_in_the_load_request(users_server: UsersServer, workdir: Path):
    offset = users_server.log_size()
    result = run_tsweep(*remote_profile(users_server, "add_sub"), cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert [(r["variant"], r["load_value"]) for r in rows] == [("add_sub_config_default", 1.0), ("add_sub_config_0", 1.0)]
    assert all(r["status"] in ("ok", "unstable") and r["throughput"] > 0 and r["errors"] == 0 for r in rows)
    log = users_server.log_since(offset)
    # each variant ran under its own name with its own config: 1 instance, then 2
    assert instances_started(log, "add_sub_config_default") == [1]
    assert instances_started(log, "add_sub_config_0") == [2]
    assert "loading: add_sub:" not in log  # the server's own copy was never touched
    # tsweep keeps each variant's config.pbtxt as a record; the model's files stay in the user's repository
    assert tree(workdir / "out") == [".tsweep-output", "add_sub_config_0", "add_sub_config_0/config.pbtxt", "add_sub_config_default", "add_sub_config_default/config.pbtxt"]
    assert digests(users_server.repository) == users_server.contents


def test_config_only_reloads_the_servers_copy_of_the_model_with_each_variant(users_server: UsersServer, workdir: Path):
    offset = users_server.log_size()
    result = run_tsweep(*remote_profile(users_server, "add_sub", "--remote-model-loading", "config"), cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert [(r["variant"], r["load_value"]) for r in rows] == [("add_sub_config_default", 1.0), ("add_sub_config_0", 1.0)]
    assert all(r["status"] in ("ok", "unstable") and r["throughput"] > 0 and r["errors"] == 0 for r in rows)
    # both variants were served as 'add_sub', the first with 1 instance, the second with 2
    assert instances_started(users_server.log_since(offset), "add_sub") == [1, 2]
    assert not users_server.client.is_model_ready("add_sub")  # unloaded when the model was done
    assert digests(users_server.repository) == users_server.contents


def test_reload_model_disable_measures_the_servers_model_as_it_is(users_server: UsersServer, workdir: Path):
    client = users_server.client
    # the user's model as the user loaded it: 3 instances, where its config.pbtxt says 1
    config = modelconfig.read(users_server.repository / "add_sub" / "config.pbtxt")
    config.instance_group[0].count = 3
    client.load_model("add_sub", config=modelconfig.to_json(config))
    try:
        result = run_tsweep(*remote_profile(users_server, "add_sub", "--reload-model-disable"), cwd=workdir)
        assert result.returncode == 0, result.stderr
        rows = stored(workdir)
        # only the default config: tsweep could load no other
        assert [(r["variant"], r["load_value"], r["status"] in ("ok", "unstable")) for r in rows] == [("add_sub_config_default", 1.0, True)], [(r["status"], r["error"]) for r in rows]
        assert client.stats("add_sub").success_count >= rows[0]["requests"] > 0  # the requests went to the user's model
        # neither reloaded (the config would say 1 instance) nor unloaded
        assert client.is_model_ready("add_sub")
        assert [g["count"] for g in client.model_config("add_sub")["instance_group"]] == [3]
    finally:
        client.unload_model("add_sub")
    assert digests(users_server.repository) == users_server.contents


def test_a_load_the_server_refuses_is_a_failed_point_that_says_why(users_server: UsersServer, workdir: Path):
    """Config only, for a model the server's repository does not hold: Triton refuses."""
    result = run_tsweep(*remote_profile(users_server, "mlp", "--remote-model-loading", "config", "--run-config-search-disable"), cwd=workdir)
    assert result.returncode == 0, result.stderr  # the sweep goes on; the point keeps the reason
    rows = stored(workdir)
    assert [(r["variant"], r["status"]) for r in rows] == [("mlp_config_default", "failed")]
    why = "variant failed to load: Triton refused POST /v2/repository/models/mlp/load: failed to load 'mlp', failed to poll from model repository"
    assert rows[0]["error"] == why
    assert f"failed: mlp_config_default concurrency=1 b1: {why}" in result.stderr.splitlines(), result.stderr
    assert digests(users_server.repository) == users_server.contents
    assert sorted(os.listdir(workdir / "out")) == [".tsweep-output", "mlp_config_default"]
