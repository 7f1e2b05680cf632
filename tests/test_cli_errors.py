"""Bad input through the real CLI: one clear line, exit code 2, nothing written."""
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep, tree


def profile_args(repo, *extra):
    return ["profile", "--model-repository", str(repo), "--profile-models", "mlp", "--output-model-repository-path", "out", *extra]


CASES = [
    ("missing repository", lambda t: profile_args(t / "nope"), "error: model repository {t}/nope does not exist or is not a folder: check --model-repository"),
    ("empty repository", lambda t: profile_args(t / "empty"), "error: model repository {t}/empty is empty: it needs one folder per model, each with a config.pbtxt"),
    ("unknown model", lambda t: ["profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "resnet"],
     f"error: model 'resnet' is not in {MODEL_REPOSITORY}: choose from add_sub, mlp"),
    ("malformed yaml", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "bad.yaml")),
     "error: malformed YAML in {t}/bad.yaml line 3, column 6: could not find expected ':'; fix the file's syntax"),
    ("unknown key", lambda t: profile_args(MODEL_REPOSITORY, "-f", str(t / "typo.yaml")),
     "error: unknown config key 'latency_budgett' in {t}/typo.yaml: did you mean 'latency_budget'?"),
    ("no tritonserver", lambda t: profile_args(MODEL_REPOSITORY),
     "error: no tritonserver found (not on PATH, embedded server not installed): pip install 'tsweep[server]' for the embedded server, or pass --triton-server-path"),
    ("bad server path", lambda t: profile_args(MODEL_REPOSITORY, "--triton-server-path", str(t / "bin" / "tritonserver")),
     "error: --triton-server-path {t}/bin/tritonserver is not an executable file: give the tritonserver binary"),
    ("foreign output repository", lambda t: profile_args(MODEL_REPOSITORY, "--output-model-repository-path", str(t / "taken")),
     "error: output model repository {t}/taken already exists: pass --override-output-model-repository to replace it or choose another path"),
    ("unknown launch mode", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "k8s"),
     "error: unknown launch mode (--triton-launch-mode) 'k8s': choose one of docker, local, remote"),
    # The real Docker SDK with no engine behind DOCKER_HOST: caught by the launcher's preflight.
    ("docker without engine", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "docker"),
     "error: no Docker engine reachable at unix://{t}/no-docker.sock: start Docker or choose --triton-launch-mode local"),
    ("docker sdk missing", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "docker"),
     "error: docker launch mode needs the Docker SDK: pip install 'tsweep[docker]'"),
    ("remote without endpoint", lambda t: profile_args(MODEL_REPOSITORY, "--triton-launch-mode", "remote"),
     "error: remote launch mode needs the server's address: pass --triton-http-endpoint HOST:PORT"),
    ("negative budget", lambda t: profile_args(MODEL_REPOSITORY, "--latency-budget", "-5"),
     "error: config key 'latency_budget' must be greater than 0, got -5.0"),
    ("report unmeasured config", lambda t: ["report", "--report-model-configs", "mlp_config_9", "--checkpoint-directory", str(t / "ck")],
     "error: no results store at {t}/ck/results.sqlite: run 'tsweep profile' first or point --checkpoint-directory at its folder"),
]  # fmt: skip


@pytest.mark.parametrize("name, args, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, workdir: Path, name, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("latency_budget: 10\nobjectives\n  - x: [\n")
    (tmp_path / "typo.yaml").write_text("latency_budgett: 10\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("someone else's")
    env = {}
    if name == "no tritonserver":
        # Hide the embedded server (the narrowest boundary: its package fails to import)
        # and keep PATH free of any tritonserver.
        shadow = tmp_path / "shadow" / "pytriton"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env = {"PYTHONPATH": str(shadow.parent), "PATH": "/usr/bin:/bin"}
    if name == "docker without engine":
        env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    if name == "docker sdk missing":  # as without the [docker] extra: the package fails to import
        shadow = tmp_path / "shadow" / "docker"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env = {"PYTHONPATH": str(shadow.parent)}
    before = tree(tmp_path)
    result = run_tsweep(*args(tmp_path), cwd=workdir, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == message.format(t=tmp_path)
    assert tree(tmp_path) == before  # nothing written anywhere (workdir included)
