"""Launch mode ``remote``: attach to a Triton server the user already runs.

tsweep starts nothing. The server runs with ``--model-control-mode=explicit`` anywhere that
tsweep can reach over HTTP; it need not see tsweep's disk, since every load request carries
the variant (:mod:`tsweep.loading`, docs/remote.md).
"""
from __future__ import annotations

from typing import Optional

from tsweep import tls
from tsweep.errors import ServerError, UsageError
from tsweep.plugin import hookimpl
from tsweep.records import LaunchSettings, RunningServer
from tsweep.triton import TritonHTTP


class RemoteLauncher:
    #: The server is on another host: variants travel in the load requests.
    serves_output_repository = False

    def __init__(self, settings: LaunchSettings):
        self.settings = settings

    def preflight(self) -> None:
        """The address is given, and the endpoint speaks the protocol it was given as (TLS
        with the certificates the user gave, or plain HTTP): one line now, before anything
        is written, rather than a readiness timeout later."""
        if not self.settings.http_endpoint:
            raise UsageError("remote launch mode needs the server's address: pass --triton-http-endpoint HOST:PORT")
        tls.refuse_shared_memory(self.settings, "remote")
        try:
            TritonHTTP(self.settings.http_endpoint, tls=self.settings.tls).probe()
        except ServerError as exc:
            raise UsageError(str(exc)) from None

    def start(self) -> RunningServer:
        client = TritonHTTP(self.settings.http_endpoint, tls=self.settings.tls)
        client.wait_ready(min(self.settings.ready_timeout_s, 30.0))
        version = client.metadata().get("version", "?")
        return RunningServer(
            http_url=client.url,
            grpc_url=self.settings.grpc_endpoint,
            metrics_url=self.settings.metrics_url,
            description=f"tritonserver {version}, remote at {client.url}",
            tls=self.settings.tls,
        )

    def stop(self) -> None:
        """Nothing to stop: the server is the user's."""

    def died(self) -> Optional[str]:
        """Unknown: the server is not ours to watch; the core's liveness probe decides."""
        return None


@hookimpl
def tsweep_launchers():
    return {"remote": RemoteLauncher}
