"""The model repositories: the user's (read only) and tsweep's output repository.

The user's repository is validated before anything is written. The output repository is the
one the server serves; tsweep writes each variant there as ``<variant>/config.pbtxt`` next
to a copy of the model's version folders, and marks the folder as its own so that a rerun
may reuse it but a folder of someone else's is never overwritten without the flag.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

from tsweep import files, modelconfig, modeljson
from tsweep.errors import UsageError
from tsweep.records import ModelSpec, Variant

MARKER = ".tsweep-output"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def find_models(repository: str | None, names: Sequence[str]) -> List[ModelSpec]:
    """Validate the repository and the chosen models; parse each model's config.pbtxt."""
    if not repository:
        raise UsageError("no model repository given: pass --model-repository DIR or set model_repository in the config file")
    root = Path(repository)
    if not root.is_dir():
        raise UsageError(f"model repository {root} does not exist or is not a folder: check --model-repository")
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not available:
        raise UsageError(f"model repository {root} is empty: it needs one folder per model, each with a config.pbtxt")
    if not names:
        raise UsageError(f"no models to profile: pass --profile-models with some of: {', '.join(available)}")
    models = []
    for name in names:
        if not _SAFE_NAME.match(name) or name in (".", ".."):
            raise UsageError(f"invalid model name {name!r}: use the name of a folder in {root}")
        if name not in available:
            raise UsageError(f"model {name!r} is not in {root}: choose from {', '.join(available)}")
        config_path = root / name / "config.pbtxt"
        if not config_path.is_file():
            raise UsageError(f"model {name!r} has no config.pbtxt in {root / name}: tsweep needs the model's config file")
        config = modelconfig.read(config_path)
        if config.name and config.name != name:
            raise UsageError(f"model folder {name!r} holds a config named {config.name!r}: make them match")
        config.name = name
        models.append(ModelSpec(name=name, path=root / name, config=config))
    return models


def check_version(model: ModelSpec, version: str) -> None:
    """A requested model version (perf_analyzer's --model-version) must be one of the model's
    version folders; the server's version policy decides whether it is served."""
    if not version:
        return
    found = sorted((p.name for p in model.path.iterdir() if p.is_dir() and p.name.isdigit()), key=int)
    if version not in found:
        raise UsageError(f"model {model.name!r} has no version {version!r}: its version folders are {', '.join(found) or 'none'}")


def check_output(path: str, override: bool) -> Path:
    """Refuse an existing output repository that is not tsweep's, unless overriding."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output model repository {out} exists and is not a folder: choose another --output-model-repository-path")
    if out.is_dir() and any(out.iterdir()) and not override and not (out / MARKER).exists():
        raise UsageError(
            f"output model repository {out} already exists: pass --override-output-model-repository to replace it or choose another path"
        )
    return out


def prepare_output(out: Path, override: bool) -> None:
    """Create (or with ``override``, empty and recreate) the output repository."""
    if override and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("This folder is written by tsweep; it may be replaced on the next run.\n")


def copy_entry(src: Path, dst: Path) -> None:
    """Copy a file, symlink or folder tree. Unlike shutil.copytree, a full disk surfaces as
    the OSError (ENOSPC) of the file that did not fit, not as a bundle of error strings."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir()
        for child in src.iterdir():
            copy_entry(child, dst / child.name)
    else:
        shutil.copy2(src, dst)


def variant_config_text(variant: Variant) -> str:
    """The variant's config.pbtxt, named after the variant."""
    config = modelconfig.copy(variant.config)
    config.name = variant.name
    return modelconfig.dumps(config)


def write_variant_config(out: Path, variant: Variant) -> Path:
    """Write only the variant's config.pbtxt, the record of a variant a server on another
    host was sent in its load request (the model's files stay where they are)."""
    target = out / variant.name
    files.write_atomic(target / "config.pbtxt", variant_config_text(variant))
    return target


def _is_written(target: Path, text: str, changed: Dict[str, str]) -> bool:
    """The variant's folder is already there as it would be written (a rerun reuses it)."""
    wanted = {"config.pbtxt": text, **changed}
    return all((target / name).is_file() and (target / name).read_text() == body for name, body in wanted.items())


def write_variant(out: Path, model: ModelSpec, variant: Variant) -> Path:
    """Write one variant as a complete model folder, atomically (temp folder + rename): the
    model's files, its config.pbtxt, and the JSON files it changes (:mod:`tsweep.modeljson`)."""
    target = out / variant.name
    text = variant_config_text(variant)
    changed = modeljson.contents(model.path, variant.values)
    if _is_written(target, text, changed):
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{variant.name}.", dir=out))
    try:
        for entry in model.path.iterdir():
            if entry.name == "config.pbtxt" or entry.name.startswith("."):
                continue
            with files.naming(target / entry.name):
                copy_entry(entry, staging / entry.name)
        with files.naming(target / "config.pbtxt"):
            (staging / "config.pbtxt").write_text(text)
        for relative, body in changed.items():
            with files.naming(target / relative):
                written = staging / relative
                if written.is_symlink():  # the model's own file stays as it is
                    written.unlink()
                written.write_text(body)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
