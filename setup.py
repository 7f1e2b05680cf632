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


def _extensions():
    return [
        Extension(
            f"tsweep.ext.{pyx.stem}",
            [f"ext/{pyx.name}"],
            include_dirs=["ext"],
            extra_compile_args=["-O3"],
        )
        for pyx in sorted((HERE / "ext").glob("*.pyx"))
    ]


setup(
    packages=_packages(),
    ext_modules=cythonize(
        _extensions(),
        include_path=[_cython_include_dir()],
        language_level=3,
        compiler_directives={"embedsignature": True},
    ),
)
