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
"""
import pluggy

from tsweep.hookspecs import PROJECT_NAME

#: The entry-point group tsweep loads plugins from.
ENTRY_POINT_GROUP = PROJECT_NAME

#: Marks a function as the implementation of the tsweep hook of the same name.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["hookimpl", "ENTRY_POINT_GROUP", "PROJECT_NAME"]
