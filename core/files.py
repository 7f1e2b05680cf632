"""Writing files atomically: a reader (or a crash) never sees half a file."""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tsweep.errors import StorageError, UsageError

#: errno values that mean "this place cannot take our files", not a bug.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def check_writable(path: Path, what: str, flag: str) -> None:
    """Refuse, before anything is written, a folder tsweep could not write into.

    Looks at ``path`` or its nearest existing parent (the folders are created later). A
    read-only file system is named as such, since ``chmod`` will not fix it.
    """
    place = Path(path).absolute()
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        raise UsageError(f"{what} {path} is below {place}, which is not a folder: choose another {flag}")
    if not os.access(place, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(place).f_flag & os.ST_RDONLY)
        reason = "read-only file system" if read_only else f"no write permission on {place}"
        raise UsageError(f"{what} {path} is not writable ({reason}): choose another {flag}")


def storage_error(exc: OSError, keep: str) -> StorageError:
    """The one-line message for a write that failed mid-run; ``keep`` says what survives."""
    where = exc.filename2 or exc.filename or "a file"  # a copy names its source first
    return StorageError(f"cannot write {where}: {exc.strerror or exc}; {keep}")


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Name ``path`` in an OSError raised inside that names no file.

    ``open`` names its file, but a ``write`` that finds the disk full does not, and the
    user's one line must say where the space ran out."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.filename2 is None:
            exc.filename = str(path)
        raise


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with naming(path), os.fdopen(fd, "wb") as f:
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
