"""Progress events of a run. The base class is silent (for library users); the CLI's
subclass prints one line per event to stderr.

``lane`` names the lane a trial went to (:mod:`tsweep.lanes`); the runner passes it only when
the run has more than one lane, so a one-lane run's lines read as they always did."""
from __future__ import annotations

from typing import Sequence

from tsweep.lanes import Lane
from tsweep.records import Measurement, RunningServer, Trial


class Progress:
    def server_started(self, server: RunningServer) -> None:
        pass

    def lanes_started(self, lanes: Sequence[Lane]) -> None:
        """The lanes of an executor other than local, once their servers are up."""

    def model_started(self, model: str, variants: int, planned: int, resumed: int) -> None:
        pass

    def trial_started(self, trial: Trial, done: int, planned: int, elapsed_s: float, lane: str = "") -> None:
        pass

    def trial_finished(self, m: Measurement) -> None:
        pass

    def lane_lost(self, lane: str, why: str, trial: Trial, retried: bool) -> None:
        """A lane was lost with ``trial`` in flight; ``retried``: it goes to another lane."""
