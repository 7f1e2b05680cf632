"""Native (Cython/C) parts of tsweep: the hot paths that must not pay Python's per-call cost."""
