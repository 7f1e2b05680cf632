"""Locate a tritonserver binary and, for the embedded one, assemble its backend folder.

The ``nvidia-pytriton`` wheel ships a real tritonserver with the python backend, but keeps
the backend stub per Python version in a separate folder; the server expects the stub next
to ``libtriton_python.so``. So we build ``<tmp>/backends/python`` from symlinks, choosing
the stub for the running interpreter.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tsweep.errors import UsageError

INSTALL_HINT = "pip install 'tsweep[server]' for the embedded server, or pass --triton-server-path"


@dataclass(frozen=True)
class ServerBinary:
    """A tritonserver to run; ``embedded_root`` is set when it is pytriton's copy."""

    path: Path
    embedded_root: Optional[Path] = None

    @property
    def origin(self) -> str:
        return "embedded (nvidia-pytriton)" if self.embedded_root else str(self.path)


def embedded_root() -> Optional[Path]:
    """pytriton's bundled tritonserver folder, if the package is installed."""
    try:
        import pytriton  # noqa: F401  (only to find its files)
    except ImportError:
        return None
    root = Path(pytriton.__file__).parent / "tritonserver"
    return root if (root / "bin" / "tritonserver").is_file() else None


def find_server(explicit: Optional[str]) -> ServerBinary:
    """The --triton-server-path binary, else ``tritonserver`` on PATH, else the embedded one."""
    if explicit:
        path = Path(explicit)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise UsageError(f"--triton-server-path {path} is not an executable file: give the tritonserver binary")
        return ServerBinary(path)
    on_path = shutil.which("tritonserver")
    if on_path:
        return ServerBinary(Path(on_path))
    root = embedded_root()
    if root is None:
        raise UsageError(f"no tritonserver found (not on PATH, embedded server not installed): {INSTALL_HINT}")
    return ServerBinary(root / "bin" / "tritonserver", embedded_root=root)


def assemble_backends(root: Path) -> Path:
    """A temporary backend folder for the embedded server; the caller removes it."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise UsageError(
            f"the embedded tritonserver has no python backend stub for Python {version}: use Python 3.8-3.13 or pass --triton-server-path"
        )
    backends = Path(tempfile.mkdtemp(prefix="tsweep-backends-"))
    python = backends / "python"
    python.mkdir()
    for source in (root / "backends" / "python" / "libtriton_python.so", root / "backends" / "python" / "triton_python_backend_utils.py", stub):
        (python / source.name).symlink_to(source)
    return backends
