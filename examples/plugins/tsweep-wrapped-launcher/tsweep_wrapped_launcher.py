"""Launch mode ``wrapped``: tsweep's local tritonserver, started behind a wrapper command.

Sites pin servers to cores (``taskset``, ``numactl``), lower their priority (``nice``) or
set variables through a launcher script; this mode lets tsweep measure the server the way
it will run. It is the local launcher with a different argv and working directory, built
only on tsweep's public API: ``LocalLauncher``'s ``command``/``working_directory`` seams.

Options, in the config file::

    triton_launch_mode: wrapped
    triton_launch_options:
      wrapper: [nice, -n, "5", taskset, -c, "0"]   # required: argv put before tritonserver
      working_directory: /srv/triton               # optional: where the server runs

The wrapper must exec the server (nice, taskset, numactl, env do), so that the process
tsweep watches is the server itself.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import List, Optional

from tsweep.plugin import RunningServer, UsageError, hookimpl
from tsweep.plugins.launchers.local import LocalLauncher

OPTIONS = ("wrapper", "working_directory")


class WrappedLauncher(LocalLauncher):
    """The local launcher, with ``triton_launch_options.wrapper`` in front of the server."""

    def preflight(self) -> None:
        options = dict(self.settings.options)
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise UsageError(f"wrapped launch mode does not know triton_launch_options.{unknown[0]}: use {', '.join(OPTIONS)}")
        wrapper = options.get("wrapper")
        if not isinstance(wrapper, list) or not wrapper or not all(isinstance(a, (str, int)) for a in wrapper):
            raise UsageError("wrapped launch mode needs triton_launch_options.wrapper, a command as a list, e.g. [nice, -n, '5']")
        self.wrapper: List[str] = [str(a) for a in wrapper]
        if shutil.which(self.wrapper[0]) is None:
            raise UsageError(f"wrapper command {self.wrapper[0]!r} is not on PATH")
        self.cwd: Optional[Path] = None
        if options.get("working_directory") is not None:
            self.cwd = Path(str(options["working_directory"])).resolve()
            if not self.cwd.is_dir():
                raise UsageError(f"triton_launch_options.working_directory {self.cwd} is not a folder")
        super().preflight()

    def command(self, ports) -> List[str]:
        return [*self.wrapper, *super().command(ports)]

    def working_directory(self) -> Optional[Path]:
        return self.cwd

    def start(self) -> RunningServer:
        server = super().start()
        return dataclasses.replace(server, description=f"{server.description}, wrapped in {' '.join(self.wrapper)}")


@hookimpl
def tsweep_launchers():
    return {"wrapped": WrappedLauncher}
