"""The hook specifications: the whole contract between tsweep's core and its plugins.

Every hook is named ``tsweep_*`` and grouped by the phase in which the core calls it:
launch -> generate -> search -> measure -> rank -> report. Built-in plugins implement
them exactly as third-party plugins do (see :mod:`tsweep.plugin`).

Two shapes occur:

* *offer* hooks (``tsweep_launchers``, ``tsweep_search_strategies``, ``tsweep_rankers``,
  ``tsweep_reporters``) return ``{name: component}``. The core merges the offers of all
  plugins; when two plugins offer the same name, the one registered last wins (third-party
  plugins are registered after the built-ins, so they can replace one). The user picks by
  name (``--triton-launch-mode``, ``run_config_search_mode``, ...).
* *per-call* hooks (``tsweep_config_space``, ``tsweep_metric_collectors``) receive the
  object at hand and return their contribution for it.
* ``tsweep_metric_infos`` describes metrics; every plugin's descriptions are merged.
* ``tsweep_load_generators`` is an offer hook too: ``{protocol: factory}``, picked by
  ``client_protocol``.
* ``tsweep_config_keys`` declares config keys of the plugin's own.
* ``tsweep_executors`` is an offer hook too: ``{name: factory}``, picked by ``executor``.

Every hook that hands over components also receives ``options``: ``{key: value}`` for every
key that plugins declare through ``tsweep_config_keys`` (the user's value, else the
default), so a plugin builds its components from its own settings. Like any hook argument,
an implementation may leave it out.

The component interfaces (Launcher, SearchStrategy, ...) live in :mod:`tsweep.components`.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

import pluggy

from tsweep.components import LauncherFactory, LoadGeneratorFactory, MetricCollector, Ranker, Reporter, SearchStrategyFactory
from tsweep.configvalues import ConfigKey
from tsweep.lanes import ExecutorFactory
from tsweep.records import ConfigSpace, MetricInfo, ModelSpec, RunningServer, SpaceSettings

PROJECT_NAME = "tsweep"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# ------------------------------------------------------------------------------ config


@hookspec
def tsweep_config_keys() -> Optional[Sequence[ConfigKey]]:
    """Declare config keys of this plugin's own.

    Called once per command, before the config file is read, and by ``tsweep plugins`` and
    ``python -m tsweep.configdoc``. Users set the keys in the YAML file; tsweep validates
    them with the rules of its own keys (type, bounds, choices: one line naming the key when
    a value is wrong, a did-you-mean for a misspelled one) and passes their values to every
    hook below as ``options``. A key that is one of tsweep's own or another plugin's is
    refused when the plugins load. Keys are file-only (no command-line flags).

    :return: a sequence of :class:`tsweep.configvalues.ConfigKey`; ``[]`` or ``None`` for none.
    """


# ------------------------------------------------------------------------------ launch


@hookspec
def tsweep_launchers(options: Mapping[str, Any]) -> Mapping[str, LauncherFactory]:
    """Offer launch modes: ``{mode name: Launcher class or factory}``.

    Called once per run, while the CLI validates ``--triton-launch-mode`` and when
    ``tsweep plugins`` lists what is available. The factory is called with a
    :class:`tsweep.records.LaunchSettings` and must return a
    :class:`tsweep.components.Launcher`; constructing it must not start anything.

    :param options: the values of plugin-declared config keys (see the module docstring).
    :return: a mapping of launch-mode names (e.g. ``"local"``) to factories; ``{}`` or
        ``None`` if this plugin offers none.
    """


# ---------------------------------------------------------------------------- generate


@hookspec(firstresult=True)
def tsweep_config_space(model: ModelSpec, settings: SpaceSettings, options: Mapping[str, Any]) -> Optional[ConfigSpace]:
    """Build the config space to search for one model.

    Called once per profiled model, before its first trial, after the model's config.pbtxt
    was parsed. Return the variants to try (include one with ``is_default=True`` holding the
    model's own config, so results can be compared with it) and the load levels; leave
    ``Variant.name`` empty, the core names variants ``<model>_config_<n>``.

    Stops at the first non-None result: plugins registered later are asked first, so a
    third-party generator can take over the models it knows and return None for the rest,
    leaving them to the built-in automatic/manual space.

    :param model: the model as found in the user's repository.
    :param settings: the user's bounds and lists for this model.
    :param options: the values of plugin-declared config keys.
    :return: a :class:`tsweep.records.ConfigSpace`, or None to let another plugin decide.
    """


# ------------------------------------------------------------------------------ search


@hookspec
def tsweep_search_strategies(options: Mapping[str, Any]) -> Mapping[str, SearchStrategyFactory]:
    """Offer search strategies: ``{name: factory(space, goal) -> SearchStrategy}``.

    Called once per run; the core picks the strategy named by ``run_config_search_mode``
    and calls its factory once per model with that model's
    :class:`tsweep.records.ConfigSpace` and the user's :class:`tsweep.records.SearchGoal`.
    The strategy then speaks the propose -> measure -> propose protocol described in
    :class:`tsweep.components.SearchStrategy`.

    :param options: the values of plugin-declared config keys.
    :return: a mapping of strategy names to factories; ``{}`` or ``None`` for none.
    """


# ----------------------------------------------------------------------------- measure


@hookspec
def tsweep_executors(options: Mapping[str, Any]) -> Mapping[str, ExecutorFactory]:
    """Offer executors, the places trials are measured: ``{name: factory}``.

    Called once per run, while ``profile`` checks ``executor`` before anything is written,
    and by ``tsweep plugins``. The factory is called once per run, after every input was
    checked and before the first trial, with a :class:`tsweep.lanes.ExecutorContext`, and
    returns a :class:`tsweep.lanes.LanePool` that has not started anything yet (its
    ``start()`` does). It must raise :class:`tsweep.errors.UsageError` (one line) for what the
    user must fix: a missing package, an unreachable cluster, lanes the cluster cannot give.
    tsweep offers ``local`` (this process, the run's one server) and, with the extra
    ``tsweep[ray]``, ``ray`` (one lane per Ray actor).

    :param options: the values of plugin-declared config keys.
    :return: a mapping of executor names to factories; ``{}`` or ``None`` for none.
    """



@hookspec
def tsweep_load_generators(options: Mapping[str, Any]) -> Mapping[str, LoadGeneratorFactory]:
    """Offer load generators: ``{protocol name: factory}``.

    Called once per run, while ``profile`` checks ``client_protocol`` before the server
    starts, and by ``tsweep plugins``. The factory is called once per measured point with
    the :class:`tsweep.records.Trial`, the :class:`tsweep.records.RunningServer` and the
    :class:`tsweep.records.LoadSettings`, and returns a
    :class:`tsweep.components.LoadGenerator` that has not started sending. tsweep offers
    ``http`` (its native client, the default) and ``grpc`` (tritonclient).

    :param options: the values of plugin-declared config keys.
    :return: a mapping of protocol names to factories; ``{}`` or ``None`` for none.
    """


@hookspec
def tsweep_metric_infos() -> Optional[Sequence[MetricInfo]]:
    """Describe the metrics this plugin's collectors report: name, unit and direction.

    Called whenever the core needs to know which metrics exist, with or without a server:
    by ``profile`` before the server starts (to check objectives and constraints), by
    ``analyze`` and ``report`` (which never start one) and when ranking. The descriptions are
    merged with the core metrics (throughput, latencies); a name described twice keeps the
    core's, then the first plugin's description. Describe every name a ranker or a report
    may use; names in the metrics dict that are not described (e.g. per-GPU values) are
    stored and exported, but cannot be objectives or constraints.

    :return: a sequence of :class:`tsweep.records.MetricInfo`; ``[]`` or ``None`` for none.
    """


@hookspec
def tsweep_metric_collectors(server: RunningServer, interval_s: float, options: Mapping[str, Any]) -> Optional[List[MetricCollector]]:
    """Offer metric collectors for a running server.

    Called once per run, right after the server is up. Return collectors that can work on
    this machine and server (e.g. an NVML collector returns ``[]`` when there is no GPU,
    after warning once with :class:`tsweep.components.CollectorWarning` why). The core
    first takes one short idle sample of every collector (the server-only baseline), then
    calls ``start()`` and ``stop(since)`` around each measured point and
    stores what it returns with the point. An implementation may leave out ``interval_s``.

    :param server: the endpoints, pid and log of the server under test.
    :param interval_s: seconds between samples, the ``monitoring_interval`` config key.
    :param options: the values of plugin-declared config keys.
    :return: a list of :class:`tsweep.components.MetricCollector` (may be empty).
    """


# -------------------------------------------------------------------------------- rank


@hookspec
def tsweep_rankers(options: Mapping[str, Any]) -> Mapping[str, Ranker]:
    """Offer rankers: ``{name: Ranker}``.

    Called once per ``profile`` or ``analyze``, after measuring (or after reading the
    store). The core uses the ranker named by the ``ranker`` config key (default
    ``objectives``), once per model and once across all models.

    :param options: the values of plugin-declared config keys.
    :return: a mapping of ranker names to :class:`tsweep.components.Ranker` objects.
    """


# ------------------------------------------------------------------------------ report


@hookspec
def tsweep_reporters(options: Mapping[str, Any]) -> Mapping[str, Reporter]:
    """Offer reporters: ``{name: Reporter}``.

    Called once at the end of ``profile``, ``analyze`` and ``report``. Every offered
    reporter runs unless the ``reporters`` config key lists a subset. Each one's
    ``write()`` gets the stored measurements, the ranking and its export directory.

    :param options: the values of plugin-declared config keys.
    :return: a mapping of reporter names to :class:`tsweep.components.Reporter` objects.
    """
