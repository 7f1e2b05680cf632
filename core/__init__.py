"""tsweep: find the best way to deploy a model on Triton Inference Server.

The package is a small core (hook specs, config, model-config I/O, sweep orchestration,
measurement, results store, CLI) plus built-in plugins in ``tsweep.plugins`` and native code
in ``tsweep.ext``. A library user drives a sweep with :func:`tsweep.sweep.profile` without
the CLI; plugin authors need only :mod:`tsweep.plugin`.
"""

__version__ = "0.1.0"
