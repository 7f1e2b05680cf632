"""Everything a tsweep plugin needs, in one import.

A plugin is a module (or object) with functions named after the hooks in
:mod:`tsweep.hookspecs`, each marked with :data:`hookimpl`::

    from tsweep.plugin import hookimpl

    @hookimpl
    def tsweep_reporters():
        return {"markdown": MarkdownReporter()}

and registered through the ``tsweep`` entry-point group in the plugin's pyproject.toml::

    [project.entry-points.tsweep]
    my_reporter = "my_package.my_module"

Installed, it is loaded on every run exactly like tsweep's built-in plugins; ``tsweep
plugins`` lists it. Set ``TSWEEP_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the built-ins.

The data a hook receives and returns, the component Protocols (the contract each component
is checked against), the config-key declaration, the errors and warnings a plugin raises,
and the helpers for writing files and latency histograms are re-exported here, so a
plugin never reaches into tsweep's internals; :data:`__all__` is that public surface.
"""
import pluggy

from tsweep.components import (
    CollectorWarning,
    Launcher,
    LoadGenerator,
    MetricCollector,
    Ranker,
    Reporter,
    SearchStrategy,
)
from tsweep.configvalues import ConfigKey
from tsweep.errors import UsageError
from tsweep.ext.histogram import Histogram
from tsweep.files import write_atomic
from tsweep.hookspecs import PROJECT_NAME
from tsweep.records import (
    ConfigSpace,
    Constraint,
    Coordinates,
    LaunchSettings,
    LoadLevel,
    LoadSettings,
    LoadWindow,
    Measurement,
    MetricInfo,
    ModelSpec,
    RankedConfig,
    RunningServer,
    SearchGoal,
    SpaceSettings,
    Trial,
    Variant,
)
from tsweep.reportcontext import ReportContext

#: The entry-point group tsweep loads plugins from.
ENTRY_POINT_GROUP = PROJECT_NAME

#: Marks a function as the implementation of the tsweep hook of the same name.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "hookimpl", "ENTRY_POINT_GROUP", "PROJECT_NAME",
    # what components must do (checked when a plugin hands one over)
    "Launcher", "SearchStrategy", "LoadGenerator", "MetricCollector", "Ranker", "Reporter",
    # the data hooks receive and return
    "LaunchSettings", "RunningServer", "ModelSpec", "SpaceSettings", "ConfigSpace", "Variant", "Coordinates",
    "SearchGoal", "Trial", "LoadLevel", "LoadSettings", "LoadWindow", "Measurement", "MetricInfo", "Constraint",
    "RankedConfig", "ReportContext",
    # declaring config keys, failing, warning, writing
    "ConfigKey", "UsageError", "CollectorWarning", "write_atomic", "Histogram",
]  # fmt: skip
