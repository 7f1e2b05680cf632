"""Build the Cython extensions in ext/ into the ``tsweep.ext`` package.

Everything else (metadata, dependencies, package layout) lives in pyproject.toml; this file
exists only because extension modules need code to describe them.
"""
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, find_namespace_packages, setup

HERE = Path(__file__).parent


def _packages():
    """core/ -> tsweep, plugins/ -> tsweep.plugins (with subpackages), ext/ -> tsweep.ext."""
    found = ["tsweep", "tsweep.ext", "tsweep.plugins"]
    for sub in find_namespace_packages(where=str(HERE / "plugins")):
        if "__pycache__" not in sub:
            found.append(f"tsweep.plugins.{sub}")
    return found


def _cython_include_dir():
    """A folder where Cython finds ext/*.pxd as tsweep/ext/*.pxd.

    Cython resolves ``from tsweep.ext.histogram cimport Histogram`` (and a module's own .pxd) by
    the package layout on disk, and it does not know the package-dir mapping tsweep.ext -> ext/.
    A link build/cython/tsweep/ext -> ext/ gives it that layout without a second copy of the
    declarations.
    """
    root = HERE / "build" / "cython"
    link = root / "tsweep" / "ext"
    if not link.is_symlink() or link.resolve() != (HERE / "ext").resolve():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(HERE / "ext", target_is_directory=True)
    return str(root)


# C units compiled into an extension with its .pyx: the load generator's parser, connections,
# loops and API live in ext/loadgen-c/ (a folder name that is no Python identifier, so setuptools
# does not take it for an unlisted package); httpparser, the parser's test hooks, needs only it.
_C_UNITS = {"loadgen": ("loadgen-c", "*.c"), "httpparser": ("loadgen-c", "tsw_http_parser.c")}


def _rel(path):
    return path.relative_to(HERE).as_posix()


def _extensions():
    exts = []
    for pyx in sorted((HERE / "ext").glob("*.pyx")):
        sources, include_dirs, depends = [_rel(pyx)], ["ext"], sorted(map(_rel, (HERE / "ext").glob("*.h")))
        unit_dir, pattern = _C_UNITS.get(pyx.stem, (None, None))
        if unit_dir:
            units = HERE / "ext" / unit_dir
            sources += sorted(map(_rel, units.glob(pattern)))
            include_dirs.append(_rel(units))
            # Listed so that a header change rebuilds the module and the headers go into an sdist.
            depends += sorted(map(_rel, units.glob("*.h")))
        exts.append(
            Extension(
                f"tsweep.ext.{pyx.stem}",
                sources,
                include_dirs=include_dirs,
                depends=depends,
                extra_compile_args=["-O3"],
            )
        )
    return exts


setup(
    packages=_packages(),
    ext_modules=cythonize(
        _extensions(),
        include_path=[_cython_include_dir()],
        language_level=3,
        compiler_directives={"embedsignature": True},
    ),
)
