"""Model Analyzer users' config files: a corpus written after the examples of Model
Analyzer's config reference (docs/config.md, docs/config_search.md), with our own models and
values, plus files that between them set every key of that reference.

Each file's header says what tsweep must do with it:

* ``# expect: loads``: it loads (Model Analyzer keys without effect warn, one line each);
* ``# expect: refused KEY``: one error line naming KEY (a key tsweep refuses);
* ``# runs-here: points=N``: it also runs on the embedded server here, measuring N points.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Dict, List, Set

import pytest
import yaml

from tests.support import MODEL_REPOSITORY, run_tsweep, stored
from tsweep import compat
from tsweep.config import ConfigWarning, load_config
from tsweep.errors import UsageError
from tsweep.pluginmanager import make_plugin_manager

CORPUS = Path(__file__).parent / "fixtures" / "model_analyzer"
FILES = sorted(CORPUS.glob("*.yaml"))


def header(path: Path) -> Dict[str, str]:
    """The ``# name: value`` lines at the top of a corpus file."""
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"# (expect|runs-here): (.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def keys_of(path: Path) -> Set[str]:
    """Every Model Analyzer key a file sets: top-level, per model, per reported config."""
    data = yaml.safe_load(path.read_text()) or {}
    keys = set(data)
    for section in ("profile_models", "report_model_configs"):
        if isinstance(data.get(section), dict):
            for own in data[section].values():
                keys |= set(own or {})
    return keys


def plugin_keys():
    return make_plugin_manager().configured({}).config_keys()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_file_does_what_its_header_says(path: Path, monkeypatch):
    monkeypatch.chdir(CORPUS)  # certificate paths are relative to the corpus
    expect = header(path).get("expect", "")
    assert expect, f"{path.name} has no '# expect:' header"
    if expect.startswith("refused "):
        key = expect.split()[1]
        with pytest.raises(UsageError) as err:
            load_config(path, {}, plugin_keys())
        assert key in str(err.value) and "\n" not in str(err.value)
        return
    assert expect == "loads"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(path, {}, plugin_keys())
    for w in caught:  # only Model Analyzer keys without effect may warn, each in one line
        assert issubclass(w.category, ConfigWarning) and "\n" not in str(w.message), str(w.message)
        assert re.match(r"^(config key '(\w+)'|(\w+) of '\w+') in .* has no effect in tsweep: ", str(w.message)), str(w.message)


def test_the_corpus_sets_every_key_of_the_reference():
    covered: Set[str] = set()
    for path in FILES:
        covered |= keys_of(path)
    missing = [k for k in compat.MODEL_ANALYZER_KEYS if k not in covered]
    assert not missing, f"no corpus file sets {missing}"


RUNNABLE: List[Path] = [p for p in FILES if "runs-here" in header(p)]


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("path", RUNNABLE, ids=[p.stem for p in RUNNABLE])
def test_the_files_that_fit_this_machine_run_on_the_embedded_server(path: Path, workdir: Path):
    points = int(re.match(r"points=(\d+)", header(path)["runs-here"]).group(1))
    result = run_tsweep(
        "profile", "-f", str(path), "--model-repository", str(MODEL_REPOSITORY), "--output-model-repository-path", "out",
        "--measurement-window-s", "0.3", "--remeasure-top-configs", "0", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert len(rows) == points, [(r["variant"], r["load_kind"], r["load_value"]) for r in rows]
    assert all(r["status"] in ("ok", "unstable") for r in rows), [dict(r) for r in rows]
