"""TLS to a server: perf_analyzer's ssl flags, checked once, turned into what each client takes.

Triton's gRPC endpoint can serve TLS itself; its HTTP endpoint cannot, so HTTPS means a
TLS-terminating proxy in front of the server, which users reach in remote mode with an
``https://`` endpoint. Both the control plane (:mod:`tsweep.triton`, stdlib ``ssl``) and the
load generators that speak TLS (tritonclient's gRPC and HTTP clients) take their settings
from here, so a certificate that works for one works for the other. The native HTTP load
generator has no TLS; with ``https://`` the HTTP load goes through tritonclient instead.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Dict, Optional

from tsweep.errors import UsageError
from tsweep.records import TlsSettings

#: perf_analyzer's ssl flags -> (tsweep's key, conversion); config.PERF_ANALYZER_FLAGS takes them in.
PERF_ANALYZER_FLAGS = {
    "ssl-grpc-use-ssl": ("grpc_use_ssl", lambda v: v),
    "ssl-grpc-root-certifications-file": ("grpc_root_certificates", str),
    "ssl-grpc-private-key-file": ("grpc_private_key", str),
    "ssl-grpc-certificate-chain-file": ("grpc_certificate_chain", str),
    "ssl-https-verify-peer": ("https_verify_peer", int),
    "ssl-https-verify-host": ("https_verify_host", int),
    "ssl-https-ca-certificates-file": ("https_ca_certificates_file", str),
    "ssl-https-client-certificate-file": ("https_client_certificate_file", str),
    "ssl-https-client-certificate-type": ("https_client_certificate_type", str),
    "ssl-https-private-key-file": ("https_private_key_file", str),
    "ssl-https-private-key-type": ("https_private_key_type", str),
}

_GRPC_FILES = ("grpc_root_certificates", "grpc_private_key", "grpc_certificate_chain")
_HTTPS_FILES = ("https_ca_certificates_file", "https_client_certificate_file", "https_private_key_file")


def is_https(endpoint: Optional[str]) -> bool:
    return bool(endpoint) and str(endpoint).lower().startswith("https://")


def refuse_https(endpoint: Optional[str], mode: str) -> None:
    """For launchers that start a server: Triton's own HTTP endpoint has no TLS."""
    if is_https(endpoint):
        raise UsageError(
            f"triton_http_endpoint {endpoint!r} is https, but the server {mode} mode starts serves plain HTTP: "
            "use remote mode for a server behind a TLS proxy, or write HOST:PORT"
        )


def refuse_shared_memory(settings: Any, mode: str) -> None:
    """For launchers whose server may not see this host's /dev/shm (remote, a container):
    system shared memory only with the user's word that it does."""
    if settings.shared_memory and not settings.on_this_host:
        raise UsageError(
            f"shared_memory system needs the server to see this host's /dev/shm, which {mode} mode does not promise: "
            "use local mode, or set triton_server_on_this_host: true if the server shares this machine's /dev/shm"
        )


def settings(config: Any) -> TlsSettings:
    """The TLS settings of a checked config (see :func:`check`)."""
    return TlsSettings(
        grpc_use_ssl=config.grpc_use_ssl,
        grpc_root_certificates=config.grpc_root_certificates,
        grpc_private_key=config.grpc_private_key,
        grpc_certificate_chain=config.grpc_certificate_chain,
        https_verify_peer=config.https_verify_peer,
        https_verify_host=config.https_verify_host,
        https_ca_certificates_file=config.https_ca_certificates_file,
        https_client_certificate_file=config.https_client_certificate_file,
        https_private_key_file=config.https_private_key_file,
    )


def check(config: Any) -> None:
    """Every TLS rule of the config, before anything starts: one line for the first problem."""
    if config.https_verify_peer not in (0, 1):
        raise UsageError(f"https_verify_peer must be 0 or 1 (ssl-https-verify-peer), got {config.https_verify_peer}")
    if config.https_verify_host not in (0, 1, 2):
        raise UsageError(f"https_verify_host must be 0, 1 or 2 (ssl-https-verify-host), got {config.https_verify_host}")
    for key in ("https_client_certificate_type", "https_private_key_type"):
        if str(getattr(config, key)).upper() != "PEM":
            raise UsageError(
                f"{key} {getattr(config, key)!r} is not supported: tsweep reads PEM files only; "
                "convert with 'openssl x509 -inform der' (certificate) or 'openssl pkey -inform der' (key)"
            )
    for key in _GRPC_FILES + _HTTPS_FILES:
        path = getattr(config, key)
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{key} {path!r} is not a file: give the path of a PEM file")
    given = [key for key in _GRPC_FILES if getattr(config, key)]
    if given and not config.grpc_use_ssl:
        raise UsageError(f"{given[0]} is set but grpc_use_ssl is not: set grpc_use_ssl true (perf_analyzer's ssl-grpc-use-ssl)")
    https = is_https(config.triton_http_endpoint)  # launchers that start a server refuse it (they serve plain HTTP)
    options = [key for key in _HTTPS_FILES if getattr(config, key)]
    options += [key for key, default in (("https_verify_peer", 1), ("https_verify_host", 2)) if getattr(config, key) != default]
    if options and not https:
        raise UsageError(f"{options[0]} is set but the HTTP endpoint is not https: write triton_http_endpoint as https://HOST:PORT")
    if config.https_private_key_file and not config.https_client_certificate_file:
        raise UsageError("https_private_key_file is set without https_client_certificate_file: give both for mutual TLS")
    if https:
        https_context(settings(config))  # unreadable PEM files are the user's to fix, now


def https_context(tls: TlsSettings) -> ssl.SSLContext:
    """The client context for an https endpoint: the CA bundle (or the system's), what is
    verified, and the client certificate for mutual TLS."""
    try:
        context = ssl.create_default_context(cafile=tls.https_ca_certificates_file)
        if tls.https_verify_host == 0 or tls.https_verify_peer == 0:
            context.check_hostname = False
        if tls.https_verify_peer == 0:
            context.verify_mode = ssl.CERT_NONE
        if tls.https_client_certificate_file:
            context.load_cert_chain(tls.https_client_certificate_file, tls.https_private_key_file)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"cannot use the HTTPS certificate files: {reason(exc)}; check that they are PEM and that the key fits the certificate") from None
    return context


def grpc_arguments(tls: TlsSettings) -> Dict[str, Any]:
    """Keyword arguments of tritonclient's gRPC client (it reads the files itself)."""
    if not tls.grpc_use_ssl:
        return {}
    return {
        "ssl": True,
        "root_certificates": tls.grpc_root_certificates,
        "private_key": tls.grpc_private_key,
        "certificate_chain": tls.grpc_certificate_chain,
    }


def reason(exc: BaseException) -> str:
    """An SSL error as words: the library's reason and verification message, without codes."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    text = getattr(exc, "reason", None) or str(exc)
    return str(text).replace("_", " ").lower() if getattr(exc, "reason", None) else str(text)


def failure(url: str, exc: BaseException) -> str:
    """One line for a TLS failure with the server at ``url``, naming what to check."""
    hint = "check https_ca_certificates_file (ssl-https-ca-certificates-file) and the host name in the server's certificate"
    if not isinstance(exc, ssl.SSLCertVerificationError):
        hint = "check that the endpoint serves TLS and accepts this client (mutual TLS: its certificate and key)"
    return f"TLS with Triton at {url} failed: {reason(exc)}: {hint}"
