"""Stateful models: which models get sequences, with which settings, and how a load that
answers by callback runs them.

A model whose config has ``sequence_batching`` keeps per-sequence state on the server, so its
requests must come as sequences (an id, a first request flagged sequence_start, a last one
flagged sequence_end): such a model always gets them, with perf_analyzer's defaults unless
the sequence keys say otherwise. The sequence keys on a model without sequence_batching are
a mistake (the server would refuse the controls), caught before anything runs.

:class:`SequencePlan` is the Python twin of the native generator's ``tsw_sequence.c``, for
the tritonclient-based loads (gRPC, HTTPS): the same slots, lengths and id rule.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tsweep.config import SEQUENCE_KEYS, Config
from tsweep.errors import UsageError
from tsweep.modelconfig import ModelConfig
from tsweep.records import LoadSettings, ModelSpec, SequenceSettings


def parse_id_range(text: str) -> Tuple[int, int]:
    """perf_analyzer's ``start:end`` or ``start`` as ``(start, end)``, end 0 for none."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        start = int(parts[0])
        end = int(parts[1]) if len(parts) == 2 else 0
    except ValueError:
        raise UsageError(f"sequence_id_range {text!r} is not 'start:end' or 'start': use e.g. 1:1000") from None
    if start < 1 or (len(parts) == 2 and end < start):
        raise UsageError(f"sequence_id_range {text!r} must be 1 or more and start <= end: use e.g. 1:1000")
    return start, end


def settings(values: Mapping[str, object]) -> Optional[SequenceSettings]:
    """The sequence keys (``sequence_length``, ...) given in ``values`` as settings; None when
    none is given. Each problem is one line."""
    given = {k: v for k, v in values.items() if v is not None and v is not False}
    if not given:
        return None
    chosen = SequenceSettings()
    if "sequence_length" in given:
        chosen = dataclasses.replace(chosen, length=int(given["sequence_length"]))
    if "sequence_length_variation" in given:
        variation = float(given["sequence_length_variation"])
        if not 0 <= variation <= 100:
            raise UsageError(f"sequence_length_variation must be a percent from 0 to 100, got {variation:g}")
        chosen = dataclasses.replace(chosen, variation=variation)
    if "sequence_id_range" in given:
        start, end = parse_id_range(str(given["sequence_id_range"]))
        chosen = dataclasses.replace(chosen, id_start=start, id_end=end)
    if "num_of_sequences" in given:
        chosen = dataclasses.replace(chosen, slots=int(given["num_of_sequences"]))
    return dataclasses.replace(chosen, serial=bool(given.get("serial_sequences", False)))


def is_sequence_model(config: ModelConfig) -> bool:
    return config.WhichOneof("scheduling_choice") == "sequence_batching"


def check(model: str, config: ModelConfig, load: LoadSettings, own: bool = True) -> None:
    """Sequence keys for a model without sequence_batching: one line, before anything runs.
    ``own``: the model's own keys (its profile_models entry), or global ones that no
    profiled model can use; global keys in a run with a stateful model are for that one."""
    if load.sequences is not None and not is_sequence_model(config) and own:
        raise UsageError(
            f"sequence settings (sequence_length, sequence_id_range, serial_sequences, ...) given for model {model!r}, "
            "whose config has no sequence_batching: remove them, or profile a stateful model"
        )


def check_run(config: Config, models: Sequence[ModelSpec], load_of: Callable[[str], LoadSettings]) -> None:
    """:func:`check` for every model of a run: a model's own sequence keys must fit it; the
    global ones must fit some model."""
    stateful = any(is_sequence_model(m.config) for m in models)
    for m in models:
        own = any(key in config.per_model.get(m.name, {}).get("load", {}) for key in SEQUENCE_KEYS)
        check(m.name, m.config, load_of(m.name), own=own or not stateful)


def for_model(config: ModelConfig, load: LoadSettings) -> Optional[SequenceSettings]:
    """The sequences a model's load sends: the asked-for ones, perf_analyzer's defaults for
    a model with sequence_batching, none for the others."""
    if not is_sequence_model(config):
        return None
    return load.sequences or SequenceSettings()


def in_flight(seq: SequenceSettings, concurrency: Optional[int]) -> int:
    """Sequences in flight: one per concurrency slot (closed loop), else ``slots``."""
    return concurrency if concurrency is not None else seq.slots


def check_ids(seq: SequenceSettings, concurrency: Optional[int]) -> None:
    """An id range too small for the sequences in flight cannot keep ids unique."""
    wanted = in_flight(seq, concurrency)
    if seq.id_end and seq.id_end - seq.id_start + 1 < wanted:
        raise UsageError(
            f"sequence_id_range {seq.id_start}:{seq.id_end} holds fewer ids than the {wanted} sequences in flight: widen it"
        )


def check_levels(config: ModelConfig, load: LoadSettings, levels) -> None:
    """Every load level of a model's space has ids enough for its sequences in flight: one
    line before anything runs, not a failed point later."""
    seq = for_model(config, load)
    if seq is not None:
        for level in levels:
            check_ids(seq, int(level.value) if level.kind == "concurrency" else None)


def describe(seq: SequenceSettings, closed: bool) -> str:
    """The sequences in a few words, for the client label stored with each point."""
    ids = f"ids {seq.id_start}:{seq.id_end}" if seq.id_end else f"ids from {seq.id_start}"
    flight = "one per concurrency slot" if closed else f"{seq.slots} in flight, serial"
    return f"sequences of {seq.length}±{seq.variation:g}% requests, {ids}, {flight}"


class SequencePlan:
    """Sequence slots for a load that answers by callback (thread-safe): ``take(slot)`` gives
    the next request's ``(slot, id, start, end)``, ``answered(slot)`` frees it. Closed loop:
    the caller names its slot; open loop (``slot=None``): the next slot with no request in
    flight, round-robin, or None when every one waits for an answer (a sequence's requests
    stay serial: several in flight could reach the server out of order)."""

    def __init__(self, seq: SequenceSettings, slots: int, seed: int = 1):
        self.seq = seq
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self._ids = [0] * slots
        self._left = [0] * slots
        self._pending = [0] * slots
        self._rr = 0
        self._next = seq.id_start

    def _length(self) -> int:
        spread = self.seq.length * self.seq.variation / 100.0
        lo = max(1, int(self.seq.length - spread + 0.5))
        hi = max(lo, int(self.seq.length + spread + 0.5))
        return int(self._rng.integers(lo, hi + 1))

    def _may_send(self, j: int) -> bool:
        return self._pending[j] == 0  # always serial: a client's requests need not keep their order

    def _new_id(self) -> int:
        held = {self._ids[j] for j in range(len(self._ids)) if self._left[j] > 0 or self._pending[j] > 0}
        while True:
            candidate = self._next
            self._next = self.seq.id_start if self.seq.id_end and candidate + 1 > self.seq.id_end else candidate + 1
            if candidate not in held:
                return candidate

    def take(self, slot: Optional[int] = None) -> Optional[Tuple[int, int, bool, bool]]:
        with self._lock:
            if slot is None:
                order: List[int] = [(self._rr + k) % len(self._ids) for k in range(len(self._ids))]
                slot = next((j for j in order if self._may_send(j)), None)
                if slot is None:
                    return None
                self._rr = (slot + 1) % len(self._ids)
            start = self._left[slot] == 0
            if start:
                self._ids[slot], self._left[slot] = self._new_id(), self._length()
            self._left[slot] -= 1
            self._pending[slot] += 1
            return slot, self._ids[slot], start, self._left[slot] == 0

    def answered(self, slot: int) -> None:
        with self._lock:
            self._pending[slot] -= 1

    def open_ids(self) -> List[int]:
        """The ids of the sequences whose last request has not been sent (cut off by a stop)."""
        with self._lock:
            return sorted(self._ids[j] for j in range(len(self._ids)) if self._left[j] > 0)

    def ready(self) -> bool:
        with self._lock:
            return any(self._may_send(j) for j in range(len(self._ids)))
