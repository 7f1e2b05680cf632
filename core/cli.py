"""The ``tsweep`` command: thin Typer commands over the library.

Each command parses options, calls library code and prints. Options are generated from
:class:`tsweep.config.Config`, so a flag, its config-file key and its documentation cannot
drift apart. Errors the user can fix become ``error: <one line>`` and an exit code here, at
the edge, and nowhere else.
"""
from __future__ import annotations

import inspect
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import typer

from tsweep import __version__, analysis, completion, outputfields, repeats
from tsweep.catalogue import BUILT_IN
from tsweep.config import ANALYZE, PROFILE, REPORT, Config, base_type, load_config, option_fields
from tsweep.errors import Interrupted, TsweepError, UsageError
from tsweep.outputfields import OutputField
from tsweep.pluginmanager import AUTOLOAD_ENV, Hooks, make_plugin_manager
from tsweep.progress import Progress
from tsweep.records import DISPLAYED, Measurement, RankedConfig, RunningServer, Trial, cell
from tsweep.run import Run
from tsweep.store import ResultsStore
from tsweep.verdict import plus_minus, shown, together_verdict, verdict

app = typer.Typer(
    name="tsweep",
    help=(
        "Find the best way to deploy a model on Triton Inference Server.\n\n"
        "profile sweeps model-config variants and load levels against a real server and "
        "ranks them; analyze re-ranks stored results with other objectives; report writes "
        "details of chosen configs; plugins lists what is installed."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts contain brackets such as tsweep[server]
)


def _err(message: str) -> None:
    typer.echo(message, err=True)


# ----------------------------------------------------------------------------- options


def _annotation(field) -> Any:
    return {"bool": Optional[bool], "float": Optional[float], "int": Optional[int]}.get(
        base_type(field), Optional[str]  # strings and comma-separated lists
    )


def _with_config_options(command: str) -> Callable[[Callable], Callable]:
    """Give ``func(config, hooks)`` one CLI option per Config field of ``command``; the
    plugin manager is built first, so the config file may set the keys plugins declare."""

    def decorate(func: Callable) -> Callable:
        params = [
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
            inspect.Parameter(
                "config_file",
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(None, "-f", "--config-file", help="YAML config file (Model Analyzer-style keys)."),
                annotation=Optional[Path],
            )
        ]
        for f in option_fields(command):
            names = ["--" + f.name.replace("_", "-")] + ([f.metadata["short"]] if f.metadata["short"] else [])
            default = f.default if f.default is not None else None
            shown = "" if default in (None, (), {}) else f" [default: {','.join(map(str, default)) if isinstance(default, tuple) else default}]"
            params.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=typer.Option(None, *names, help=f.metadata["help"] + shown, show_default=False),
                    annotation=_annotation(f),
                )
            )

        def command_fn(**kwargs: Any) -> None:
            ctx = kwargs.pop("ctx")
            config_file = kwargs.pop("config_file")

            def body() -> None:
                hooks = plugin_manager(ctx)
                func(load_config(config_file, kwargs, hooks.config_keys()), hooks)

            _run(body)

        command_fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command_fn.__doc__ = func.__doc__
        command_fn.__name__ = func.__name__
        return command_fn

    return decorate


def _run(body: Callable[[], None]) -> None:
    try:
        body()
    except TsweepError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(exc.exit_code)


# ---------------------------------------------------------------------------- progress


class ConsoleProgress(Progress):
    """One line per event on stderr: readable live and in CI logs alike."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.several = False  # lanes finish points out of order: each result line says whose it is

    def server_started(self, server: RunningServer) -> None:
        where = "" if server.http_url in server.description else f" at {server.http_url}"  # a remote one names it already
        _err(f"server: {server.description}{where}" + (f" (log: {server.log_path})" if server.log_path else ""))

    def model_started(self, model: str, variants: int, planned: int, resumed: int) -> None:
        extra = f", {resumed} points already measured (resuming)" if resumed else ""
        _err(f"model {model}: {variants} config variants, up to {planned} points{extra}")

    def lanes_started(self, lanes) -> None:
        self.several = len(lanes) > 1
        _err(f"{len(lanes)} lane(s):")
        for lane in lanes:
            _err(f"  {lane.name}: {lane.where}")

    def trial_started(self, trial: Trial, done: int, planned: int, elapsed_s: float, lane: str = "") -> None:
        params = ", ".join(f"{k}={v}" for k, v in trial.variant.params.items())
        mins, secs = divmod(int(time.monotonic() - self.started), 60)
        look = f" look {trial.repeat + 1}" if trial.repeat else ""
        on = f" {lane}" if lane else ""
        _err(f"[{done + 1:>3}/{planned}{on} {mins:02d}:{secs:02d}] {trial.variant.name} ({params}) {trial.load} batch={trial.batch_size}{look} ...")

    def lane_lost(self, lane: str, why: str, trial: Trial, retried: bool) -> None:
        then = "retrying it once on another lane" if retried else "not retried"
        _err(f"          {lane} lost with {trial.variant.name} {trial.load} batch={trial.batch_size} in flight ({why}): {then}")

    def trial_finished(self, m: Measurement) -> None:
        whose = f"{m.lane} {m.variant} {m.load} batch={m.batch_size}: " if self.several else ""
        if m.status == "failed":
            _err(f"          {whose}failed: {m.error}")
        else:
            _err(f"          {whose}{_f(m.throughput, 1)}{plus_minus(m.throughput_ci, 1)} infer/s, p99 {_f(m.latency_p99_ms)}{plus_minus(m.latency_p99_ci_ms, 2)} ms"
                 f" ({m.status}, {m.windows} windows, {m.duration_s:.1f} s)")  # fmt: skip


# ------------------------------------------------------------------------------- output


def print_ranking(model: str, ranking: Sequence[RankedConfig], run: Run, limit: Optional[int] = None) -> None:
    rows = shown(ranking, limit)
    latency = run.goals_of(model).goal.latency_metric
    typer.echo(f"\nRanking of {model} ({len(ranking)} configs measured):")
    clients = sorted({r.best.client for r in ranking if r.best.client})
    if clients:  # figures of different clients are not alike: say which measured these
        typer.echo(f"measured through {' and '.join(clients)}")
    print_table(rows, run.output_fields.get("inference", ()), latency)
    typer.echo(verdict(model, ranking, list(run.goals_of(model).constraints), latency))


def print_overall(ranking: Sequence[RankedConfig], run: Run) -> None:
    """``num_top_model_configs``: the best configs of all models in one table."""
    if ranking:
        typer.echo(f"\nTop {len(ranking)} configs across all models:")
        print_table(ranking, run.output_fields.get("inference", ()))


def print_together(ranking: Sequence, limit: int) -> None:
    """Models profiled together: the best combinations, every model's figures in the same
    windows, and the verdict for the set."""
    if not ranking:
        return
    models = [m.model for m in ranking[0].rows]
    typer.echo(f"\nCombinations of {', '.join(models)} profiled together ({len(ranking)} measured):")
    header = ["rank", "combination", "point", *[f"{m} infer/s" for m in models], *[f"{m} p99 ms" for m in models], "score", "meets"]
    top = ranking[:limit]
    throughputs = [with_intervals([(c.rows[i].throughput, c.rows[i].throughput_ci) for c in top], 1) for i in range(len(models))]
    p99s = [with_intervals([(c.rows[i].latency_p99_ms, c.rows[i].latency_p99_ci_ms) for c in top], 2) for i in range(len(models))]
    lines = [header]
    for j, c in enumerate(top):
        lines.append([
            str(c.rank), c.name, c.point, *[column[j] for column in throughputs], *[column[j] for column in p99s],
            f"{c.score:.3f}", "yes" if c.passes else "no",
        ])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    typer.echo(together_verdict(ranking, models))


def print_table(rows: Sequence[RankedConfig], fields: Sequence[OutputField] = (), latency: str = "latency_p99_ms") -> None:
    """The ranking, one config a line; throughput and p99 with their 95% intervals, and the
    latency the verdict read (``percentile``) when that is another. With
    ``inference_output_fields`` (``fields``), those columns of each config's chosen point."""
    if fields:
        print_chosen(rows, fields)
        return
    judged = [] if latency == "latency_p99_ms" else [BUILT_IN.short(latency) + " (judged)"]
    header = ["#", "config", "instances", "max batch", "dyn batch", "load", *map(BUILT_IN.short, ("throughput", "latency_p99_ms")), *judged, "constraints"]
    table = [header]
    throughputs = with_intervals([(r.best.throughput, r.best.throughput_ci) for r in rows], 1)
    p99s = with_intervals([(r.best.latency_p99_ms, r.best.latency_p99_ci_ms) for r in rows], 2)
    for r, throughput, p99 in zip(rows, throughputs, p99s):
        p = r.best.variant_params
        table.append(
            [
                str(r.rank),
                r.variant + (" (default)" if r.is_default else "") + (f" = {', '.join(r.aliases)}" if r.aliases else ""),
                *(cell(p.get(name)) for name in DISPLAYED),
                str(r.best.load),
                throughput,
                p99,
                *([_f(r.best.value(latency))] if judged else []),
                ("meets" if r.passes else "misses " + ", ".join(r.misses)) + (" (tied)" if r.tied_with else "")
                + (f" ({r.best.looks} looks)" if r.best.looks > 1 else ""),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def print_chosen(rows: Sequence[RankedConfig], fields: Sequence[OutputField]) -> None:
    """The ranking in the columns ``inference_output_fields`` chose (a figure measured with
    an interval keeps its ``±``); ``satisfies_constraints`` is the ranking's verdict."""
    columns = []
    for f in fields:
        half = BUILT_IN.info(f.name).interval if f.metric else ""
        if half:
            columns.append(with_intervals([(r.best.value(f.name), getattr(r.best, half)) for r in rows], 2))
        else:
            said = ["Yes" if r.passes else "No" for r in rows]
            columns.append([_cell(outputfields.cell(f, r.best, ok)) for r, ok in zip(rows, said)])
    table = [["#", *(f.title for f in fields)]] + [[str(r.rank), *(c[i] for c in columns)] for i, r in enumerate(rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        typer.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else f"{value:.2f}" if isinstance(value, float) else str(value)


def with_intervals(figures: Sequence[Tuple[Optional[float], Optional[float]]], digits: int) -> List[str]:
    """A column of "value ±half-width" cells, all as wide: the values right-aligned and the
    ± one above the other, so a reader compares figures and their precision at a glance."""
    values = [_f(value, digits) for value, _ in figures]
    margins = [plus_minus(half, digits) if value is not None else "" for value, half in figures]
    value_width, margin_width = max(map(len, values), default=0), max(map(len, margins), default=0)
    return [v.rjust(value_width) + pm.ljust(margin_width) for v, pm in zip(values, margins)]


# ------------------------------------------------------------------------------ commands


@app.command("profile")
@_with_config_options(PROFILE)
def profile_command(config: Config, hooks: Hooks) -> None:
    """Sweep config variants and load levels of models on a real Triton server, then rank them.

    Every measurement is committed to the results store in the checkpoint directory as it
    finishes; rerun the same command to resume an interrupted sweep.
    """
    from tsweep.sweep import profile

    run = Run.build(config, hooks, sweep=True)
    try:
        outcome = profile(run, ConsoleProgress())
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; finished measurements are kept in {config.checkpoint_path}: rerun the same command to resume"
        ) from None
    _err(outcome.summary())
    for m in outcome.failed:
        _err(f"failed: {m.variant} {m.load} b{m.batch_size}: {m.error}")
    for model, ranking in outcome.rankings.items():
        print_ranking(model, ranking, run, config.num_configs_per_model)
    print_overall(outcome.overall, run)
    print_together(outcome.combinations, config.num_configs_per_model)
    for path in outcome.reports:
        typer.echo(f"wrote {path}")


@app.command("analyze")
@_with_config_options(ANALYZE)
def analyze_command(config: Config, hooks: Hooks) -> None:
    """Re-rank stored results with other objectives or constraints, without a server."""
    run = Run.build(config, hooks)
    with ResultsStore.open_existing(config.checkpoint_path) as store:
        stored = sorted({v["model"] for v in store.variants()})
        models = list(config.profile_models) or stored
        for model in models:
            if model not in stored:
                raise UsageError(f"model {model!r} has no results in {config.checkpoint_path}: stored models are {', '.join(stored) or 'none'}")
        rankings = analysis.rank(store, run, models)
        for model, ranking in rankings.items():
            print_ranking(model, ranking, run, config.num_configs_per_model)
        overall = analysis.rank_overall(store, run, models) if config.num_top_model_configs else []
        print_overall(overall, run)
        together = analysis.rank_together(store, run, models)
        print_together(together, config.num_configs_per_model)
        for path in analysis.write_reports(store, rankings, run, overall=overall, combinations=together):
            typer.echo(f"wrote {path}")


@app.command("report")
@_with_config_options(REPORT)
def report_command(config: Config, hooks: Hooks) -> None:
    """Show every measured load level of chosen configs (--report-model-configs a,b) and write
    a detailed PDF report for each."""
    if not config.report_model_configs:
        raise UsageError("no configs to report: pass --report-model-configs NAME[,NAME...] (see 'tsweep analyze' for names)")
    run = Run.build(config, hooks)
    with ResultsStore.open_existing(config.checkpoint_path) as store:
        measured = measured_configs(store, config.report_model_configs)
        todo = completion.plan(store, config, measured.values()) if config.complete_load_curves else {}
    if todo:  # the configs' missing load levels, measured as profile would, before reporting
        count = completion.measure(config, hooks, todo, ConsoleProgress())
        _err(f"completed the load curves of {', '.join(dict.fromkeys(measured.values()))}: {count} more level(s) measured, marked as measured later")
    with ResultsStore.open_existing(config.checkpoint_path) as store:
        points = repeats.merge(store.measurements(), run.catalogue)  # a point looked at more than once is one line, as in the PDF
        for name in config.report_model_configs:
            same = f" (measured as {measured[name]}, the same config)" if measured[name] != name else ""
            typer.echo(f"\n{name}{same}:")
            print_load_levels(sorted((m for m in points if m.variant == measured[name]), key=lambda m: (m.batch_size, m.load_value)))
        for path in analysis.write_reports(store, {}, run, measured):
            typer.echo(f"wrote {path}")


def measured_configs(store: ResultsStore, names: Sequence[str]) -> dict:
    """``{requested config: the variant whose rows hold its results}``; one line naming a
    config that was never measured."""
    measured = {}
    for name in names:
        measured[name] = analysis.measured_name(store, name)
        if measured[name] is None:
            known = sorted({m.variant for m in store.measurements()})
            raise UsageError(f"config {name!r} was never measured: measured configs are {', '.join(known) or 'none'}")
    return measured


def print_load_levels(points: Sequence[Measurement]) -> None:
    """``tsweep report``'s table of one config: a line per load level, throughput and p99
    with their 95% intervals (combined over the looks at a point measured more than once)."""
    header = ["load", *map(BUILT_IN.short, ("throughput", "latency_p50_ms", "latency_p99_ms", "queue_ms", "compute_infer_ms")), "status"]
    throughputs = with_intervals([(m.throughput, m.throughput_ci) for m in points], 2)
    p99s = with_intervals([(m.latency_p99_ms, m.latency_p99_ci_ms) for m in points], 2)
    table = [header] + [
        [f"{m.load} b{m.batch_size}", throughput, _f(m.latency_p50_ms), p99, _f(m.queue_ms), _f(m.compute_infer_ms),
         m.status + (f" ({m.looks} looks)" if m.looks > 1 else "")]
        for m, throughput, p99 in zip(points, throughputs, p99s)
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        # the load left-aligned, figures right-aligned, the status as it comes
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1])), row[-1]]
        typer.echo("  " + "  ".join(cells))


def _f(value: Optional[float], digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@app.command("plugins")
def plugins_command(ctx: typer.Context) -> None:
    """List every loaded plugin, where it came from, its hooks and what it provides."""
    hooks = plugin_manager(ctx)
    for row in hooks.describe():
        typer.echo(f"{row['name']}  [{row['origin']}]  {row['module']}")
        typer.echo(f"    hooks: {', '.join(row['hooks'])}")
        for provided in row["provides"]:
            typer.echo(f"    {provided}")


def plugin_manager(ctx: typer.Context) -> Hooks:
    """A fresh plugin manager for this command, honouring the root's --no-plugins."""
    off = bool((ctx.obj or {}).get("no_plugins"))
    return make_plugin_manager(autoload=False if off else None)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    no_plugins: bool = typer.Option(
        False, "--no-plugins", help=f"Load only tsweep's built-in plugins (like {AUTOLOAD_ENV}=1), e.g. to rule out a broken one."
    ),
) -> None:
    ctx.obj = {"no_plugins": no_plugins}
    if version:
        typer.echo(f"tsweep {__version__}")
        raise typer.Exit(0)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def _exit_now(signum, frame) -> None:
    """A second Ctrl-C: leave at once. The server still goes (it dies with its parent)."""
    os.write(2, b"\nstopping now\n")
    os._exit(130)


def _interrupt(signum, frame) -> None:
    """Ctrl-C or SIGTERM: stop cleanly (server stopped, finished points kept); a second one
    does not wait for the cleanup."""
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    os.write(2, b"\ninterrupted: stopping the server (Ctrl-C again to quit at once)\n")
    raise KeyboardInterrupt


def main() -> None:
    warnings.formatwarning = _one_line_warning  # e.g. a broken third-party plugin
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. nohup or a background job
            signal.signal(sig, _interrupt)
    app()
