"""Model files for lanes on other nodes: does a lane see the driver's models, and if not, ship them.

A lane loads variants from the model folders at the driver's paths. On a cluster with a
shared file system (NFS, a Kubernetes volume every pod mounts) that simply works; on nodes
without one the folder is missing, or worse, holds another copy of the model. So each lane
compares a fingerprint of every model folder (file names and sizes, and the config.pbtxt
contents) with the driver's, and the models of a lane that differs travel through Ray's
object store as one tar, up to ``ray_ship_limit_mb``.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Sequence

from tsweep.records import ModelSpec


def every_model(models: Sequence[ModelSpec]) -> Iterator[ModelSpec]:
    """The run's models and, after each, its composing models (a pipeline's stages), once each."""
    seen = set()
    for model in models:
        for spec in (model, *model.composing):
            if spec.name not in seen:
                seen.add(spec.name)
                yield spec


def fingerprint(folder: Path) -> Optional[str]:
    """A digest of a model folder as a lane must see it, or None when it cannot be read.

    Every file's relative path and size, plus the bytes of each config.pbtxt: cheap on a
    network file system (no model weights are read), yet a stale copy of the model (another
    config, other weights) differs."""
    digest = hashlib.sha256()
    try:
        if not folder.is_dir():
            return None
        for path in sorted(_files(folder)):
            relative = path.relative_to(folder).as_posix()
            digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
            if path.name == "config.pbtxt":
                digest.update(path.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def size(folders: Iterable[Path]) -> int:
    """Bytes of the files under ``folders`` (what a shipment carries, before the tar's headers)."""
    return sum(path.stat().st_size for folder in folders for path in _files(folder))


def pack(models: Dict[str, Path]) -> bytes:
    """One tar of the model folders, each under its model's name (symlinks followed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        for name, folder in models.items():
            tar.add(str(folder), arcname=name, filter=_no_caches, recursive=True)
    return buffer.getvalue()


def unpack(blob: bytes, into: Path) -> Dict[str, Path]:
    """Extract a :func:`pack` tar into ``into``: ``{model name: its folder there}``.

    The ``data`` filter refuses absolute paths, ``..`` and links out of ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        names = {member.name.split("/", 1)[0] for member in tar.getmembers()}
        tar.extractall(into, filter="data")
    return {name: into / name for name in names}


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(root) / name
            if path.is_file():
                yield path


def _no_caches(member: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
    return None if "__pycache__" in member.name.split("/") else member
