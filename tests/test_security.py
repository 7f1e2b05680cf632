"""Security properties, each checked: no shell, safe YAML, files only where the user said.

Binding (127.0.0.1 by default, anything else only with --triton-bind-address, logged) is
tested in tests/test_local_launcher.py and tests/test_faults.py; escaping of report text in
tests/test_reports.py; path traversal and option injection in tests/test_cli_errors.py.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.support import ROOT, TINY_SWEEP, run_tsweep

SOURCES = [p for d in ("core", "plugins", "ext", "examples") for p in (ROOT / d).rglob("*.py")]
_SUBPROCESS = {"run", "Popen", "call", "check_call", "check_output"}


def test_no_shell_strings_anywhere():
    """Every subprocess gets an argument list; nothing goes through a shell."""
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            owner = getattr(node.func.value, "id", "") if isinstance(node.func, ast.Attribute) else ""
            if owner == "os" and name in ("system", "popen") or name.startswith("exec") and owner == "os":
                offenders.append(f"{path}:{node.lineno} os.{name}")
            if owner == "subprocess" and name in _SUBPROCESS:
                if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords):
                    offenders.append(f"{path}:{node.lineno} shell=")
                if node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    offenders.append(f"{path}:{node.lineno} string command")
    assert SOURCES and not offenders, offenders


def test_yaml_is_loaded_safely(tmp_path: Path, workdir: Path):
    """A YAML tag that would run code under yaml.load is a syntax error to tsweep."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"latency_budget: !!python/object/apply:os.system ['touch {marker}']\n")
    result = run_tsweep(*TINY_SWEEP, "-f", str(evil), cwd=workdir)
    assert result.returncode == 2 and result.stderr.startswith("error: malformed YAML in ")
    assert not marker.exists()


@pytest.mark.server
@pytest.mark.slow
def test_a_profile_writes_only_below_the_paths_it_was_given(tmp_path: Path, workdir: Path):
    """Everything a run creates lies below the output, checkpoint and export paths, and no
    temporary file is left beside what it wrote (writes are temp file + rename)."""
    def snapshot():
        return {p for p in tmp_path.rglob("*")}

    before = snapshot()
    result = run_tsweep(*TINY_SWEEP, "--measurement-window-s", "0.2", "--checkpoint-directory", "ck", "--export-path", "export", cwd=workdir)
    assert result.returncode == 0, result.stderr
    created = snapshot() - before
    allowed = [workdir / "out", workdir / "ck", workdir / "export"]
    outside = [p for p in created if p != workdir and not any(p == a or a in p.parents for a in allowed)]
    assert created and not outside, outside
    leftovers = [p for p in created if p.name.startswith(".") and p.name not in (".tsweep-output",)]
    assert not leftovers, leftovers
    assert not [p for p in created if p.suffix in (".tmp",) or "-journal" in p.name]
    assert os.listdir(workdir / "export" / "reports")  # and it did write reports there
