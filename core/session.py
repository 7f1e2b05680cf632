"""The server under test for a whole run: started once, restarted when it dies.

A sweep is hours of measurements against one server. If that server crashes (a model
segfaults, the OOM killer, a user's ``kill -9``), the point being measured is lost and
recorded as failed with the cause; the server is started again and the sweep goes on. After
:data:`MAX_RESTARTS` deaths the run stops with the reason: something is wrong that a restart
will not fix, and every finished point is already in the store.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tsweep import pipeline
from tsweep.components import Launcher
from tsweep.errors import ServerError
from tsweep.loading import RepositoryLoading, VariantLoading
from tsweep.records import ModelSpec, RunningServer, Variant
from tsweep.triton import TritonHTTP

#: Deaths of the server one run survives.
MAX_RESTARTS = 3


class VariantLoader:
    """Keeps exactly one variant loaded on the server, the way ``loading`` says
    (:mod:`tsweep.loading`: written to the served repository, or sent in the request), or
    one variant per model of a combination (:meth:`ensure_together`)."""

    def __init__(self, client: TritonHTTP, loading: VariantLoading, timeout_s: float):
        self.client, self.loading, self.timeout_s = client, loading, timeout_s
        self.loaded: Optional[str] = None  # the variant's name
        self.served: Optional[str] = None  # the name the server knows it by
        self.together: Dict[str, str] = {}  # a combination's loaded variants: name -> served name
        self.parts: List[str] = []  # a pipeline's composing variants, as the server knows them

    def served_name(self, model: ModelSpec, variant: Variant) -> str:
        return self.loading.served_name(model, variant)

    def ensure(self, model: ModelSpec, variant: Variant) -> None:
        if self.loaded == variant.name:
            return
        # composing variants the next pipeline variant runs too stay loaded: reloading a model
        # just unloaded is slow and, with the python backend on a busy host, can hang its start
        self.unload(keep={pipeline.served_name(variant, part) for part in variant.composing})
        try:
            self.loading.load(self.client, model, variant, self.timeout_s)
        except ServerError:  # a pipeline's composing variants loaded before the failure go too
            if variant.composing:
                self.loaded, self.served = variant.name, self.served_name(model, variant)
                self.parts = [pipeline.served_name(variant, part) for part in variant.composing]
                self.unload()
            raise
        self.loaded, self.served = variant.name, self.served_name(model, variant)
        self.parts = [pipeline.served_name(variant, part) for part in variant.composing]

    def ensure_together(self, members: Sequence[Tuple[ModelSpec, Variant]]) -> None:
        """Have exactly ``members`` loaded (one variant per model): variants of an earlier
        combination that are not among them are unloaded first, to free what they hold. A
        variant that fails to load raises ServerError naming it; those loaded stay."""
        wanted = {v.name for _, v in members}
        self._unload_single()
        for name in [n for n in self.together if n not in wanted]:
            self._unload(self.together.pop(name))
        for model, variant in members:
            if variant.name in self.together:
                continue
            try:
                self.loading.load(self.client, model, variant, self.timeout_s)
            except ServerError as exc:
                raise ServerError(f"{variant.name} of {model.name}: {exc}") from None
            self.together[variant.name] = self.served_name(model, variant)

    def unload(self, keep=frozenset()) -> None:
        """Unload everything loaded: the one variant (a pipeline's composing variants too, but
        those in ``keep``) and a combination's variants."""
        self._unload_single(keep)
        for name in list(self.together):
            self._unload(self.together.pop(name))

    def _unload(self, served: str) -> None:
        if not self.loading.unloads:
            return
        try:
            self.client.unload_model(served)
        except ServerError:
            pass  # the next load reports a server that is really gone

    def _unload_single(self, keep=frozenset()) -> None:
        if self.loaded:
            served, self.loaded, self.served = self.served, None, None
            parts, self.parts = self.parts, []
            for name in [served, *(p for p in parts if p not in keep)]:
                self._unload(name)


class ServerSession:
    """The launcher's server plus what talks to it: control client, variant loader, collectors.

    ``collectors_for(server)`` builds the metric collectors for a (re)started server, since
    some follow its process id. ``loading`` is how variants reach the server; by default they
    are written to ``output``, the repository the server serves.
    """

    def __init__(
        self, launcher: Launcher, output: Path, ready_timeout_s: float, collectors_for: Callable[[RunningServer], List],
        loading: Optional[VariantLoading] = None,
    ):  # fmt: skip
        self.launcher, self.output, self.ready_timeout_s = launcher, output, ready_timeout_s
        self.loading = loading or RepositoryLoading(output)
        self.collectors_for = collectors_for
        self.restarts = 0
        self.server: Optional[RunningServer] = None
        self.client: Optional[TritonHTTP] = None
        self.loader: Optional[VariantLoader] = None
        self.collectors: List = []

    def start(self) -> RunningServer:
        self.server = self.launcher.start()
        self.client = TritonHTTP(self.server.http_url, tls=self.server.tls)
        self.loader = VariantLoader(self.client, self.loading, self.ready_timeout_s)
        self.collectors = self.collectors_for(self.server)
        return self.server

    def death(self) -> Optional[str]:
        """Why the server is gone, or None while it still answers.

        The launcher's ``died()`` says why when it can (the local one reports the exit code or
        signal and the last log lines); otherwise a failed liveness probe is the sign.
        """
        reason = self.launcher.died()
        if reason:
            return reason
        if self.client is not None and not self.client.is_live():
            return "it stopped answering on its HTTP endpoint"
        return None

    def restart(self, reason: str) -> RunningServer:
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise ServerError(
                f"tritonserver died {self.restarts} times, last because {reason}; giving up (finished points are kept: rerun to resume)"
            )
        self.launcher.stop()
        return self.start()

    def stop(self) -> None:
        self.launcher.stop()
