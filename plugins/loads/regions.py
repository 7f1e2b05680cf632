"""A load whose requests name system shared memory regions: the regions live as long as the load.

:class:`WithRegions` wraps any load generator: ``start`` opens (creates and registers) the
point's regions before the first request, ``stop`` unregisters and unlinks them after the
last, also when the point failed or was interrupted; a ``start`` that fails undoes both.
"""
from __future__ import annotations

from tsweep.records import LoadSettings, LoadWindow, RunningServer, Trial
from tsweep.sharedmemory import PointRegions
from tsweep.triton import TritonHTTP

from tsweep.plugins.loads.tensors import trial_tensors


def point_regions(trial: Trial, server: RunningServer, settings: LoadSettings) -> PointRegions:
    """The trial's regions (not opened yet: building a load sends nothing)."""
    specs, requests = trial_tensors(trial, settings)
    outputs = [o.name for o in trial.variant.config.output]
    client = TritonHTTP(server.http_url, tls=settings.tls)
    return PointRegions(client, specs, requests, outputs, settings.output_shared_memory_size, release_timeout_s=settings.timeout_s + 1)


class WithRegions:
    """``load`` with ``regions`` opened around it (see the module docstring)."""

    def __init__(self, load, regions: PointRegions):
        self.load, self.regions = load, regions
        self.client = f"{getattr(load, 'client', '')}, system shared memory".lstrip(", ")

    def __getattr__(self, name: str):
        """The load's optional methods (``wait_responses``, ``planned_offsets``) as its own."""
        return getattr(self.load, name)

    def start(self) -> "WithRegions":
        self.regions.open()
        try:
            self.load.start()
        except BaseException:
            self.regions.close()
            raise
        return self

    def take_window(self) -> LoadWindow:
        return self.load.take_window()

    def stop(self) -> None:
        try:
            self.load.stop()
        finally:
            self.regions.close()
