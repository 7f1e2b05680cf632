"""TLS to the server (perf_analyzer's ssl flags): gRPC TLS served by the embedded Triton
itself; https through a TLS-terminating proxy (tests/support.py) in front of its plain HTTP
endpoint, since Triton's HTTP endpoint has no TLS. Certificates are made with the openssl CLI.

The failure tests need only the proxy: a handshake fails before anything is forwarded."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from tsweep.config import load_config
from tsweep.errors import UsageError

from tests.support import MODEL_REPOSITORY, TlsProxy, make_certificates, run_tsweep, stored, tree

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI makes the test certificates")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture
def proxy(certificates):
    """A TLS proxy in front of a port nobody listens on (enough for handshake failures)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = TlsProxy(port, certificates["server.crt"], certificates["server.key"])
    yield proxy
    proxy.stop()


def config_file(workdir: Path, **keys) -> Path:
    base = {"model_repository": str(MODEL_REPOSITORY), "profile_models": "add_sub", "output_model_repository_path": "out"}
    path = workdir.parent / "tsweep.yaml"  # beside the working directory, which must stay empty
    path.write_text(yaml.safe_dump({**base, **keys}))
    return path


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_wrong_ca_is_one_line_and_nothing_is_written(workdir, certificates, proxy):
    cfg = config_file(
        workdir, triton_launch_mode="remote", triton_http_endpoint=f"https://127.0.0.1:{proxy.port}",
        perf_analyzer_flags={"ssl-https-ca-certificates-file": str(certificates["wrong-ca.crt"])},
    )  # fmt: skip
    line = one_error_line(run_tsweep("profile", "-f", str(cfg), cwd=workdir, timeout=120))
    assert line.startswith(f"error: TLS with Triton at https://127.0.0.1:{proxy.port} failed: certificate verify failed: ")
    assert "https_ca_certificates_file" in line
    assert tree(workdir) == []


def test_plain_http_to_a_tls_port_is_one_line_naming_https(workdir, proxy):
    cfg = config_file(workdir, triton_launch_mode="remote", triton_http_endpoint=f"127.0.0.1:{proxy.port}")
    line = one_error_line(run_tsweep("profile", "-f", str(cfg), cwd=workdir, timeout=120))
    assert "did not answer plain HTTP" in line and line.endswith(f"write the endpoint as https://127.0.0.1:{proxy.port}")
    assert tree(workdir) == []


def test_local_mode_refuses_an_https_endpoint(workdir):
    cfg = config_file(workdir, triton_http_endpoint="https://127.0.0.1:8443")
    line = one_error_line(run_tsweep("profile", "-f", str(cfg), cwd=workdir, timeout=120))
    assert "serves plain HTTP" in line and "remote mode" in line
    assert tree(workdir) == []


@pytest.mark.parametrize(
    "flags, endpoint, message",
    [
        ({"ssl-https-private-key-type": "DER"}, "https://h:1", "https_private_key_type 'DER' is not supported: tsweep reads PEM files only"),
        ({"ssl-https-ca-certificates-file": "/nonexistent/ca.pem"}, "https://h:1", "https_ca_certificates_file '/nonexistent/ca.pem' is not a file"),
        ({"ssl-https-verify-host": 3}, "https://h:1", "https_verify_host must be 0, 1 or 2"),
        ({"ssl-https-verify-peer": 0}, "h:1", "https_verify_peer is set but the HTTP endpoint is not https"),
        ({"ssl-grpc-root-certifications-file": "CA"}, None, "grpc_root_certificates is set but grpc_use_ssl is not"),
    ],
    ids=["der", "missing-file", "verify-host", "https-option-plain-endpoint", "grpc-file-without-ssl"],
)
def test_tls_settings_are_checked_with_one_line(tmp_path, certificates, flags, endpoint, message):
    if "ssl-grpc-root-certifications-file" in flags:
        flags = {"ssl-grpc-root-certifications-file": str(certificates["ca.crt"])}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"triton_launch_mode": "remote", "triton_http_endpoint": endpoint, "perf_analyzer_flags": flags}))
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_ssl_flags_map_onto_tsweeps_keys(tmp_path, certificates):
    path = tmp_path / "c.yaml"
    flags = {
        "ssl-grpc-use-ssl": True, "ssl-grpc-root-certifications-file": str(certificates["ca.crt"]),
        "ssl-https-verify-peer": 1, "ssl-https-verify-host": 0, "ssl-https-ca-certificates-file": str(certificates["ca.crt"]),
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"triton_launch_mode": "remote", "triton_http_endpoint": "https://127.0.0.1:1", "perf_analyzer_flags": flags}))
    config = load_config(path, {})
    assert config.grpc_use_ssl is True and config.grpc_root_certificates == str(certificates["ca.crt"])
    assert (config.https_verify_peer, config.https_verify_host) == (1, 0)
    assert config.https_ca_certificates_file == str(certificates["ca.crt"])


# ------------------------------------------------------------------ against the real server


def served_repository(tmp_path: Path, **settings):
    """A server as a user would run it, serving the folder tsweep will write variants to."""
    from tsweep import repository
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings

    out = tmp_path / "served"
    repository.prepare_output(out, override=False)
    return out, LocalLauncher(LaunchSettings(model_repository=out, log_dir=tmp_path / "log", ready_timeout_s=60, **settings))


@pytest.mark.server
@pytest.mark.slow
def test_https_through_a_tls_proxy_records_points_measured_by_tritonclient(tmp_path, workdir, certificates):
    """Remote mode at an https endpoint: the control plane and the load go through TLS; the
    stored points, the CSV, the console and the PDF say which client measured."""
    pypdf = pytest.importorskip("pypdf")
    out, launcher = served_repository(tmp_path)
    server = launcher.start()
    proxy = TlsProxy(int(server.http_url.rsplit(":", 1)[1]), certificates["server.crt"], certificates["server.key"])
    try:
        cfg = config_file(
            workdir, triton_launch_mode="remote", triton_http_endpoint=f"https://127.0.0.1:{proxy.port}",
            output_model_repository_path=str(out), run_config_search_disable=True, concurrency="1,2",
            measurement_window_s=0.3, remeasure_top_configs=0,
            perf_analyzer_flags={"ssl-https-ca-certificates-file": str(certificates["ca.crt"]), "ssl-https-verify-host": 2},
        )  # fmt: skip
        result = run_tsweep("profile", "-f", str(cfg), cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert f"remote at https://127.0.0.1:{proxy.port}" in result.stderr
        rows = stored(workdir)
        assert [r["load_value"] for r in rows] == [1.0, 2.0]
        assert all(r["client"] == "tritonclient http (TLS)" and r["throughput"] > 0 and r["errors"] == 0 for r in rows)
        assert "measured through tritonclient http (TLS)" in result.stdout
        with open(workdir / "results" / "metrics-model-inference.csv") as f:
            assert {row["Client"] for row in csv.DictReader(f)} == {"tritonclient http (TLS)"}
        (summary,) = (workdir / "reports" / "summaries").rglob("*.pdf")
        text = " ".join(pypdf.PdfReader(str(summary)).pages[0].extract_text().split())
        assert "Client: tritonclient http (TLS)" in text
    finally:
        proxy.stop()
        launcher.stop()


@pytest.mark.server
@pytest.mark.slow
def test_grpc_tls_served_by_triton_records_points_and_a_wrong_ca_fails_the_point(tmp_path, workdir, certificates):
    """Local mode with Triton's own gRPC TLS (triton_server_flags) and perf_analyzer's
    ssl-grpc flags: points measured through TLS; with the wrong CA every request fails its
    handshake and the point is failed with that reason, on one line."""
    tls_flags = {
        "grpc-use-ssl": "true", "grpc-server-cert": str(certificates["server.crt"]),
        "grpc-server-key": str(certificates["server.key"]), "grpc-root-cert": str(certificates["ca.crt"]),
    }  # fmt: skip
    common = dict(
        triton_server_flags=tls_flags, client_protocol="grpc", run_config_search_disable=True, concurrency="2",
        measurement_window_s=0.3, remeasure_top_configs=0, request_timeout_s=5,
    )  # fmt: skip
    cfg = config_file(workdir, **common, perf_analyzer_flags={"ssl-grpc-use-ssl": True, "ssl-grpc-root-certifications-file": str(certificates["ca.crt"])})
    result = run_tsweep("profile", "-f", str(cfg), cwd=workdir)
    assert result.returncode == 0, result.stderr
    (row,) = stored(workdir)
    assert row["client"] == "tritonclient grpc (TLS)" and row["status"] in ("ok", "unstable") and row["throughput"] > 0

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    cfg = config_file(wrong, **common, perf_analyzer_flags={"ssl-grpc-use-ssl": True, "ssl-grpc-root-certifications-file": str(certificates["wrong-ca.crt"])})
    result = run_tsweep("profile", "-f", str(cfg), cwd=wrong)
    (row,) = stored(wrong)
    assert row["status"] == "failed" and row["client"] == "tritonclient grpc (TLS)"
    assert row["error"].startswith("all requests failed: ") and "handshake" in row["error"].lower() and "\n" not in row["error"]


@pytest.mark.server
def test_mutual_tls_takes_the_client_certificate_for_the_control_plane_and_the_load(add_sub_server, certificates):
    """A proxy that asks for a client certificate: with perf_analyzer's client certificate
    and key flags the server is ready and the point is measured; without them every
    request fails and the point is failed with the reason."""
    from dataclasses import replace

    from tsweep.measure import MethodSettings, measure
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.records import LoadLevel, LoadSettings, TlsSettings, Trial, Variant
    from tsweep.triton import TritonHTTP

    from tests.test_loads import CONFIG

    port = int(add_sub_server.http_url.rsplit(":", 1)[1])
    proxy = TlsProxy(port, certificates["server.crt"], certificates["server.key"], client_ca=certificates["ca.crt"])
    try:
        server = replace(add_sub_server, http_url=f"https://127.0.0.1:{proxy.port}")
        trial = Trial(Variant("add_sub", CONFIG, {}, name="add_sub"), LoadLevel("concurrency", 2.0), 1)
        plain = TritonHTTP(add_sub_server.http_url)
        method = MethodSettings(window_s=0.3, min_windows=3, max_windows=4, warmup_s=0.1)
        http = make_plugin_manager().load_generators()["http"]
        mutual = TlsSettings(
            https_ca_certificates_file=str(certificates["ca.crt"]), https_client_certificate_file=str(certificates["client.crt"]),
            https_private_key_file=str(certificates["client.key"]),
        )  # fmt: skip
        assert TritonHTTP(server.http_url, tls=mutual).is_ready()
        m = measure(trial, http(trial, server, LoadSettings(shapes={}, tls=mutual)), lambda: plain.stats("add_sub"), method)
        assert m.status in ("ok", "unstable") and m.errors == 0 and m.client == "tritonclient http (TLS)", m.error
        anonymous = TlsSettings(https_ca_certificates_file=str(certificates["ca.crt"]))
        m = measure(trial, http(trial, server, LoadSettings(shapes={}, tls=anonymous, timeout_s=5)), lambda: plain.stats("add_sub"), method)
        assert m.status == "failed" and m.error.startswith("all requests failed: ") and "\n" not in m.error
    finally:
        proxy.stop()
