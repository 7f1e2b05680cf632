"""The docs cannot drift from the code: generated reference, hooks in the guide."""
import inspect
from pathlib import Path

from tsweep import configdoc, hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_config_reference_is_generated_from_the_schema():
    assert (DOCS / "config.md").read_text() == configdoc.render(), "run: python -m tsweep.configdoc > docs/config.md"


def test_every_hook_is_in_the_plugin_guide():
    guide = (DOCS / "plugins.md").read_text()
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("tsweep_")]
    assert len(hooks) == 7
    for name in hooks:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({params})`" in guide, name
        assert getattr(hookspecs, name).__doc__.strip(), name
