"""How a variant reaches the server: through the repository it serves, or in the load request.

A server tsweep starts (local, docker) serves tsweep's output model repository, so a variant
is written there and loaded by name. A server on another host or in a cluster (remote mode)
cannot read tsweep's disk, so the load request itself carries the variant, as Triton's model
repository extension allows: ``POST v2/repository/models/<name>/load`` with the config as JSON
in the ``config`` parameter and, where the server lacks the model, its files as ``file:<path>``
parameters. With ``reload_model_disable`` tsweep loads nothing and measures the server's model
as it is. docs/remote.md says which way to choose when, with the load times measured.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Protocol

from tsweep import modelconfig, modeljson, pipeline, repository
from tsweep.errors import ServerError, UsageError
from tsweep.records import ModelSpec, Variant
from tsweep.triton import TritonHTTP

#: ``remote_model_loading`` values: send the model's files, or reuse the server's copy.
SEND_FILES, SERVER_COPY = "files", "config"


class VariantLoading(Protocol):
    """One way of loading variants; :class:`tsweep.session.VariantLoader` keeps one loaded."""

    #: Whether tsweep unloads what it loaded (not when the server's model is measured as it is).
    unloads: bool

    def served_name(self, model: ModelSpec, variant: Variant) -> str:
        """The name the server knows the loaded variant by: requests and statistics use it."""
        ...

    def load(self, client: TritonHTTP, model: ModelSpec, variant: Variant, timeout_s: float) -> None:
        """Make ``variant`` the served model; ServerError with Triton's message if it cannot."""
        ...

    def check(self, model: ModelSpec) -> None:
        """Before anything is written: UsageError if ``model`` cannot be loaded this way."""
        ...


@dataclass(frozen=True)
class RepositoryLoading:
    """The server serves ``output``: write the variant there as a model folder, load it by name."""

    output: Path
    unloads: bool = True

    def served_name(self, model: ModelSpec, variant: Variant) -> str:
        return variant.name

    def check(self, model: ModelSpec) -> None:
        """Nothing to check: the model's folder is copied, whatever its size."""

    def load(self, client: TritonHTTP, model: ModelSpec, variant: Variant, timeout_s: float) -> None:
        """A pipeline's composing variants are written first, each under its variant name (a
        BLS model's also under its model's name, which its code calls, and loaded), then the
        pipeline model itself is loaded. An ensemble's steps name its composing variants and
        Triton loads them with it (in explicit mode it (re)loads an ensemble's steps on every
        load of the ensemble, so loading them first would load each twice)."""
        for spec, part in pipeline.parts_of(model, variant):
            repository.write_variant(self.output, spec, part)
            served = pipeline.served_name(variant, part)
            if served != part.name:
                repository.write_variant(self.output, spec, dataclasses.replace(part, name=served))
                client.load_model(served, timeout_s=timeout_s)
        repository.write_variant(self.output, model, dataclasses.replace(variant, config=pipeline.top_config(variant)))
        client.load_model(variant.name, timeout_s=timeout_s)


@dataclass(frozen=True)
class RequestLoading:
    """The server cannot read tsweep's disk: the load request carries the variant's config.

    With ``send_files`` the model's files travel too and the variant is loaded under its own
    name, so the server needs nothing of the model; without, the server reloads the model of
    the same name from its own repository with the variant's config (one variant at a time,
    all under the model's name). ``output`` keeps each variant's config.pbtxt, as a record.
    ``max_mb`` bounds the files one request carries (``remote_load_max_mb``)."""

    output: Path
    send_files: bool
    max_mb: float = 256.0
    unloads: bool = True

    def served_name(self, model: ModelSpec, variant: Variant) -> str:
        return variant.name if self.send_files else model.name

    def check(self, model: ModelSpec) -> None:
        """Refuse a model too big to send with every variant, naming the key to raise, and a
        pipeline (its composing variants are written to a repository the server serves)."""
        if model.composing:
            raise UsageError(f"{model.pipeline} {model.name!r}: remote mode does not load pipelines' composing variants yet: profile it with triton_launch_mode local or docker")
        size = files_size(model) if self.send_files else 0
        if size > self.max_mb * 1e6:
            raise UsageError(
                f"model {model.name!r} has {size / 1e6:.3g} MB of files to send with each variant, over remote_load_max_mb ({self.max_mb:g}): "
                f"raise --remote-load-max-mb, or put the model in the server's repository and pass --remote-model-loading {SERVER_COPY}"
            )

    def load(self, client: TritonHTTP, model: ModelSpec, variant: Variant, timeout_s: float) -> None:
        repository.write_variant_config(self.output, variant)
        config = modelconfig.copy(variant.config)
        config.name = self.served_name(model, variant)
        changed = modeljson.contents(model.path, variant.values)  # without send_files there are none (settings.variant_loading)
        sent = {**model_files(model), **{k: v.encode() for k, v in changed.items()}} if self.send_files else {}
        client.load_model(config.name, timeout_s=timeout_s, config=modelconfig.to_json(config), files=sent)


@dataclass(frozen=True)
class ServedAsIs:
    """``reload_model_disable``: the server's model, under the model's name, is measured as it
    is; tsweep neither loads nor unloads it, so it must be ready on the server."""

    unloads: bool = False

    def served_name(self, model: ModelSpec, variant: Variant) -> str:
        return model.name

    def check(self, model: ModelSpec) -> None:
        """Nothing to check before the server answers: whether it serves the model is asked at load."""

    def load(self, client: TritonHTTP, model: ModelSpec, variant: Variant, timeout_s: float) -> None:
        if not client.is_model_ready(model.name):
            raise ServerError(
                f"model {model.name!r} is not ready on the server and reload_model_disable forbids loading it: load it there, or drop reload_model_disable"
            )


def model_files(model: ModelSpec) -> Dict[str, bytes]:
    """The model folder's files by path inside it (``1/model.py``); the config travels on its
    own (see :func:`_files` for what is left out). Symlinks are followed, since the server
    gets contents, not links."""
    found: Dict[str, bytes] = {}
    for path in sorted(_files(model.path)):
        found[path.relative_to(model.path).as_posix()] = path.read_bytes()
    return found


def files_size(model: ModelSpec) -> int:
    """Bytes a load request with the model's files carries (before base64)."""
    return sum(path.stat().st_size for path in _files(model.path))


def _files(root: Path):
    """Every file under the model folder ``root`` but its config.pbtxt, hidden entries and
    Python's bytecode caches (the server's python backend writes its own), through
    symlinked folders too."""
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in names:
            path = Path(folder) / name
            if not name.startswith(".") and path != root / "config.pbtxt" and path.is_file():
                yield path
