"""Builds a fresh plugin manager per run and wraps the hook calls in typed methods.

Registration order is chosen on purpose: tsweep's own entry points first, then other
distributions' sorted by distribution and entry-point name. pluggy calls the last
registered first, so a third-party plugin can replace a built-in component of the same name
(offer hooks) or take over a model (firstresult hooks). A third-party entry point that fails
to import, or whose hooks do not match the specs, is skipped with a warning naming it; a
built-in (or an inline plugin) that fails is a bug and raises.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import pluggy

from tsweep import hookspecs
from tsweep.components import (
    Launcher,
    LauncherFactory,
    LoadGenerator,
    LoadGeneratorFactory,
    MetricCollector,
    Ranker,
    Reporter,
    SearchStrategy,
    SearchStrategyFactory,
    check,
)
from tsweep.config import FIELDS
from tsweep.configvalues import ConfigKey
from tsweep.errors import UsageError
from tsweep.lanes import ExecutorFactory
from tsweep.plugin import ENTRY_POINT_GROUP
from tsweep.records import ConfigSpace, MetricInfo, ModelSpec, RunningServer, SpaceSettings

OWN_DISTRIBUTION = "tsweep"
AUTOLOAD_ENV = "TSWEEP_DISABLE_PLUGIN_AUTOLOAD"


@dataclass(frozen=True)
class PluginSource:
    """Where a registered plugin came from, for ``tsweep plugins``."""

    name: str
    origin: str  # "builtin", "<dist> <version>", or "inline"
    module: str


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded and was skipped."""


def _entry_points() -> List[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)

    def order(ep: importlib.metadata.EntryPoint) -> Tuple[bool, str, str]:
        dist = ep.dist.name if ep.dist else ""
        return (dist != OWN_DISTRIBUTION, dist, ep.name)

    return sorted(eps, key=order)


def make_plugin_manager(
    extra_plugins: Sequence[Tuple[str, Any]] = (),
    autoload: Optional[bool] = None,
) -> "Hooks":
    """A new plugin manager with the built-ins, installed plugins and ``extra_plugins``.

    ``autoload`` defaults to true unless ``TSWEEP_DISABLE_PLUGIN_AUTOLOAD`` is set; when
    off, only tsweep's own entry points load. ``extra_plugins`` (name, module-or-object)
    pairs are registered last, e.g. by a library user or a test.
    """
    if autoload is None:
        autoload = os.environ.get(AUTOLOAD_ENV, "") in ("", "0", "false", "no")
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    sources: List[PluginSource] = []
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist else "?"
        builtin = dist == OWN_DISTRIBUTION
        if not builtin and not autoload:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take tsweep down
            if builtin:
                raise
            warnings.warn(
                f"skipping tsweep plugin {ep.name!r} from {dist}: {type(exc).__name__}: {exc}",
                PluginLoadWarning,
                stacklevel=2,
            )
            continue
        if pm.is_registered(plugin):
            continue
        if builtin:
            pm.register(plugin, name=ep.name)
        elif not _register_checked(pm, plugin, ep.name, dist):
            continue
        origin = "builtin" if builtin else f"{dist} {ep.dist.version if ep.dist else ''}".strip()
        sources.append(PluginSource(ep.name, origin, ep.value))
    for name, plugin in extra_plugins:
        pm.register(plugin, name=name)
        sources.append(PluginSource(name, "inline", getattr(plugin, "__name__", type(plugin).__name__)))
    pm.check_pending()
    return Hooks(pm, sources).configured({})


def _register_checked(pm: pluggy.PluginManager, plugin: Any, name: str, dist: str) -> bool:
    """Register a third-party plugin only if its hooks match the specs; else warn and skip it.

    pluggy checks argument names at registration and unknown hook names in
    ``check_pending()``; doing both here per plugin keeps one misspelled hook in someone
    else's package from stopping every tsweep command.
    """
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        problem = " ".join(str(exc).split())
    else:
        unknown = [c.name for c in pm.get_hookcallers(plugin) or [] if c.spec is None]
        if not unknown:
            return True
        pm.unregister(plugin)
        problem = f"unknown hook {', '.join(sorted(unknown))} (the hooks are listed in tsweep.hookspecs)"
    warnings.warn(f"skipping tsweep plugin {name!r} from {dist}: {problem}", PluginLoadWarning, stacklevel=3)
    return False


def _merge_offers(results: Iterable[Optional[Dict[str, Any]]]) -> Dict[str, Any]:
    """Merge ``{name: component}`` offers; results arrive last-registered first, which wins."""
    merged: Dict[str, Any] = {}
    for offer in results:
        for name, component in (offer or {}).items():
            merged.setdefault(name, component)
    return merged


@dataclass
class Hooks:
    """Typed calls into the plugins: the only way the core reaches them."""

    pm: pluggy.PluginManager
    sources: List[PluginSource] = field(default_factory=list)
    #: The values of plugin-declared config keys, passed to every hook as ``options``.
    options: Mapping[str, Any] = field(default_factory=dict)

    def configured(self, options: Mapping[str, Any]) -> "Hooks":
        """The same plugins, with ``options`` (``Config.plugin_options``) for their hooks;
        a declared key missing from ``options`` has its default."""
        return dataclasses.replace(self, options={**{k.name: k.value() for k in self.config_keys()}, **options})

    # config -------------------------------------------------------------------------
    def config_keys(self) -> List[ConfigKey]:
        """Every plugin's own config keys, each with its ``owner`` (the plugin's name).

        A key that is one of tsweep's own, or that two plugins declare, is a UsageError
        naming both: the user cannot tell which one a value in the file would mean."""
        keys: List[ConfigKey] = []
        owners: Dict[str, str] = {}
        for impl in self.pm.hook.tsweep_config_keys.get_hookimpls():  # in registration order: built-ins first
            for key in impl.function() or ():
                key = dataclasses.replace(key, owner=impl.plugin_name)
                if key.name in FIELDS:
                    raise UsageError(f"plugin {key.owner!r} declares config key {key.name!r}, which is one of tsweep's own: the plugin must rename it")
                if key.name in owners:
                    raise UsageError(f"plugins {owners[key.name]!r} and {key.owner!r} both declare config key {key.name!r}: uninstall one (or use --no-plugins)")
                owners[key.name] = key.owner
                keys.append(key)
        return keys

    # launch -------------------------------------------------------------------------
    def launchers(self) -> Dict[str, LauncherFactory]:
        return _merge_offers(self.pm.hook.tsweep_launchers(options=self.options))

    def launcher(self, mode: str) -> LauncherFactory:
        return _checked(_pick(self.launchers(), mode, "launch mode (--triton-launch-mode)"), Launcher, f"the launcher of launch mode {mode!r}")

    # generate -----------------------------------------------------------------------
    def config_space(self, model: ModelSpec, settings: SpaceSettings) -> ConfigSpace:
        space = self.pm.hook.tsweep_config_space(model=model, settings=settings, options=self.options)
        if space is None:
            raise UsageError(f"no config-space generator handles model {model.name!r}: install one or check plugins")
        return space

    # search -------------------------------------------------------------------------
    def search_strategies(self) -> Dict[str, SearchStrategyFactory]:
        return _merge_offers(self.pm.hook.tsweep_search_strategies(options=self.options))

    def search_strategy(self, name: str) -> SearchStrategyFactory:
        factory = _pick(self.search_strategies(), name, "search strategy (run_config_search_mode)")
        return _checked(factory, SearchStrategy, f"search strategy {name!r}")

    # measure ------------------------------------------------------------------------
    def executors(self) -> Dict[str, ExecutorFactory]:
        return _merge_offers(self.pm.hook.tsweep_executors(options=self.options))

    def executor(self, name: str) -> ExecutorFactory:
        return _pick(self.executors(), name, "executor (--executor)")

    def load_generators(self) -> Dict[str, LoadGeneratorFactory]:
        return _merge_offers(self.pm.hook.tsweep_load_generators(options=self.options))

    def load_generator(self, protocol: str) -> LoadGeneratorFactory:
        factory = _pick(self.load_generators(), protocol, "client protocol (client_protocol)")
        return _checked(factory, LoadGenerator, f"the load generator of client protocol {protocol!r}")

    def metric_infos(self) -> List[MetricInfo]:
        """Every plugin's metric descriptions, first registered first (built-ins lead)."""
        return [info for offered in reversed(self.pm.hook.tsweep_metric_infos()) for info in offered or ()]

    def metric_collectors(self, server: RunningServer, interval_s: float) -> List[MetricCollector]:
        collectors: List[MetricCollector] = []
        for offered in self.pm.hook.tsweep_metric_collectors(server=server, interval_s=interval_s, options=self.options):
            collectors.extend(check(c, MetricCollector, "a metric collector") for c in offered or [])
        return collectors

    # rank ---------------------------------------------------------------------------
    def rankers(self) -> Dict[str, Ranker]:
        return _merge_offers(self.pm.hook.tsweep_rankers(options=self.options))

    def ranker(self, name: str) -> Ranker:
        return check(_pick(self.rankers(), name, "ranker"), Ranker, f"ranker {name!r}")

    # report -------------------------------------------------------------------------
    def reporters(self) -> Dict[str, Reporter]:
        offered = _merge_offers(self.pm.hook.tsweep_reporters(options=self.options))
        return {name: check(r, Reporter, f"reporter {name!r}") for name, r in offered.items()}

    # introspection ------------------------------------------------------------------
    def describe(self) -> List[Dict[str, Any]]:
        """Each plugin with its origin, the hooks it implements and what it offers."""
        offers = {
            "tsweep_launchers": "launch modes",
            "tsweep_search_strategies": "search strategies",
            "tsweep_load_generators": "client protocols",
            "tsweep_executors": "executors",
            "tsweep_rankers": "rankers",
            "tsweep_reporters": "reporters",
        }
        arguments = {"options": self.options}
        rows = []
        for src in self.sources:
            plugin = self.pm.get_plugin(src.name)
            if plugin is None:
                continue
            impls = [c.name for c in self.pm.get_hookcallers(plugin) or []]
            provided = []
            for hook in impls:
                (impl,) = [i for i in getattr(self.pm.hook, hook).get_hookimpls() if i.plugin is plugin]
                call = lambda: impl.function(**{a: arguments[a] for a in impl.argnames})  # noqa: E731
                if hook in offers:
                    provided.append(f"{offers[hook]}: {', '.join(sorted(call() or {}))}")
                elif hook == "tsweep_metric_infos":
                    provided.append(f"metrics: {', '.join(m.name for m in call() or ())}")
                elif hook == "tsweep_config_keys":
                    provided.append(f"config keys: {', '.join(k.name for k in call() or ())}")
            rows.append(
                {"name": src.name, "origin": src.origin, "module": src.module, "hooks": sorted(impls), "provides": provided}
            )
        return rows


def _checked(factory: Callable[..., Any], protocol: type, what: str) -> Callable[..., Any]:
    """``factory``, with what it builds checked against ``protocol`` (tsweep.components.check)."""

    def build(*args: Any) -> Any:
        return check(factory(*args), protocol, what)

    build.factory = factory  # type: ignore[attr-defined]  # the plugin's own, for introspection
    return build


def _pick(offered: Dict[str, Any], name: str, what: str) -> Any:
    if name not in offered:
        choices = ", ".join(sorted(offered)) or "none installed"
        raise UsageError(f"unknown {what} {name!r}: choose one of {choices}")
    return offered[name]
