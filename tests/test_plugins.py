"""Plugins: built-ins and third-party ones load the same way, through entry points.

The third-party plugin here is a real distribution on disk (a module plus a .dist-info with
entry_points.txt) put on PYTHONPATH of a real `tsweep` subprocess: exactly what `pip
install` leaves behind, without needing a network or a build.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tsweep import modelconfig
from tsweep.pluginmanager import make_plugin_manager
from tsweep.records import Measurement, Variant
from tsweep.store import ResultsStore

from tests.support import run_tsweep

PLUGIN = '''
"""A third-party reporter and a replacement for the built-in csv reporter."""
import json
from pathlib import Path
from tsweep.plugin import hookimpl

class JsonSummary:
    def write(self, measurements, ranking, export_dir, context):
        path = Path(export_dir) / "reports" / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{"variant": r.variant, "rank": r.rank, "throughput": r.best.throughput} for r in ranking]))
        return [path]

@hookimpl
def tsweep_reporters():
    return {"jsonsummary": JsonSummary()}
'''

BROKEN = "raise ImportError('needs a library that is not installed')\n"


def install_fake_distribution(site: Path, dist: str, modules: dict, entry_points: dict) -> None:
    """Write modules and a minimal .dist-info, as pip would have installed them."""
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tsweep]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    d = tmp_path / "site"
    d.mkdir()
    return d


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A results store with two measured variants, written through the real store API."""
    ck = tmp_path / "ck"
    store = ResultsStore.open(ck / "results.sqlite")
    for name, default, thr, p99 in (("m_config_default", True, 100.0, 2.0), ("m_config_0", False, 300.0, 4.0)):
        store.add_variant(Variant("m", modelconfig.parse(""), {"instances": 1}, is_default=default, name=name))
        store.add(Measurement(model="m", variant=name, variant_digest=name, load_kind="concurrency", load_value=1,
                              batch_size=1, status="ok", throughput=thr, latency_p99_ms=p99))  # fmt: skip
    store.close()
    return ck


def test_builtins_are_entry_point_plugins():
    hooks = make_plugin_manager(autoload=False)
    assert {s.origin for s in hooks.sources} == {"builtin"}
    assert set(hooks.launchers()) >= {"local", "remote"}
    assert "brute" in hooks.search_strategies() and "objectives" in hooks.rankers() and "csv" in hooks.reporters()


def test_third_party_plugin_is_listed_and_used_by_the_core(site, store_dir, tmp_path):
    install_fake_distribution(site, "tsweep_json", {"tsweep_json": PLUGIN}, {"jsonsummary": "tsweep_json"})
    env = {"PYTHONPATH": str(site)}
    listed = run_tsweep("plugins", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "jsonsummary  [tsweep_json 1.0]  tsweep_json" in listed.stdout
    assert "reporters: jsonsummary" in listed.stdout

    out = tmp_path / "export"
    result = run_tsweep("analyze", "--checkpoint-directory", str(store_dir), "--export-path", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "reports" / "summary.json").read_text())
    assert summary[0] == {"variant": "m_config_0", "rank": 1, "throughput": 300.0}
    assert (out / "results" / "metrics-model-inference.csv").is_file()  # built-ins still run
    assert f"wrote {out / 'reports' / 'summary.json'}" in result.stdout


def test_third_party_offer_replaces_a_builtin_of_the_same_name(site, store_dir, tmp_path):
    install_fake_distribution(
        site, "tsweep_csv2", {"tsweep_csv2": PLUGIN.replace('"jsonsummary"', '"csv"')}, {"csv2": "tsweep_csv2"}
    )
    out = tmp_path / "export"
    result = run_tsweep("analyze", "--checkpoint-directory", str(store_dir), "--export-path", str(out), cwd=tmp_path,
                        env={"PYTHONPATH": str(site)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "reports" / "summary.json").is_file()
    assert not (out / "results").exists()  # the built-in csv reporter was replaced


def test_broken_plugin_is_a_warning_not_a_crash(site, tmp_path):
    install_fake_distribution(site, "tsweep_broken", {"tsweep_broken": BROKEN}, {"broken": "tsweep_broken"})
    result = run_tsweep("plugins", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert result.returncode == 0
    assert "warning: skipping tsweep plugin 'broken' from tsweep_broken: ImportError: needs a library" in result.stderr
    assert "local_launcher  [builtin]" in result.stdout


def test_autoload_can_be_disabled(site, tmp_path):
    install_fake_distribution(site, "tsweep_json", {"tsweep_json": PLUGIN}, {"jsonsummary": "tsweep_json"})
    result = run_tsweep("plugins", cwd=tmp_path, env={"PYTHONPATH": str(site), "TSWEEP_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0 and "jsonsummary" not in result.stdout and "csv_reporter" in result.stdout
