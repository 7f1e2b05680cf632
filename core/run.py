"""The Run: one command's parts, resolved once from the config and the installed plugins.

The CLI (or a library user) builds a Run per command; everything below takes the Run, not
a (config, plugin manager) pair, so each component's name is resolved and checked in one
place, before anything is started or written::

    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run

    run = Run.build(load_config(None, {"model_repository": "examples/model_repository"}), make_plugin_manager())

A Run holds the metric catalogue, the objectives and constraints checked against it, the
search goal, the ranker and the reporters; for ``profile`` also the launcher's, the search
strategy's and the load generator's factories and the settings each component gets. What
depends on a model or a server (config spaces, metric collectors) is asked of ``hooks``
when that model or server is at hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from tsweep import goals
from tsweep.outputfields import OutputField, resolve_all
from tsweep.plotspec import PlotSpec, parse_config_plots, parse_plots
from tsweep.catalogue import Catalogue
from tsweep.components import LauncherFactory, LoadGeneratorFactory, Ranker, Reporter, SearchStrategyFactory
from tsweep.config import Config
from tsweep.errors import UsageError
from tsweep.lanes import ExecutorFactory
from tsweep.measure import MethodSettings
from tsweep.pluginmanager import Hooks
from tsweep.records import Constraint, LoadSettings, SearchGoal
from tsweep.settings import load_settings, method_settings, search_mode


@dataclass(frozen=True)
class Sweeping:
    """What only ``profile`` needs: the factories it starts things with, and their settings."""

    launcher: LauncherFactory
    strategy: SearchStrategyFactory
    load_generator: LoadGeneratorFactory
    load: LoadSettings
    method: MethodSettings
    #: Where trials are measured: the executor's factory of lanes (:mod:`tsweep.lanes`).
    executor: Optional[ExecutorFactory] = None
    #: Models whose own perf_analyzer_flags change their load settings.
    model_loads: Mapping[str, LoadSettings] = field(default_factory=dict)

    def load_of(self, model: str) -> LoadSettings:
        """The load settings ``model``'s points are measured with."""
        return self.model_loads.get(model, self.load)


@dataclass(frozen=True)
class Run:
    """One command's resolved parts (see the module docstring)."""

    config: Config
    hooks: Hooks
    catalogue: Catalogue
    objectives: Mapping[str, float]
    constraints: Tuple[Constraint, ...]
    goal: SearchGoal
    ranker: Ranker
    reporters: Mapping[str, Reporter]
    sweeping: Optional[Sweeping] = None
    #: Models with objectives or constraints of their own (their profile_models entry).
    model_goals: Mapping[str, goals.Goals] = field(default_factory=dict)
    #: The charts the ``plots`` key asks for (empty: the reports' own), and a config's own
    #: (the mapping form of report_model_configs).
    plots: Tuple[PlotSpec, ...] = ()
    config_plots: Mapping[str, Tuple[PlotSpec, ...]] = field(default_factory=dict)
    #: The columns the ``*_output_fields`` keys choose: ``{"inference" | "gpu" | "server": fields}``.
    output_fields: Mapping[str, Tuple[OutputField, ...]] = field(default_factory=dict)

    def goals_of(self, model: Optional[str]) -> goals.Goals:
        """What ``model`` is ranked by and searched for; None: the overall ranking's."""
        own = self.model_goals.get(model) if model else None
        return own or goals.Goals(self.objectives, self.constraints, self.goal)

    @classmethod
    def build(cls, config: Config, hooks: Hooks, sweep: bool = False) -> "Run":
        """Resolve and check every part the command needs; ``sweep`` for ``profile``.

        Raises :class:`tsweep.errors.UsageError` with one line for an unknown metric (of the
        goals, the plots or the output fields), ranker,
        reporter, launch mode, search strategy, client protocol or executor. The Run's ``hooks`` pass
        ``config.plugin_options`` to the plugins (``options``)."""
        hooks = hooks.configured(config.plugin_options)
        catalogue = Catalogue(hooks.metric_infos())
        sweeping = None
        if sweep:
            sweeping = Sweeping(
                launcher=hooks.launcher(config.triton_launch_mode),
                strategy=hooks.search_strategy(search_mode(config)),
                load_generator=hooks.load_generator(config.client_protocol),
                load=load_settings(config),
                model_loads={name: load_settings(config, name) for name, own in config.per_model.items() if own.get("load")},
                method=method_settings(config),
                executor=hooks.executor(config.executor),
            )
        overall = goals.for_model(config, catalogue)
        return cls(
            config=config,
            hooks=hooks,
            catalogue=catalogue,
            objectives=overall.objectives,
            constraints=overall.constraints,
            goal=overall.goal,
            model_goals={
                name: goals.for_model(config, catalogue, name)
                for name, own in config.per_model.items()
                if "objectives" in own or "constraints" in own or goals.has_own_percentile(config, name)
            },
            ranker=hooks.ranker(config.ranker),
            reporters=chosen_reporters(config, hooks),
            sweeping=sweeping,
            plots=parse_plots(config.plots, catalogue),
            config_plots=parse_config_plots(config.report_plots, catalogue),
            output_fields=resolve_all(config, catalogue),
        )

    def profiling(self) -> Sweeping:
        """The profile-only parts; a Run built without ``sweep=True`` has none."""
        if self.sweeping is None:
            raise UsageError("this Run was built for analysis: build it with Run.build(config, hooks, sweep=True) to profile")
        return self.sweeping


def chosen_reporters(config: Config, hooks: Hooks) -> Dict[str, Reporter]:
    """The reporters to run: those named in ``reporters``, else every one offered."""
    offered = hooks.reporters()
    for name in config.reporters:
        if name not in offered:
            raise UsageError(f"unknown reporter {name!r}: choose from {', '.join(sorted(offered))}")
    return {name: offered[name] for name in (config.reporters or sorted(offered))}
