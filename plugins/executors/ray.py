"""Executor ``ray``: one sweep spread over a Ray cluster's GPUs and nodes (``tsweep[ray]``).

``--executor ray`` measures trials on lanes, each a Ray actor with a Triton server of its
own on the node Ray placed it (:mod:`tsweep.plugins.executors.raylane`); the driver keeps the
search, the Judge, the results store and the reports (:mod:`tsweep.plugins.executors.raypool`).
``--cluster-address`` says which cluster: empty or ``local`` starts a private one on this
machine for the run (stopped with it), ``auto``, ``host:port`` or ``ray://host:10001``
joins an existing one (a team's cluster, KubeRay's head service; tsweep of the same version
must be installed where its workers run, and a cluster with token authentication needs
``RAY_AUTH_MODE=token`` and its token on the driver, as for any Ray driver). A private
cluster is asked for 127.0.0.1, but Ray binds its own services to the machine's address
anyway; its token authentication (Ray's default) guards them. Each lane's tritonserver binds
``triton_bind_address`` (127.0.0.1) on its node, as in a local run.

Everything that can be wrong is one line before anything starts: Ray not installed, an
address nothing answers at, lanes the cluster cannot give. Importing this module does not
import Ray, so tsweep starts fast and works without it.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

from tsweep.configvalues import ConfigKey
from tsweep.errors import UsageError
from tsweep.lanes import ExecutorContext
from tsweep.plugin import hookimpl

from tsweep.plugins.executors.raypool import LaneRequest, RayLanePool

INSTALL_HINT = "the ray executor needs Ray: pip install 'tsweep[ray]'"
#: Seconds a TCP connect to the cluster's address may take before it counts as unreachable.
PROBE_TIMEOUT_S = 3.0
#: The private cluster's object store: lanes only exchange trials, points and shipped models.
PRIVATE_OBJECT_STORE_BYTES = 128 * 2**20
_HOST_PORT = re.compile(r"^(?:ray://)?(\[[^\]]+\]|[^:/]+):(\d+)$")

CONFIG_KEYS = (
    ConfigKey("ray_lane_gpus", None, "GPUs each lane of the ray executor holds (its server sees only those); default: 1 when the cluster has GPUs, else 0", type="float", kind="count"),
    ConfigKey("ray_lane_cpus", 1.0, "CPUs each lane of the ray executor reserves; on CPU lanes the server and the load generator are pinned to that many cores of their node", kind="count"),
    ConfigKey("ray_lane_resources", {}, "Custom Ray resources each lane holds, e.g. {accelerator_type:H100: 1}; the cluster must offer them", type="Dict"),
    ConfigKey("ray_ship_limit_mb", 512.0, "The most model files (MB) the ray executor ships to lanes whose node cannot read the model repository", kind="positive"),
)  # fmt: skip


@hookimpl
def tsweep_config_keys():
    return CONFIG_KEYS


@hookimpl
def tsweep_executors():
    return {"ray": make_pool}


def make_pool(ctx: ExecutorContext) -> RayLanePool:
    """Check the run against Ray's rules, connect to the cluster, size the lanes; start nothing."""
    config, options = ctx.run.config, {**{k.name: k.value() for k in CONFIG_KEYS}, **ctx.options}
    refuse_pinned_ports(config)
    address = config.cluster_address or ""
    if address in ("", "local") and "ray" not in sys.modules:
        # Token authentication is Ray's default for a new cluster; asking for it by name spares
        # the user Ray's warning line about that default (Ray reads the mode when imported).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    ray = import_ray()
    cluster = connect(ray, address)
    try:
        request = lane_request(ray, options, config.lanes)
    except BaseException:
        cluster.close()
        raise
    return RayLanePool(cluster, request, config, ctx.models, ctx.launch, ctx.warn)


def refuse_pinned_ports(config) -> None:
    """Lanes share nodes, so none may take a port the user pinned (together mode and remote
    launch mode are refused for every executor but local, by the core)."""
    for key in ("triton_http_endpoint", "triton_grpc_endpoint", "triton_metrics_url"):
        if getattr(config, key, None):
            raise UsageError(f"{key} pins a port, but each lane of the ray executor picks free ports on its node: leave {key} unset")


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


@dataclass
class Cluster:
    """The run's connection to Ray: ``private`` when this run started the cluster."""

    description: str
    private: bool
    owned: bool = True  # this run called ray.init (a library user's own session is left alone)
    temp_dir: Optional[str] = None

    def close(self) -> None:
        import ray

        if self.owned and ray.is_initialized():
            ray.shutdown()  # a private cluster's processes stop with it
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def connect(ray, address: str) -> Cluster:
    """Join the cluster at ``address``, or start a private one for this run ("" or "local")."""
    if ray.is_initialized():  # a library user connected already: use that cluster as it is
        return Cluster(f"the Ray cluster this process joined ({ray.get_runtime_context().gcs_address})", private=False, owned=False)
    quiet = dict(log_to_driver=False, logging_level="warning", include_dashboard=False)
    if address in ("", "local"):
        # Ray's socket paths must stay under ~100 characters: a short folder of its own in /tmp.
        temp_dir = tempfile.mkdtemp(prefix="tsweep-ray-", dir="/tmp")
        try:
            ray.init(
                address="local", _node_ip_address="127.0.0.1", num_cpus=os.cpu_count(), object_store_memory=PRIVATE_OBJECT_STORE_BYTES,
                _temp_dir=temp_dir, **quiet,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        return Cluster(f"a private Ray cluster on this machine ({os.cpu_count()} CPUs)", private=True, temp_dir=temp_dir)
    probe(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = next((l.strip() for l in str(exc).splitlines() if l.strip()), type(exc).__name__)
        raise UsageError(f"cannot join the Ray cluster at --cluster-address {address}: {first[:200].rstrip('.')}; check the address (ray status on the head), and for a cluster with token authentication set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN)") from None
    return Cluster(f"the Ray cluster at {address}", private=False)


def probe(address: str) -> None:
    """A short TCP connect to ``host:port`` (or ``ray://host:port``), so an unreachable address
    is one line within seconds rather than Ray's long retries; ``auto`` is Ray's to resolve."""
    if address == "auto":
        return
    found = _HOST_PORT.match(address)
    if not found:
        raise UsageError(f"--cluster-address {address!r} is not an address: give local, auto, host:port or ray://host:10001")
    host, port = found.group(1).strip("[]"), int(found.group(2))
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc) or "timed out"
        raise UsageError(f"nothing answers at --cluster-address {address} ({why}): start the cluster (ray start --head) or fix the address") from None


def lane_request(ray, options: Mapping, lanes: int) -> LaneRequest:
    """Per-lane resources from the ``ray_lane_*`` keys, and how many lanes: ``lanes``, checked
    to fit the cluster, or (0) as many as fit."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    totals = _sum(nodes)
    gpus = options.get("ray_lane_gpus")
    if gpus is None:
        gpus = 1.0 if totals.get("GPU", 0) > 0 else 0.0
    need = {"CPU": float(options.get("ray_lane_cpus", 1.0)), "GPU": float(gpus), **custom_resources(options.get("ray_lane_resources") or {})}
    need = {k: v for k, v in need.items() if v > 0}
    fit = lanes_that_fit(nodes, need)
    if lanes == 0:
        if fit is None:
            raise UsageError("ray lanes that hold no resources (ray_lane_cpus and ray_lane_gpus 0) cannot be counted: give --lanes a number")
        lanes = fit
    if fit is not None and lanes > fit:
        raise UsageError(f"{shortfall(nodes, need, max(lanes, 1))}: lower --lanes or the ray_lane_* keys, or add nodes to the cluster")
    return LaneRequest(
        count=lanes, cpus=need.get("CPU", 0.0), gpus=need.get("GPU", 0.0),
        resources={k: v for k, v in need.items() if k not in ("CPU", "GPU")}, ship_limit_mb=float(options.get("ray_ship_limit_mb", 512.0)),
    )  # fmt: skip


def custom_resources(value: Mapping) -> Dict[str, float]:
    """``ray_lane_resources`` as {name: amount}; an amount that is not a number >= 0 is one line."""
    found = {}
    for name, amount in dict(value).items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise UsageError(f"config key 'ray_lane_resources' must map Ray resource names to amounts (numbers >= 0), got {name}: {amount!r}")
        found[str(name)] = float(amount)
    return found


def lanes_that_fit(nodes: List[Dict[str, float]], need: Dict[str, float]) -> Optional[int]:
    """How many lanes the nodes hold (a lane lives on one node); None when a lane needs nothing."""
    if not need:
        return None
    return sum(min(int(node.get(k, 0.0) / v + 1e-9) for k, v in need.items()) for node in nodes)


def shortfall(nodes: List[Dict[str, float]], need: Dict[str, float], lanes: int) -> str:
    """What is short, in words: the resource whose total is too small, else the packing."""
    totals = _sum(nodes)
    for key, each in need.items():
        if lanes * each > totals.get(key, 0.0) + 1e-9:
            return f"{lanes} lane(s) × {each:g} {key} need {lanes * each:g} {key}, but the cluster has {totals.get(key, 0.0):g}"
    fit = lanes_that_fit(nodes, need) or 0
    asked = ", ".join(f"{v:g} {k}" for k, v in need.items())
    return f"{lanes} lane(s) of {asked} each do not fit on the cluster's {len(nodes)} node(s): at most {fit} do (a lane lives on one node)"


def _sum(nodes: List[Dict[str, float]]) -> Dict[str, float]:
    totals: Dict[str, float] = {}
    for node in nodes:
        for key, value in node.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals
