"""The plugin packages in examples/plugins, installed for real and used for real.

pip builds and installs them (no dependencies, no index, no build isolation: nothing is
downloaded) into a temporary folder that only the subprocesses see on PYTHONPATH, so the
test environment stays as it was. Their own test suites then run there, through the
tsweep.testing pytest plugin exactly as a plugin author runs them, and a real
``tsweep profile`` goes through both: launch mode ``wrapped`` and reporter ``markdown``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import pytest

from tests.support import EXAMPLES, MODEL_REPOSITORY, install_fake_distribution, run_tsweep

pytestmark = [pytest.mark.server, pytest.mark.slow]

PACKAGES = ("tsweep-wrapped-launcher", "tsweep-markdown-report")

#: Records the server process (via the test kit) as soon as the server is up.
PROBE = """
import dataclasses, json, os
from tsweep.plugin import hookimpl
from tsweep.testing import inspect_process

@hookimpl
def tsweep_metric_collectors(server):
    with open(os.environ["TSWEEP_PROBE_OUT"], "w") as f:
        json.dump(dataclasses.asdict(inspect_process(server.pid)), f)
    return []
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(copies of the example sources, the folder pip installed them into)."""
    root = tmp_path_factory.mktemp("example-plugins")
    sources = {}
    for name in PACKAGES:  # build from copies: pip builds in the source tree
        sources[name] = root / name
        shutil.copytree(EXAMPLES / "plugins" / name, sources[name], ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation", "--target", str(site)]
    done = subprocess.run([*pip, *map(str, sources.values())], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return sources, site


def test_they_are_listed_as_installed_distributions(installed, tmp_path):
    _, site = installed
    listed = run_tsweep("plugins", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.stderr
    assert "wrapped_launcher  [tsweep-wrapped-launcher 0.1.0]  tsweep_wrapped_launcher" in listed.stdout
    assert "markdown_report  [tsweep-markdown-report 0.1.0]  tsweep_markdown_report" in listed.stdout
    assert "launch modes: wrapped" in listed.stdout and "reporters: markdown" in listed.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_their_own_tests_pass_with_the_test_kit(installed, package, tmp_path):
    sources, site = installed
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"), str(sources[package] / "tests")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]  # e.g. "2 passed, 1 warning in 10.92s"
    assert re.match(r"^\d+ passed(, \d+ warnings?)? in ", summary), summary  # nothing failed, skipped or errored


def test_profile_runs_the_server_wrapped_and_writes_the_markdown_ranking(installed, tmp_path, workdir):
    _, site = installed
    install_fake_distribution(site, "tsweep_probe", {"tsweep_probe": PROBE}, {"probe": "tsweep_probe"})
    folder = tmp_path / "server-cwd"
    folder.mkdir()
    config = tmp_path / "wrapped.yaml"
    config.write_text(
        "triton_launch_mode: wrapped\n"
        "triton_launch_options:\n"
        "  wrapper: [nice, -n, '5', env, WRAPPED_BY=tsweep-test]\n"
        f"  working_directory: {folder}\n"
    )
    probe = tmp_path / "server.json"
    result = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub", "-f", str(config),
        "--output-model-repository-path", "out", "--latency-budget", "1000", "--run-config-search-max-instance-count", "1",
        "--run-config-search-min-model-batch-size", "8", "--run-config-search-max-model-batch-size", "8",
        "--concurrency", "1", "--measurement-window-s", "0.3", "--remeasure-top-configs", "0",  # one look per point
        cwd=workdir, env={"PYTHONPATH": str(site), "TSWEEP_PROBE_OUT": str(probe)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrapped in nice -n 5 env WRAPPED_BY=tsweep-test" in result.stderr

    server = json.loads(probe.read_text())  # nice and env exec'd tritonserver: their marks on its process
    assert server["exe"].endswith("/tritonserver") and server["cwd"] == str(folder)
    assert server["environ"]["WRAPPED_BY"] == "tsweep-test"
    assert server["nice"] == min(os.nice(0) + 5, 19)

    summary = workdir / "reports" / "summary.md"
    assert "wrote reports/summary.md" in result.stdout.splitlines()
    lines = summary.read_text().splitlines()
    stored = sqlite3.connect(workdir / "checkpoints" / "results.sqlite").execute(
        "SELECT variant, load_kind, load_value, throughput, latency_p99_ms FROM measurements"
    ).fetchall()
    assert sorted(v for v, *_ in stored) == ["add_sub_config_0", "add_sub_config_default"]
    for variant, kind, value, throughput, p99 in stored:  # each config's only point is its row
        (line,) = [l for l in lines if l.startswith("| ") and f" {variant} " in l]
        assert line.endswith(f"| {kind}={value:g} | {throughput:.1f} | {p99:.2f} | meets |"), line
