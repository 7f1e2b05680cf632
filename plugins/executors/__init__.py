"""Built-in executors: where trials are measured (:mod:`tsweep.lanes`)."""
