"""The wrapped launch mode, with tsweep's test kit (the tsweep_* fixtures come from
tsweep.testing, a pytest plugin that installing tsweep makes available)."""
import os

import pytest
import tsweep_wrapped_launcher
from tsweep.plugin import LaunchSettings, UsageError
from tsweep.testing import ServerProbe


def preflight(hooks, tmp_path, options):
    launcher = hooks.launcher("wrapped")(LaunchSettings(model_repository=tmp_path, log_dir=tmp_path, options=options))
    launcher.preflight()
    return launcher


def test_offered_and_checked_before_anything_runs(tsweep_hooks, tmp_path):
    hooks = tsweep_hooks(tsweep_wrapped_launcher)
    assert "wrapped" in hooks.launchers() and "local" in hooks.launchers()
    with pytest.raises(UsageError, match=r"^wrapped launch mode does not know triton_launch_options\.wraper: use wrapper, working_directory$"):
        preflight(hooks, tmp_path, {"wraper": ["nice"]})
    with pytest.raises(UsageError, match=r"^wrapper command 'no-such-wrapper' is not on PATH$"):
        preflight(hooks, tmp_path, {"wrapper": ["no-such-wrapper"]})
    launcher = preflight(hooks, tmp_path, {"wrapper": ["nice", "-n", 5]})
    assert launcher.command((1, 2, 3))[:4] == ["nice", "-n", "5", launcher.command((1, 2, 3))[3]]
    assert launcher.command((1, 2, 3))[3].endswith("tritonserver")


@pytest.mark.server
def test_the_server_runs_under_the_wrapper_in_its_folder(tsweep_sweep, tmp_path):
    probe = ServerProbe()
    folder = tmp_path / "server-cwd"
    folder.mkdir()
    wrapper = ["nice", "-n", "5", "env", "WRAPPED_BY=tsweep-wrapped-launcher"]
    result = tsweep_sweep(tsweep_wrapped_launcher, probe, triton_launch_mode="wrapped",
                          triton_launch_options={"wrapper": wrapper, "working_directory": str(folder)})
    assert result.outcome.measured == 1 and result.outcome.server.endswith("wrapped in " + " ".join(wrapper))
    server = probe.process  # nice and env exec'd the server: same pid, their marks on it
    assert server.exe.endswith("/tritonserver") and server.cmdline[0].endswith("tritonserver")
    assert server.cwd == str(folder)
    assert server.environ["WRAPPED_BY"] == "tsweep-wrapped-launcher"
    assert server.nice == min(os.nice(0) + 5, 19)
