"""Executors: where trials are measured (:mod:`tsweep.lanes`), one plugin each."""
