"""Writing files atomically: a reader (or a crash) never sees half a file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tsweep.errors import UsageError


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def inside(base: Path, *parts: str) -> Path:
    """``base/part/...``, refusing names (from a store or a config) that would leave ``base``."""
    path = Path(base).joinpath(*parts)
    root = Path(base).resolve()
    if any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts) or root not in path.resolve().parents:
        raise UsageError(f"refusing to write {path}: a name in it would leave {base}")
    return path
