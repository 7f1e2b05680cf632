"""Progress events of a run. The base class is silent (for library users); the CLI's
subclass prints one line per event to stderr."""
from __future__ import annotations

from tsweep.records import Measurement, RunningServer, Trial


class Progress:
    def server_started(self, server: RunningServer) -> None:
        pass

    def model_started(self, model: str, variants: int, planned: int, resumed: int) -> None:
        pass

    def trial_started(self, trial: Trial, done: int, planned: int, elapsed_s: float) -> None:
        pass

    def trial_finished(self, m: Measurement) -> None:
        pass
