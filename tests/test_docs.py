"""The docs cannot drift from the code: generated reference, hooks in the guide, runnable examples."""
import contextlib
import inspect
import io
import os
import re
from pathlib import Path

import pytest

from tsweep import configdoc, hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_config_reference_is_generated_from_the_schema():
    rendered = configdoc.render(configdoc.builtin_keys())
    assert (DOCS / "config.md").read_text() == rendered, "run: TSWEEP_DISABLE_PLUGIN_AUTOLOAD=1 python -m tsweep.configdoc > docs/config.md"
    assert "| `filename_model_inference` | csv_reporter | `metrics-model-inference.csv` |" in rendered


def test_every_hook_is_in_the_plugin_guide():
    guide = (DOCS / "plugins.md").read_text()
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("tsweep_")]
    assert len(hooks) == 10
    for name in hooks:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({params})`" in guide, name
        assert getattr(hookspecs, name).__doc__.strip(), name


@pytest.mark.server
def test_the_library_example_in_the_architecture_guide_runs(tmp_path, monkeypatch):
    """The "Driving a sweep from Python" block, run as it stands from a copy of the repo root."""
    text = (DOCS / "architecture.md").read_text()
    section = text.split("## Driving a sweep from Python", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    (tmp_path / "examples").symlink_to(DOCS.parent / "examples")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/architecture.md", "exec"), {})
    variant, load, throughput, unit = printed.getvalue().split()
    assert variant == "add_sub_config_default" and load in ("concurrency=1", "concurrency=2") and unit == "infer/s"
    assert int(throughput) > 0
    assert (tmp_path / "tsweep-example" / "checkpoints" / "results.sqlite").is_file()
    assert (tmp_path / "tsweep-example" / "export" / "reports" / "summaries" / "add_sub" / "result_summary.pdf").is_file()
    assert os.listdir(tmp_path / "tsweep-example" / "output_model_repository")
