"""The ray executor on a real local Ray cluster bound to this machine (issue 17).

One Ray head (``ray start --head --block``) serves the whole module: it is started once as a
process group of its own and stopped by killing that group by PID (never ``ray stop``, which
would stop other users' clusters on a shared machine). The lanes are real Ray actors, each
starting a real embedded tritonserver; nothing is faked but one thing, said where it is: a
node that cannot read the driver's model repository (one machine shows every process the
same files, so the lanes are told to treat that path as unreadable, and the real shipping
code runs).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

import pypdf

from tests.support import MODEL_REPOSITORY, TINY_SWEEP, TSWEEP, run_tsweep, stored, tree, wait_gone

# The test cluster uses Ray's token authentication (its default), with a token of this
# session's own rather than the one in the user's home; a driver must know the mode before
# Ray reads its config, at import (or refresh it, when another module imported Ray first).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
_imported_before = "ray" in sys.modules
ray = pytest.importorskip("ray")
if _imported_before:
    from ray._raylet import Config

    Config.initialize("")

from tsweep import repository  # noqa: E402
from tsweep.config import load_config  # noqa: E402
from tsweep.errors import ServerError, UsageError  # noqa: E402
from tsweep.pluginmanager import make_plugin_manager  # noqa: E402
from tsweep.records import LoadLevel, Trial  # noqa: E402
from tsweep.run import Run  # noqa: E402
from tsweep.settings import launch_settings, space_settings  # noqa: E402
from tsweep.sweep import name_variants  # noqa: E402
from tsweep.plugins.executors import ray as ray_executor  # noqa: E402
from tsweep.plugins.executors import rayship  # noqa: E402
from tsweep.plugins.executors.raylane import cores_for  # noqa: E402
from tsweep.plugins.executors.raypool import HIDE_ENV, RayLanePool  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages).split())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_under(folder: str) -> list:
    """Processes whose command line names ``folder`` (a Ray session's own temp folder)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(folder in part for part in p.info["cmdline"] or ()):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="module")
def cluster():
    """A Ray head on this machine with 2 CPUs and one GPU: its address ("127.0.0.1:port").
    The GPU is declared, not real (this machine has none): the narrowest stand-in for a GPU
    node, as Ray assigns it and the lane confines its server to it. Token
    authentication on, as Ray does by default: the head and this test's driver both say so
    (RAY_AUTH_MODE) and hold the same token (RAY_AUTH_TOKEN), both set at the top of this module."""
    temp = tempfile.mkdtemp(prefix="tsweep-rt-", dir="/tmp")  # Ray's socket paths must stay short
    port = free_port()
    proc = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=1",
         "--include-dashboard=false", f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={temp}",
         "--disable-usage-stats", "--object-store-memory=100000000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        for line in proc.stdout:  # --block prints this once the head is up, then stays
            if "Ray runtime started" in line:
                break
        else:
            pytest.fail(f"ray start ended with code {proc.wait()}")
        yield f"127.0.0.1:{port}"
    finally:  # the whole group at once: ray start --block lingers on SIGTERM, and nothing here needs a clean stop
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        for p in processes_under(temp):  # what left the group (none seen; checked, stopped by PID)
            p.kill()
        shutil.rmtree(temp, ignore_errors=True)


def parts(tmp: Path, **keys):
    """(config, models, trials, launch settings) of a small add_sub sweep: two variants
    (default, and 1 instance at max_batch_size 8) at concurrency 1 and 2."""
    config = load_config(None, {
        "model_repository": str(MODEL_REPOSITORY), "profile_models": "add_sub", "output_model_repository_path": str(tmp / "out"),
        "checkpoint_directory": str(tmp / "checkpoints"), "measurement_window_s": 0.2, "run_config_search_max_instance_count": 1,
        "run_config_search_min_model_batch_size": 8, "run_config_search_max_model_batch_size": 8, **keys,
    })  # fmt: skip
    run = Run.build(config, make_plugin_manager(), sweep=True)
    models = repository.find_models(config.model_repository, config.profile_models)
    space = run.hooks.config_space(models[0], space_settings(config, "add_sub"))
    variants = name_variants("add_sub", space.variants)
    trials = [Trial(v, LoadLevel("concurrency", c)) for v in variants for c in (1, 2)]
    return config, models, trials, launch_settings(config, tmp / "out")


def pool_on(address: str, tmp: Path, lanes: int, warnings: list, keys: dict | None = None, **options) -> RayLanePool:
    config, models, _, launch = parts(tmp, **(keys or {}))
    connection = ray_executor.connect(ray, address)
    request = ray_executor.lane_request(ray, {"ray_lane_cpus": 1.0, "ray_lane_gpus": 0.0, **options}, lanes)
    return RayLanePool(connection, request, config, models, launch, warn=warnings.append)


# -- with the cluster -------------------------------------------------------------------


@pytest.mark.server
def test_two_lanes_measure_trials_ship_models_and_a_killed_lane_loses_only_its_point(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv(HIDE_ENV, str(MODEL_REPOSITORY))  # the stand-in for a node without the shared file system
    _, models, trials, _ = parts(tmp_path)
    warnings: list = []
    pool = pool_on(cluster, tmp_path, 2, warnings)
    try:
        lanes = pool.start()
        assert [lane.name for lane in lanes] == ["lane 1", "lane 2"]
        for lane in lanes:  # each lane its own core of the node, its own server
            assert re.fullmatch(r"\S+ cores \d, tritonserver [\d.]+, .+, pid \d+", lane.where), lane.where
        assert len({lane.where.split(",")[0] for lane in lanes}) == 2
        for state in pool.lanes.values():  # the server really runs on the lane's core, and only there
            core = int(re.search(r"cores (\d)", state.where).group(1))
            assert psutil.Process(state.server_pid).cpu_affinity() == [core]
        assert any("shipped the models" in w and "2 lane(s)" in w for w in warnings), warnings

        finished, waiting = [], list(trials)
        while waiting or len(pool.idle()) < 2:
            for name in pool.idle():
                if waiting:
                    pool.submit(name, models[0], waiting.pop(0), None)
            finished += pool.wait(timeout_s=60)
        assert sorted((f.trial.variant.name, f.trial.load.value) for f in finished) == sorted((t.variant.name, t.load.value) for t in trials)
        assert {f.lane for f in finished} == {"lane 1", "lane 2"}
        for f in finished:
            assert not f.lost and f.measurement.status != "failed", f.measurement.error
            assert f.measurement.throughput > 0 and f.measurement.requests > 0
        last = {f.lane: f.trial.variant.digest for f in finished}
        assert all(pool.loaded(name) == digest for name, digest in last.items())

        # lane 2's worker killed mid-point: the point comes back lost with the cause, its server goes too
        victim = pool.lanes["lane 2"]
        server_pid = victim.server_pid
        pool.submit("lane 2", models[0], trials[0], None)
        os.kill(victim.pid, signal.SIGKILL)
        lost = pool.wait(timeout_s=60)
        assert len(lost) == 1 and lost[0].measurement is None and lost[0].trial == trials[0]
        assert re.match(r"lane 2 on \S+: worker died \(.+\)", lost[0].lost), lost[0].lost
        assert pool.idle() == ["lane 1"] and pool.loaded("lane 2") is None
        assert wait_gone(server_pid), "the lost lane's tritonserver outlived its worker"
        pool.submit("lane 1", models[0], trials[0], None)  # the runner's retry, on the lane left
        (again,) = pool.wait(timeout_s=60)
        assert again.lane == "lane 1" and again.measurement.status != "failed"
        survivor = pool.lanes["lane 1"].server_pid
    finally:
        pool.stop()
        pool.stop()  # harmless twice
    assert wait_gone(survivor), "stop() left a lane's tritonserver running"
    assert not ray.is_initialized()


@pytest.mark.server
def test_lanes_the_cluster_cannot_give_are_one_line_before_anything_starts(cluster):
    connection = ray_executor.connect(ray, cluster)
    try:
        with pytest.raises(UsageError, match=r"^3 lane\(s\) × 1 CPU need 3 CPU, but the cluster has 2: lower --lanes"):
            ray_executor.lane_request(ray, {"ray_lane_cpus": 1.0}, 3)
        with pytest.raises(UsageError, match=r"^2 lane\(s\) × 1 GPU need 2 GPU, but the cluster has 1: "):
            ray_executor.lane_request(ray, {"ray_lane_gpus": 1.0}, 2)
        assert ray_executor.lane_request(ray, {"ray_lane_gpus": None}, 0).count == 1  # GPU lanes by default on a cluster with GPUs
        with pytest.raises(UsageError, match=r"need 2 fpga, but the cluster has 0"):
            ray_executor.lane_request(ray, {"ray_lane_gpus": 0.0, "ray_lane_resources": {"fpga": 1}}, 2)
        assert ray_executor.lane_request(ray, {"ray_lane_cpus": 1.0, "ray_lane_gpus": 0.0}, 0).count == 2  # as many as fit
        assert ray_executor.lane_request(ray, {"ray_lane_cpus": 0.5, "ray_lane_gpus": 0.0}, 0).count == 4
        assert ray.available_resources().get("CPU") == 2.0  # nothing was started
    finally:
        connection.close()


@pytest.mark.server
def test_a_lane_that_cannot_read_models_over_the_ship_limit_is_one_line(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv(HIDE_ENV, str(MODEL_REPOSITORY))
    pool = pool_on(cluster, tmp_path, 1, [], ray_ship_limit_mb=1e-6)  # a byte: add_sub's files are more
    try:
        with pytest.raises(UsageError) as raised:
            pool.start()
    finally:
        pool.stop()
    assert re.fullmatch(
        rf"lane 1 on \S+ cannot read {re.escape(str(MODEL_REPOSITORY / 'add_sub'))} and the models \([\d.e-]+ MB\) exceed ray_ship_limit_mb "
        r"\(1e-06\): put the repository on a path every node sees, or raise the limit",
        str(raised.value),
    ), raised.value
    assert pool.stopped and not ray.is_initialized()
    assert not (tmp_path / "out").exists()  # no server was started, nothing written


@pytest.mark.server
def test_a_lane_whose_server_will_not_start_is_retired_with_the_reason(cluster, tmp_path):
    warnings: list = []
    (tmp_path / "checkpoints").mkdir()  # as the run has made it by the time lanes start
    pool = pool_on(cluster, tmp_path, 1, warnings, keys={"triton_server_flags": {"no-such-flag": 1}})
    try:
        with pytest.raises(ServerError, match=r"^no lane could start its server \(1 tried; the warnings above say why\)$"):
            pool.start()
    finally:
        pool.stop()
    assert len(warnings) == 1, warnings
    found = re.fullmatch(r"lane 1 on \S+ retired: its server would not start: tritonserver exited before it became ready.*\(log: (\S+)\)", warnings[0])
    assert found, warnings[0]
    assert Path(found.group(1)) == tmp_path / "checkpoints" / "tritonserver-lane1.log"  # next to the driver's, kept
    assert "no-such-flag" in Path(found.group(1)).read_text()
    assert not ray.is_initialized()


@pytest.mark.server
def test_a_gpu_lane_confines_its_server_to_the_gpu_ray_assigned(cluster, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    pool = pool_on(cluster, tmp_path, 1, [], ray_lane_gpus=1.0)
    try:
        (lane,) = pool.start()
        assert re.fullmatch(r"\S+ GPU 0, tritonserver .+", lane.where), lane.where
        environ = Path(f"/proc/{pool.lanes['lane 1'].server_pid}/environ").read_bytes().split(b"\0")
        assert b"CUDA_VISIBLE_DEVICES=0" in environ  # the UUID where NVML names it; this machine has no NVML
        assert pool.server_baseline(0.2) is not None  # the idle server's figures, as a local run samples them
    finally:
        pool.stop()


# -- without a cluster ------------------------------------------------------------------


@pytest.mark.server  # profile checks the server binary before the executor
def test_an_unreachable_cluster_address_is_one_line_within_seconds_and_nothing_written(workdir: Path):
    port = free_port()  # bound and released: nothing listens there
    done = run_tsweep(*TINY_SWEEP, "--executor", "ray", "--cluster-address", f"127.0.0.1:{port}", cwd=workdir, timeout=60)
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(rf"error: nothing answers at --cluster-address 127.0.0.1:{port} \(.+\): start the cluster \(ray start --head\) or fix the address\n", done.stderr), done.stderr
    assert tree(workdir) == []
    with pytest.raises(UsageError, match=r"is not an address: give local, auto, host:port or ray://host:10001"):
        ray_executor.connect(ray, "head-node")
    assert not ray.is_initialized()


@pytest.mark.server
def test_without_ray_installed_profile_names_the_extra_and_writes_nothing(tmp_path, workdir: Path):
    # The narrowest boundary for "Ray is not installed": a package named ray that fails to
    # import, first on the path of the CLI's interpreter (this venv has Ray, as CI must).
    stub = tmp_path / "stub" / "ray"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    done = run_tsweep(*TINY_SWEEP, "--executor", "ray", cwd=workdir, env={"PYTHONPATH": str(stub.parent)}, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "error: the ray executor needs Ray: pip install 'tsweep[ray]'\n"
    assert tree(workdir) == []


def test_the_plugin_does_not_import_ray():
    code = "import sys\nfrom tsweep.pluginmanager import make_plugin_manager\nmake_plugin_manager()\nprint('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_lanes_fit_by_node_and_cpu_lanes_take_their_own_cores():
    nodes = [{"CPU": 4.0, "GPU": 2.0}, {"CPU": 2.0}]
    assert ray_executor.lanes_that_fit(nodes, {"CPU": 1.0}) == 6
    assert ray_executor.lanes_that_fit(nodes, {"CPU": 1.0, "GPU": 1.0}) == 2
    assert ray_executor.lanes_that_fit(nodes, {"CPU": 3.0}) == 1  # 3 + 3 CPUs in all, but a lane lives on one node
    assert ray_executor.lanes_that_fit(nodes, {}) is None
    assert "at most 1 do (a lane lives on one node)" in ray_executor.shortfall(nodes, {"CPU": 3.0}, 2)
    assert cores_for(0, 1, [0, 1]) == (0,) and cores_for(1, 1, [0, 1]) == (1,)
    assert cores_for(1, 2, range(8)) == (2, 3)
    assert cores_for(2, 1, [4, 5]) == (4,)  # more lanes declared than cores: wrap
    assert cores_for(0, 0.5, [0, 1]) == ()  # under one core: nothing to pin


def test_shipped_models_arrive_whole_and_the_fingerprint_sees_a_changed_copy(tmp_path):
    folder = MODEL_REPOSITORY / "add_sub"
    landed = rayship.unpack(rayship.pack({"add_sub": folder}), tmp_path / "lane")
    assert landed == {"add_sub": tmp_path / "lane" / "add_sub"}
    assert rayship.fingerprint(landed["add_sub"]) == rayship.fingerprint(folder)
    (landed["add_sub"] / "config.pbtxt").write_text((folder / "config.pbtxt").read_text().replace("8", "4"))
    assert rayship.fingerprint(landed["add_sub"]) != rayship.fingerprint(folder)
    assert rayship.fingerprint(tmp_path / "missing") is None


# -- end to end: tsweep profile --executor ray, on a private cluster -------------------

#: Six add_sub points (default and one variant, concurrency 1, 2, 4) on two lanes.
E2E = [*TINY_SWEEP, "--concurrency", "1,2,4", "--measurement-window-s", "0.2", "--executor", "ray", "--lanes", "2"]
E2E_POINTS = 6


def start_sweep(workdir: Path) -> subprocess.Popen:
    return subprocess.Popen([*TSWEEP, *E2E], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _titled(p: psutil.Process, titles: tuple) -> bool:
    try:
        return bool(p.cmdline()) and p.cmdline()[0].startswith(titles)
    except psutil.NoSuchProcess:
        return False


def all_gone(processes: list) -> list:
    """Those of ``processes`` still running after a bounded wait for each: (pid, title)."""
    left = []
    for p in processes:
        if not wait_gone(p.pid, timeout_s=30):
            try:
                left.append((p.pid, " ".join(p.cmdline())[:120]))
            except psutil.NoSuchProcess:
                continue
    return left


@pytest.mark.server
def test_profile_over_two_lanes_survives_a_lost_lane_and_ranks_from_one_store(workdir: Path):
    proc = start_sweep(workdir)
    driver = psutil.Process(proc.pid)
    err, lanes, begun, killed, family = [], {}, 0, None, []
    for line in proc.stderr:
        err.append(line)
        if found := re.match(r"\s+(lane \d): .* pid (\d+)$", line.rstrip()):
            lanes[found.group(1)] = int(found.group(2))
        if found := re.match(r"\[\s*\d+/\d+ (lane \d+)", line):
            begun += 1
            if begun == 3 and killed is None:  # this lane just began its second point: kill its worker mid-point
                killed = found.group(1)
                family = driver.children(recursive=True)
                worker = psutil.Process(lanes[killed]).parent()  # the server's parent is the lane's worker
                assert _titled(worker, ("ray::LaneWorker",))
                worker.kill()
    assert proc.wait(timeout=300) == 0, "".join(err)
    text = "".join(err)
    assert killed and len(lanes) == 2
    assert re.search(rf"{killed} lost with .* worker died .*: retrying it once on another lane", text), text
    rows = stored(workdir)
    assert len(rows) == E2E_POINTS and len({r["point_key"] for r in rows}) == E2E_POINTS  # every point once
    assert all(r["status"] != "failed" for r in rows), [r["error"] for r in rows]
    per_lane = {name: sum(r["lane"] == name for r in rows) for name in lanes}
    assert sum(per_lane.values()) == E2E_POINTS and all(per_lane.values()), per_lane
    assert f"per lane: lane 1 {per_lane['lane 1']}, lane 2 {per_lane['lane 2']}" in text, text
    assert "Best config for add_sub:" in proc.stdout.read()
    summary = pdf_text(workdir / "reports" / "summaries" / "add_sub" / "result_summary.pdf")
    assert "add_sub_config_default" in summary and "add_sub_config_0" in summary
    assert all_gone(family) == []  # Ray's processes, the lanes and their servers all ended with the run


@pytest.mark.server
def test_the_driver_killed_mid_sweep_takes_its_cluster_along_and_a_rerun_resumes(workdir: Path):
    proc = start_sweep(workdir)
    driver, family, finished = psutil.Process(proc.pid), [], 0
    for line in proc.stderr:
        if " infer/s, p99 " in line:  # a point's result line: it is stored
            finished += 1
            if finished == 2:
                family = driver.children(recursive=True)
                proc.kill()  # kill -9 of the tsweep process
                break
    proc.wait(timeout=60)
    # Ray's two node agents notice their raylet's death within a second but then try to report
    # it to the dead GCS, which takes them a minute or so: they are stopped here, by PID.
    agents = [p for p in family if _titled(p, ("ray::DashboardAgent", "ray::RuntimeEnvAgent"))]
    rest = [p for p in family if p not in agents]
    assert rest and all_gone(rest) == []  # raylet, GCS, lane workers, tritonservers: none outlives the driver
    for p in agents:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    kept = len(stored(workdir))
    assert 2 <= kept < E2E_POINTS
    again = subprocess.run([*TSWEEP, *E2E], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert re.search(rf"^{E2E_POINTS - kept} points measured .* {kept} reused from", again.stderr, re.M), again.stderr
    rows = stored(workdir)
    assert len(rows) == len({r["point_key"] for r in rows}) == E2E_POINTS
