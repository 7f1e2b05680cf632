"""The lane actor: one Ray actor per lane, owning one Triton server on the node Ray placed it.

The driver (:mod:`tsweep.plugins.executors.raypool`) creates one :class:`LaneWorker` per lane
with the resources the ``ray_lane_*`` keys ask for, and hands it trials one at a time; the
actor measures them exactly as a local run does (:class:`tsweep.executor.InProcessExecutor`
over a :class:`tsweep.session.ServerSession`: a server that dies mid-point fails that point
with the cause and is restarted before the next one). Everything the actor needs is built
on its node from the run's config, so its launcher, load generator and collectors are the
same plugins, with the lane's own output repository, server log, ports and GPUs or cores.

This module is imported on the driver only once Ray is (it registers how Triton's model
configs travel), and on the workers by Ray itself.
"""
from __future__ import annotations

import copyreg
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from tsweep import modelconfig
from tsweep.errors import ServerError, UsageError
from tsweep.executor import InProcessExecutor
from tsweep.measure import Decided
from tsweep.records import LaunchSettings, Measurement, ModelSpec, Trial

from tsweep.plugins.executors import rayship


def _model_config(data: bytes):
    return modelconfig.ModelConfig.FromString(data)


# Triton's ModelConfig class names a module ("model_config_pb2") that only tritonclient's own
# import path finds, so neither pickle nor Ray can send it by reference: send its bytes.
copyreg.pickle(modelconfig.ModelConfig, lambda config: (_model_config, (config.SerializeToString(),)))


def cores_for(rank: int, count: float, allowed: Sequence[int]) -> Tuple[int, ...]:
    """The cores of the ``rank``-th lane on a node, each lane ``count`` whole cores.

    Ray reserves a number of CPUs per actor, not particular cores, so two lanes on one node
    would otherwise share every core and measure each other's load. Lanes take consecutive
    cores by their rank on the node (wrapping when the node declares more CPUs than it has
    cores); a fractional reservation under one core confines nothing."""
    n = int(count)
    if n < 1 or not allowed:
        return ()
    cores = sorted(allowed)
    return tuple(sorted({cores[(rank * n + i) % len(cores)] for i in range(n)}))


def confine(cores: Sequence[int]) -> None:
    """Pin every thread of this process to ``cores``; the server and the load generator's
    threads, started afterwards, inherit it."""
    try:
        tasks = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tasks = [0]
    for tid in tasks:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:
            pass  # a thread that ended meanwhile


def span(cores: Sequence[int]) -> str:
    """``0-3`` or ``0,2``: how a set of cores reads in a progress line."""
    cores = sorted(cores)
    if cores and cores == list(range(cores[0], cores[-1] + 1)) and len(cores) > 1:
        return f"{cores[0]}-{cores[-1]}"
    return ",".join(map(str, cores))


#: The guard's program: leave its parent at once (Ray kills a dead worker's children, and the
#: guard must outlive the worker), remember the last process group named on stdin, and at end of
#: input (the worker is gone, however it went) kill that group and remove the lane's models.
_GUARD = """
import os, shutil, signal, sys
if os.fork():
    os._exit(0)
group = 0
for line in sys.stdin:
    group = int(line)
if group:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
for folder in sys.argv[1:]:
    shutil.rmtree(folder, ignore_errors=True)
try:
    os.rmdir(os.path.dirname(sys.argv[1]))  # the lane's folder, unless its server log is kept there
except (OSError, IndexError):
    pass
"""


class ServerGuard:
    """Stops the lane's server when the lane's worker dies, even by SIGKILL.

    The local launcher ties tritonserver to its parent (PDEATHSIG), and Ray kills a dead
    worker's children, but both reach the server alone: its python backend stubs live on in
    its process group (seen: stubs still there minutes after the driver was killed). So a
    small process of its own session, child of no worker, reads the server's process group
    from a pipe the worker holds; when the pipe closes without a last "0" (a clean stop), it
    kills the group and removes the lane's models."""

    def __init__(self, folders: Sequence[Path]):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _GUARD, *map(str, folders)], stdin=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.proc.wait(timeout=30)  # the first process leaves at once; the guard goes on, holding the pipe

    def watch(self, group: Optional[int]) -> None:
        """Guard process group ``group`` (the server's pid: it leads its own group); None: nothing."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.write(f"{group or 0}\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        self.watch(None)
        self.proc.stdin.close()


class LaneWorker:
    """One lane: see the module docstring. Methods are called by the driver, one at a time.

    ``hidden`` is a path prefix the lane treats as unreadable: a test seam standing in for a
    node without the driver's file system (one machine cannot show two nodes different
    files at one path), so the shipping path runs for real."""

    def __init__(self, name: str, config, launch: LaunchSettings, driver_cwd: str, hidden: str = ""):
        self.name, self.config, self.launch, self.hidden = name, config, launch, hidden
        if os.path.isdir(driver_cwd):  # relative paths in the config mean the same as on the driver
            os.chdir(driver_cwd)
        self.home = Path(tempfile.mkdtemp(prefix=f"tsweep-{name.replace(' ', '')}-"))
        self.paths: Dict[str, Path] = {}  # model name -> its folder on this node, when shipped
        self.session = None
        self.executor: Optional[InProcessExecutor] = None
        self.unsettled: Optional[Measurement] = None
        self.model: Optional[str] = None  # the model whose variant is loaded
        self.guard = ServerGuard([self.home / "models", self.home / "shipped"])

    def node(self) -> dict:
        """Where Ray placed this lane."""
        import ray

        context = ray.get_runtime_context()
        return {"ip": ray.util.get_node_ip_address(), "node": context.get_node_id(), "pid": os.getpid()}

    def unreadable(self, fingerprints: Dict[str, Tuple[str, str]]) -> List[str]:
        """The models (``{name: (driver's path, fingerprint)}``) this node does not see as
        the driver does: missing, unreadable, or another copy."""
        wrong = []
        for name, (path, expected) in fingerprints.items():
            if (self.hidden and path.startswith(self.hidden)) or rayship.fingerprint(Path(path)) != expected:
                wrong.append(name)
        return wrong

    def receive(self, blob: bytes) -> None:
        """The models shipped by the driver: extracted here, used instead of the driver's paths."""
        self.paths.update(rayship.unpack(blob, self.home / "shipped"))

    def start(self, rank: int, cpus: float) -> dict:
        """Start the lane's server, confined to the lane's GPUs or cores; ServerError if it will not start."""
        import ray

        from tsweep.pluginmanager import make_plugin_manager
        from tsweep.run import Run
        from tsweep.session import ServerSession
        from tsweep.settings import variant_loading
        from tsweep import gpus as gpu_selection

        ids = [str(i) for i in ray.get_gpu_ids()]
        cores: Tuple[int, ...] = ()
        if ids:
            try:
                chosen = gpu_selection.select(ids)  # NVML numbers GPUs as Ray does; the launcher wants UUIDs
            except UsageError:  # NVML does not see them (no NVML on this node): CUDA_VISIBLE_DEVICES takes indices too
                chosen = tuple(ids)
            place = f"GPU {','.join(ids)}"
        else:
            chosen = ()
            cores = cores_for(rank, cpus, os.sched_getaffinity(0))
            if cores:
                confine(cores)
            place = f"cores {span(cores)}" if cores else "CPU"
        output = self.home / "models"
        output.mkdir(exist_ok=True)
        source = self.launch.source_repository
        if source is not None and self.paths:  # a container must see the shipped models' folders
            source = self.home / "shipped"
        launch = dataclasses.replace(
            self.launch, model_repository=output, log_dir=self.home, log_path=self.log_path(), gpus=chosen, source_repository=source,
        )  # fmt: skip
        run = Run.build(self.config, make_plugin_manager(), sweep=True)
        parts = run.profiling()
        launcher = parts.launcher(launch)
        launcher.preflight()

        def collectors(server):
            return run.hooks.metric_collectors(dataclasses.replace(server, gpus=chosen), self.config.monitoring_interval)

        self.session = ServerSession(launcher, output, self.config.server_ready_timeout_s, collectors, variant_loading(self.config, launcher, output))
        self.executor = InProcessExecutor(self.session, parts.load_of, parts.load_generator, parts.method)
        server = self.session.start()
        self.guard.watch(server.pid)
        return {"where": f"{self.node()['ip']} {place}, {server.description}", "pid": server.pid}

    def baseline(self, idle_s: float) -> Optional[Dict[str, float]]:
        """The idle server's metrics (nothing loaded, no load), as a local run samples them."""
        from tsweep.measure import server_baseline

        if self.session is None or not self.session.collectors:
            return None
        return server_baseline(self.session.collectors, idle_s)

    def log_path(self) -> Path:
        """The lane's server log: next to the driver's (``tritonserver-lane1.log``, or the
        ``triton_output_path`` name with the lane's) when this node can write that folder,
        so it outlives the lane; else in the lane's folder on this node."""
        slug = self.name.replace(" ", "")
        wanted = self.launch.server_log
        folder = wanted.parent if wanted.parent.is_absolute() else Path.cwd() / wanted.parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder / f"{wanted.stem}-{slug}{wanted.suffix}"
        return self.home / f"tritonserver-{slug}.log"

    def measure(self, model: ModelSpec, trial: Trial, decided: Optional[Decided]) -> Tuple[Measurement, Optional[str], int]:
        """(the point, the digest of the variant now loaded or None, the server's restarts so far).

        A server that died during the previous point is restarted first; one that died too
        often raises ServerError, and the driver retires the lane."""
        if self.executor is None:
            raise ServerError(f"{self.name} has no server: it was not started")
        if self.unsettled is not None:
            previous, self.unsettled = self.unsettled, None
            self.executor.settle(previous)
            self.guard.watch(self.session.server.pid)  # a restarted server is a new group
        m = self.executor.measure(self._here(model), trial, decided)
        self.unsettled = m
        self.model = model.name
        loader = self.session.loader
        loaded = trial.variant.digest if loader is not None and loader.loaded == trial.variant.name else None
        return m, loaded, self.session.restarts

    def model_done(self, model: str) -> None:
        """No more trials of ``model``: unload its variant, if it is the one loaded."""
        if self.executor is not None and self.model == model:
            self.executor.model_done()
            self.model = None

    def stop(self) -> None:
        """Stop the server and remove the lane's copies of the models (a log kept there stays)."""
        try:
            if self.session is not None:
                self.session.stop()
        finally:
            self.guard.close()
            for folder in ("models", "shipped"):
                shutil.rmtree(self.home / folder, ignore_errors=True)
            try:
                self.home.rmdir()  # unless the server's log is kept there
            except OSError:
                pass

    def _here(self, model: ModelSpec) -> ModelSpec:
        """``model`` with its folders where this node has them (shipped ones remapped)."""
        if not self.paths:
            return model
        composing = tuple(dataclasses.replace(p, path=self.paths.get(p.name, p.path)) for p in model.composing)
        return dataclasses.replace(model, path=self.paths.get(model.name, model.path), composing=composing)
