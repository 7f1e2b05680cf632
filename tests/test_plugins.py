"""Plugins: built-ins and third-party ones load the same way, through entry points.

The third-party plugin here is a real distribution on disk (a module plus a .dist-info with
entry_points.txt) put on PYTHONPATH of a real `tsweep` subprocess: exactly what `pip
install` leaves behind, without needing a network or a build.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pluggy
import pytest

from tsweep import modelconfig
from tsweep.plugin import hookimpl
from tsweep.pluginmanager import make_plugin_manager
from tsweep.records import Measurement, Variant
from tsweep.store import ResultsStore

from tests.support import install_fake_distribution, run_tsweep

def _guide_reporter() -> str:
    """The single-module reporter of docs/plugins.md, exactly as a reader would copy it."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    section = guide.split("A smaller one, as a single module", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


PLUGIN = _guide_reporter()

BROKEN = "raise ImportError('needs a library that is not installed')\n"


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
        store.add_variant(Variant("m", modelconfig.parse(""), is_default=default, name=name))
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
    assert "config keys: jsonsummary_indent" in listed.stdout

    out = tmp_path / "export"
    result = run_tsweep("analyze", "--checkpoint-directory", str(store_dir), "--export-path", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "reports" / "summary.json").read_text())
    assert summary[0] == {"variant": "m_config_0", "rank": 1, "throughput": 300.0, "mode": "online"}
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


@pytest.mark.parametrize("how", ["env", "flag"])
def test_autoload_can_be_disabled(site, tmp_path, how):
    install_fake_distribution(site, "tsweep_json", {"tsweep_json": PLUGIN}, {"jsonsummary": "tsweep_json"})
    env = {"PYTHONPATH": str(site), **({"TSWEEP_DISABLE_PLUGIN_AUTOLOAD": "1"} if how == "env" else {})}
    result = run_tsweep(*(["--no-plugins"] if how == "flag" else []), "plugins", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "jsonsummary" not in result.stdout and "csv_reporter" in result.stdout
    assert "jsonsummary  [tsweep_json 1.0]" in run_tsweep("plugins", cwd=tmp_path, env={"PYTHONPATH": str(site)}).stdout


MISSPELLED = """
from tsweep.plugin import hookimpl

@hookimpl
def tsweep_reporter():
    return {}
"""

WRONG_ARGUMENT = """
from tsweep.plugin import hookimpl

@hookimpl
def tsweep_config_space(model, setings):
    return None
"""


def test_third_party_hooks_that_match_no_spec_are_warnings_naming_the_plugin(site, tmp_path):
    install_fake_distribution(site, "tsweep_typo", {"tsweep_typo": MISSPELLED}, {"typo": "tsweep_typo"})
    install_fake_distribution(site, "tsweep_args", {"tsweep_args": WRONG_ARGUMENT}, {"args": "tsweep_args"})
    result = run_tsweep("plugins", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert warnings[0].startswith("warning: skipping tsweep plugin 'args' from tsweep_args: ") and "setings" in warnings[0]
    assert warnings[1] == "warning: skipping tsweep plugin 'typo' from tsweep_typo: unknown hook tsweep_reporter (the hooks are listed in tsweep.hookspecs)"
    assert len(warnings) == 2 and "typo  [" not in result.stdout and "local_launcher  [builtin]" in result.stdout


def test_an_inline_plugin_with_a_misspelled_hook_is_an_error():
    """check_pending() runs after registration: a library user's or a test's typo fails loudly."""

    class Typo:
        @hookimpl
        def tsweep_reporter(self):
            return {}

    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'tsweep_reporter'"):
        make_plugin_manager([("typo", Typo())], autoload=False)


def test_one_import_for_a_plugin_author():
    import tsweep.plugin as public

    assert public.ENTRY_POINT_GROUP == "tsweep" and public.hookimpl.project_name == "tsweep"
    assert {"hookimpl", "ENTRY_POINT_GROUP", "ConfigKey", "ReportContext", "MetricInfo", "write_atomic"} <= set(public.__all__)
    assert all(hasattr(public, name) for name in public.__all__)
    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    plugins = guide.split("## Testing a plugin")[0]  # the test kit (tsweep.testing) is for a plugin's tests
    imports = set(re.findall(r"^(?:from|import) (tsweep[\w.]*)", plugins, re.M))
    assert imports == {"tsweep.plugin"}, "the guide's plugin examples import only tsweep.plugin"


def test_launch_modes_are_plugins_only():
    """The core resolves --triton-launch-mode through the launcher hook and nothing else."""
    core = Path(__file__).resolve().parents[1] / "core"
    named = [
        (path.name, node.value)
        for path in sorted(core.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in ("local", "remote", "docker")
    ]
    assert named == [("config.py", "local"), ("config.py", "local")]  # the defaults of triton_launch_mode and of executor


def test_a_component_written_to_an_older_contract_is_refused_with_one_line():
    """Every component a plugin hands over is checked against its Protocol when handed over:
    a collector whose stop() takes no ``since`` (the contract before stop(since)) and a
    strategy without planned() are named, with the method, before anything runs."""
    from tsweep.components import SearchStrategy
    from tsweep.errors import UsageError
    from tsweep.records import RunningServer

    class OldCollector:
        def describe(self):
            return ()

        def start(self):
            pass

        def stop(self):
            return {}

    class OldPlugin:
        @hookimpl
        def tsweep_metric_collectors(self, server):
            return [OldCollector()]

        @hookimpl
        def tsweep_search_strategies(self):
            return {"old": lambda space, goal: OldStrategy()}

    class OldStrategy:
        def propose(self, history):
            return []

    hooks = make_plugin_manager([("old", OldPlugin())], autoload=False)
    with pytest.raises(UsageError) as collector_error:
        hooks.metric_collectors(RunningServer(http_url="http://127.0.0.1:1"), 1.0)
    assert str(collector_error.value) == (
        "a metric collector (OldCollector) does not implement MetricCollector.stop(since): it takes (); "
        "update the plugin to the contract in tsweep.components"
    )
    with pytest.raises(UsageError, match=r"^search strategy 'old' \(OldStrategy\) does not implement SearchStrategy.planned\(\): it has no such method"):
        hooks.search_strategy("old")(None, None)
    assert not isinstance(OldStrategy(), SearchStrategy)


def test_a_plugins_config_key_is_read_validated_and_passed_to_its_hooks(site, store_dir, tmp_path):
    """The guide's reporter declares jsonsummary_indent: set in the file it reaches the
    reporter; a bad value or a misspelling is one line and exit code 2, nothing written."""
    install_fake_distribution(site, "tsweep_json", {"tsweep_json": PLUGIN}, {"jsonsummary": "tsweep_json"})
    env = {"PYTHONPATH": str(site)}
    out = tmp_path / "export"

    def analyze(text: str):
        (tmp_path / "c.yaml").write_text(text)
        return run_tsweep("analyze", "-f", str(tmp_path / "c.yaml"), "--checkpoint-directory", str(store_dir),
                          "--export-path", str(out), cwd=tmp_path, env=env)  # fmt: skip

    result = analyze("jsonsummary_indent: 5\nfilename_model_inference: points.csv\n")
    assert result.returncode == 0, result.stderr
    assert (out / "reports" / "summary.json").read_text().startswith('[\n     {\n          "variant"')  # 5 spaces
    assert (out / "results" / "points.csv").is_file() and not (out / "results" / "metrics-model-inference.csv").exists()

    for text, line in (
        ("jsonsummary_indent: -1\n", "error: config key 'jsonsummary_indent' must be 0 or more, got -1"),
        ("jsonsummary_indent: wide\n", "error: config key 'jsonsummary_indent' must be an integer, got 'wide'"),
        ("jsonsummary_indnt: 4\n", "error: unknown config key 'jsonsummary_indnt' in " + str(tmp_path / "c.yaml") + ": did you mean 'jsonsummary_indent'?"),
        ("filename_model_gpu: ../gpu.csv\n", "error: config key 'filename_model_gpu' must be a plain file name (it is written under results/), got '../gpu.csv'"),
    ):
        (out / "reports" / "summary.json").unlink(missing_ok=True)
        result = analyze(text)
        assert (result.returncode, result.stderr.strip()) == (2, line)
        assert not (out / "reports" / "summary.json").exists()


def test_a_plugin_may_not_take_a_key_that_is_already_someone_elses():
    from tsweep.errors import UsageError
    from tsweep.plugin import ConfigKey

    class Taker:
        def __init__(self, name):
            self.name = name

        @hookimpl
        def tsweep_config_keys(self):
            return [ConfigKey(self.name, 1, "x")]

    with pytest.raises(UsageError, match="^plugin 'mine' declares config key 'max_windows', which is one of tsweep's own: the plugin must rename it$"):
        make_plugin_manager([("mine", Taker("max_windows"))], autoload=False)
    with pytest.raises(UsageError, match="^plugins 'a' and 'b' both declare config key 'shared_key': uninstall one"):
        make_plugin_manager([("a", Taker("shared_key")), ("b", Taker("shared_key"))], autoload=False)
    with pytest.raises(ValueError, match="kind must be one of"):
        ConfigKey("x_y", 1, "x", kind="huge")
    with pytest.raises(UsageError, match="config key 'x_z' must be greater than 0, got 0"):
        ConfigKey("x_z", 0, "x", kind="positive")  # a default that breaks its own rule
