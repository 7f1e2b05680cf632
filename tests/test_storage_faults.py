"""Output folders that cannot take tsweep's files: read-only, and full mid-run.

Uses real file systems: a read-only and a tiny tmpfs where the test may mount (root, as on
these machines), else a folder without write permission (non-root); a case that needs a
mount is skipped only when mounting is impossible.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.support import TINY_SWEEP, run_tsweep, stored, tree


def mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def read_only_dir(tmp_path: Path):
    place = tmp_path / "ro"
    if mount_tmpfs(place, "size=64k,ro"):
        yield place, "read-only file system"
        subprocess.run(["umount", str(place)], check=True)
    elif os.geteuid() != 0:
        place.mkdir(exist_ok=True)
        place.chmod(0o555)
        yield place, f"no write permission on {place}"
        place.chmod(0o755)
    else:
        pytest.skip("root without mount(2): neither a read-only mount nor permissions can refuse a write here")


@pytest.fixture
def tiny_dir(tmp_path: Path, request):
    """A tmpfs of ``request.param`` (default 24k): room for a few model variants."""
    place = tmp_path / "tiny"
    if not mount_tmpfs(place, f"size={getattr(request, 'param', '24k')}"):
        pytest.skip("cannot mount a tiny tmpfs here (needs root)")
    yield place
    subprocess.run(["umount", str(place)], check=True)


@pytest.mark.parametrize("key, flag, what", [
    ("output_model_repository_path", "--output-model-repository-path", "output model repository"),
    ("checkpoint_directory", "--checkpoint-directory", "checkpoint directory"),
    ("export_path", "--export-path", "export path"),
])  # fmt: skip
def test_read_only_destination_is_refused_before_anything_is_written(workdir: Path, read_only_dir, flag, key, what):
    place, reason = read_only_dir
    target = place / "sub"
    result = run_tsweep(*TINY_SWEEP, flag, str(target), cwd=workdir)  # the flag's last value wins
    assert result.returncode == 2
    assert result.stderr == f"error: {what} {target} is not writable ({reason}): choose another {flag}\n"
    assert tree(workdir) == [] and not target.exists()


@pytest.mark.server
@pytest.mark.slow
def test_output_repository_filling_up_mid_run_stops_cleanly_and_keeps_the_points(workdir: Path, tiny_dir: Path):
    out = tiny_dir / "out"
    args = [*TINY_SWEEP, "--output-model-repository-path", str(out), "--measurement-window-s", "0.2",
            "--run-config-search-max-instance-count", "3"]  # fmt: skip
    result = run_tsweep(*args, cwd=workdir)
    assert result.returncode == 4, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {out}/") and "No space left on device" in last
    assert last.endswith("finished points are kept in checkpoints/results.sqlite: free space or fix the folder, then rerun to resume")
    kept = stored(workdir)  # integrity checked
    assert kept and all(r["status"] in ("ok", "unstable") for r in kept)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".tsweep-output"]  # no staging leftovers
    server_pid = int(re.search(r"pid (\d+) at http", result.stderr).group(1))
    assert not psutil.pid_exists(server_pid)  # stopped before the error was reported


@pytest.mark.parametrize("tiny_dir", ["160k"], indirect=True)
def test_results_store_on_a_full_disk_says_so_and_keeps_what_it_has(tmp_path: Path, tiny_dir: Path):
    import sqlite3

    from tsweep.errors import StorageError
    from tsweep.records import Measurement
    from tsweep.store import ResultsStore

    def row(i):
        return Measurement(model="m", variant="v", variant_digest="d", load_kind="concurrency", load_value=float(i + 1),
                           batch_size=1, status="ok", throughput=1.0, histogram=os.urandom(2048))  # fmt: skip

    path = tiny_dir / "ck" / "results.sqlite"
    try:
        store = ResultsStore.open(path)
    except StorageError:
        pytest.skip("the tiny file system cannot even hold an empty store")
    written = 0
    with pytest.raises(StorageError) as failure:
        for i in range(1000):
            store.add(row(i))
            written += 1
    store.close()
    assert str(failure.value).startswith(f"cannot write the results store {path}: database or disk is full")
    assert written > 0
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == written  # every committed row, no partial one
    conn.close()


def test_a_write_that_finds_the_disk_full_names_its_file(tmp_path: Path):
    """write() errors carry no file name (open() errors do): the one line must still say where."""
    import errno

    from tsweep import files

    target = tmp_path / "out" / "m_config_0" / "config.pbtxt"
    with pytest.raises(OSError) as raised:
        with files.naming(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    message = str(files.storage_error(raised.value, "finished points are kept"))
    assert message == f"cannot write {target}: No space left on device; finished points are kept"
    with pytest.raises(OSError) as raised:  # a name the error already has is kept
        with files.naming(target):
            open(tmp_path / "missing" / "x")
    assert raised.value.filename == str(tmp_path / "missing" / "x")
