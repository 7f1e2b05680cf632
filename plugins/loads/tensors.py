"""A trial's requests as tritonclient objects (inputs and requested outputs), made once.

tritonclient's gRPC and HTTP modules have the same ``InferInput`` / ``InferRequestedOutput``
API, so one function serves both: tensors carried in the request, or, with system shared
memory, placements in the point's regions (:mod:`tsweep.sharedmemory`).
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

from tsweep import inputs
from tsweep.records import LoadSettings, Trial
from tsweep.sharedmemory import PointRegions


def request_objects(module: Any, trial: Trial, settings: LoadSettings, regions: Optional[PointRegions] = None) -> List[Tuple[list, Optional[list]]]:
    """``[(inputs, outputs or None), ...]`` of the trial's distinct requests, for
    ``module`` (``tritonclient.grpc`` or ``tritonclient.http``)."""
    if regions is not None:
        made = []
        for request in regions.requests:
            tensors = []
            for name, shape, datatype, at in request.inputs:
                tensor = module.InferInput(name, list(shape), datatype)
                tensor.set_shared_memory(at.region, at.byte_size, at.offset)
                tensors.append(tensor)
            outputs = []
            for name, at in request.outputs:
                output = module.InferRequestedOutput(name)
                output.set_shared_memory(at.region, at.byte_size, at.offset)
                outputs.append(output)
            made.append((tensors, outputs))
        return made
    specs, batches = trial_tensors(trial, settings)
    made = []
    for request in batches:
        tensors = []
        for spec in specs:
            tensor = module.InferInput(spec.name, list(request[spec.name].shape), spec.datatype)
            tensor.set_data_from_numpy(request[spec.name])
            tensors.append(tensor)
        made.append((tensors, None))
    return made


def trial_tensors(trial: Trial, settings: LoadSettings):
    """The trial's input specs and distinct requests ({input name: array}), batch dim included."""
    config = trial.variant.config
    specs, data = inputs.samples(config, settings.shapes or {}, settings.input_data, strings=inputs.Strings(settings.string_length, settings.string_data))
    return specs, inputs.batches(config, specs, data, trial.batch_size)
