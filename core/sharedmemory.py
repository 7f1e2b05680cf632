"""System shared memory for one point: the regions its requests name instead of carrying data.

With ``shared_memory: system`` (perf_analyzer's ``--shared-memory system``) the tensors do
not travel in the request: each distinct request's inputs are written once into a region
of their own (inputs side by side at offsets), every output gets ``output_size`` bytes in
one output region, and the server reads and writes them there. A request then only names
regions, offsets and sizes, so the same bodies work for the native HTTP generator (a
JSON request built once) and for tritonclient's gRPC client.

The regions belong to one point: :meth:`PointRegions.open` creates and registers them with
the server, :meth:`PointRegions.close` unregisters and unlinks them, also when the point
failed or was interrupted, and also after a partial ``open``. The server must see this
host's /dev/shm (config.py refuses the setting where tsweep cannot know it does).
"""
from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from tsweep.errors import ServerError
from tsweep.inputs import EncodedRequest, TensorSpec, raw_bytes
from tsweep.triton import TritonHTTP

#: Distinguishes the regions of successive points of one process.
_POINTS = itertools.count()


@dataclass(frozen=True)
class Placement:
    """Where one tensor lies: a registered region's name, its byte size and offset there."""

    region: str
    byte_size: int
    offset: int = 0


@dataclass(frozen=True)
class Request:
    """One distinct request in shared memory: each input's shape, datatype and placement,
    and each output's placement."""

    inputs: Tuple[Tuple[str, Tuple[int, ...], str, Placement], ...]
    outputs: Tuple[Tuple[str, Placement], ...]

    def json_body(self) -> EncodedRequest:
        """The KServe v2 JSON request that names the regions instead of carrying data."""

        def where(p: Placement) -> dict:
            return {"shared_memory_region": p.region, "shared_memory_byte_size": p.byte_size, "shared_memory_offset": p.offset}

        body = {
            "inputs": [{"name": n, "shape": list(shape), "datatype": dt, "parameters": where(p)} for n, shape, dt, p in self.inputs],
            "outputs": [{"name": n, "parameters": where(p)} for n, p in self.outputs],
        }
        return EncodedRequest(json.dumps(body).encode(), {"Content-Type": "application/json"})


class PointRegions:
    """The regions of one point (see the module docstring). ``requests`` are the distinct
    requests' tensors ({input name: array}); ``outputs`` the model's output names."""

    def __init__(
        self, client: TritonHTTP, specs: Sequence[TensorSpec], requests: Sequence[Mapping[str, np.ndarray]], outputs: Sequence[str],
        output_size: int, release_timeout_s: float = 30.0,
    ):  # fmt: skip
        self.client, self.specs, self.output_size = client, list(specs), output_size
        self.release_timeout_s = release_timeout_s
        point = f"tsweep_{os.getpid()}_{next(_POINTS)}"
        self._payloads: List[Tuple[str, bytes]] = []
        self.requests: List[Request] = []
        output_region = f"{point}_out"
        placed_outputs = tuple((name, Placement(output_region, output_size, k * output_size)) for k, name in enumerate(outputs))
        for n, tensors in enumerate(requests):
            region, offset, placed, blob = f"{point}_in{n}", 0, [], b""
            for spec in self.specs:
                data = raw_bytes(spec, tensors[spec.name])
                placed.append((spec.name, tuple(tensors[spec.name].shape), spec.datatype, Placement(region, len(data), offset)))
                blob += data
                offset += len(data)
            self._payloads.append((region, blob))
            self.requests.append(Request(tuple(placed), placed_outputs))
        if outputs:
            self._payloads.append((output_region, bytes(output_size * len(outputs))))
        self._handles: Dict[str, object] = {}
        self._registered: List[str] = []

    @property
    def names(self) -> List[str]:
        """The regions' names, as the server lists them while the point runs."""
        return [name for name, _ in self._payloads]

    def open(self) -> "PointRegions":
        """Create, fill and register every region; on any failure, undo what was done."""
        from tritonclient.utils import shared_memory as shm  # tritonclient is a dependency; imported where used

        try:
            for name, blob in self._payloads:
                handle = shm.create_shared_memory_region(name, f"/{name}", max(1, len(blob)))
                self._handles[name] = handle
                if blob:
                    shm.set_shared_memory_region(handle, [np.frombuffer(blob, dtype=np.uint8)])
                self.client.register_system_shared_memory(name, f"/{name}", max(1, len(blob)))
                self._registered.append(name)
        except BaseException as exc:
            self.close()
            if isinstance(exc, shm.SharedMemoryException):
                raise ServerError(f"cannot create system shared memory for the point: {exc}: check /dev/shm's size and permissions") from None
            raise
        return self

    def close(self) -> None:
        """Unregister (the server first, so it stops using them) and unlink every region.

        Requests the load abandoned at stop may still be running in the server, which keeps
        their regions "in use" until they finish: those are asked again until released,
        for at most ``release_timeout_s`` (a request that runs longer has failed anyway);
        one still held then stays registered until the server stops (its file is unlinked)."""
        from tritonclient.utils import shared_memory as shm

        deadline = time.monotonic() + self.release_timeout_s
        delay = 0.005
        while self._registered:
            name = self._registered[-1]
            try:
                self.client.unregister_system_shared_memory(name)
            except ServerError as exc:
                if "in use" in str(exc) and time.monotonic() < deadline:
                    time.sleep(delay)  # polling the server's own answer, bounded by the deadline
                    delay = min(delay * 2, 0.1)
                    continue
                # gone (a dead server has forgotten its regions) or held past the deadline
            self._registered.pop()
        while self._handles:
            _, handle = self._handles.popitem()
            shm.destroy_shared_memory_region(handle)
