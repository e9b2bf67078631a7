"""TLS proxy support with a real nginx (docs/examples/nginx.conf) in front of a kes-server.

The rules under test (seed "TLS Proxy", spec §6): only a connection whose own
identity is a configured proxy may forward a client certificate; through the
proxy a client is exactly itself; from anyone else the header is ignored; a
proxy request without a forwarded certificate is refused, never served as the
proxy; X-Forwarded-For from the proxy sets the audit event's client IP; and
traces stream through nginx live. One backend with an in-memory store keeps
these tests independent of etcd (the multi-server checks: test_cluster.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.badcert import duplicated_extension_identity
from tests.support.cluster import Cluster, start_cluster
from tests.support.server import ClientIdentity
from tests.support.trace import LiveTrace

pytestmark = [pytest.mark.e2e, pytest.mark.nginx]

SELF = "/v1/identity/self/describe"
HEADER = "X-Tls-Client-Cert"


@pytest.fixture(name="cluster", scope="module")
def _cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(
        tmp_path_factory.mktemp("proxy"), backends=1, etcd_members=0, management=False
    ) as cluster:
        yield cluster


def escaped(who: ClientIdentity) -> str:
    """A certificate as nginx's $ssl_client_escaped_cert forwards it."""
    return quote(who.cert.read_text(), safe="")


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_identity_through_the_proxy_is_the_clients_own(cluster: Cluster, http2: bool) -> None:
    with cluster.via_proxy(cluster.app, http2=http2) as client:
        response = client.get(SELF)
    assert response.status_code == 200, response.text
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    body = response.json()
    assert body["identity"] == cluster.app.identity
    assert body["policy_name"] == "app"
    assert body["identity"] != cluster.proxy_identity.identity


def test_without_a_client_certificate_nothing_is_allowed(cluster: Cluster) -> None:
    """nginx accepts the handshake (optional_no_ca) and sends no header: KES refuses."""
    with cluster.via_proxy(None) as client:
        response = client.get(SELF)
        forged = client.get(SELF, headers={HEADER: escaped(cluster.app)})
    assert response.status_code == 400
    assert response.json() == {"message": "no client certificate is present"}
    # nginx replaces (here: drops) a client's own header of that name.
    assert forged.status_code == 400


def test_a_client_cannot_forge_the_header_through_nginx(cluster: Cluster) -> None:
    with cluster.via_proxy(cluster.monitor) as client:
        response = client.get(SELF, headers={HEADER: escaped(cluster.app)})
    assert response.status_code == 200
    assert response.json()["identity"] == cluster.monitor.identity


def test_the_header_from_a_non_proxy_connection_is_ignored(cluster: Cluster) -> None:
    """Straight to the kes-server: the caller is who its TLS certificate says (documented)."""
    backend = cluster.backends[0]
    with cluster.client(backend.url, cluster.monitor) as client:
        response = client.get(SELF, headers={HEADER: escaped(cluster.app)})
        denied = client.post("/v1/key/create/app-forged", headers={HEADER: escaped(cluster.app)})
    assert response.status_code == 200
    assert response.json()["identity"] == cluster.monitor.identity
    assert denied.status_code == 403  # the monitor policy does not allow creating keys


def test_the_proxy_identity_must_forward_a_certificate(cluster: Cluster) -> None:
    """The proxy itself is nobody: without a forwarded certificate it is refused."""
    backend = cluster.backends[0]
    with cluster.client(backend.url, cluster.proxy_identity) as proxy:
        bare = proxy.get(SELF)
        forwarded = proxy.get(SELF, headers={HEADER: escaped(cluster.app)})
        twice = proxy.get(
            SELF, headers=[(HEADER, escaped(cluster.app)), (HEADER, escaped(cluster.monitor))]
        )
        garbage = proxy.get(SELF, headers={HEADER: "not-a-certificate"})
    assert bare.status_code == 400
    assert bare.json() == {"message": "no client certificate is present"}
    assert forwarded.status_code == 200
    assert forwarded.json()["identity"] == cluster.app.identity
    assert twice.status_code == 400
    assert twice.json() == {"message": "too many client certificates are present"}
    assert garbage.status_code == 400
    assert garbage.json() == {"message": "invalid client certificate"}


def test_audit_trace_streams_live_through_nginx_with_the_clients_identity_and_ip(
    cluster: Cluster,
) -> None:
    """The event of a proxied request names the client (not nginx) and the client's IP.

    The client connects from 127.0.0.2, nginx from 127.0.0.1: the audit IP can
    only be 127.0.0.2 if it came from X-Forwarded-For. The client's own
    X-Forwarded-For is overwritten by nginx ($remote_addr), so it cannot
    write a fake address into the audit log.
    """
    trace = LiveTrace(cluster.proxy.url, cluster.ssl_context(cluster.monitor))
    try:
        assert trace.status == 200
        path = f"/v1/key/generate/app-audit-{time.monotonic_ns()}"
        with cluster.via_proxy(cluster.app, local_address="127.0.0.2") as client:
            sent = time.monotonic()
            response = client.post(path, json={}, headers={"X-Forwarded-For": "6.6.6.6"})
        assert response.status_code == 404  # no such key; audited all the same
        arrived, event = trace.wait_for(lambda e: e["request"]["path"] == path)
        assert arrived - sent < 1.0, "the event was held back (buffered) by the proxy"
        assert event["request"]["identity"] == cluster.app.identity
        assert event["request"]["ip"] == "127.0.0.2"
        assert event["response"]["code"] == 404
        # The stream is still open and keeps delivering (not one buffered batch).
        with cluster.via_proxy(cluster.app) as client:
            client.get(SELF)
        trace.wait_for(lambda e: e["request"]["path"] == SELF)
    finally:
        trace.close()


def test_a_malformed_client_certificate_through_nginx_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    """nginx (optional_no_ca) forwards a certificate that lists an extension twice."""
    malformed = duplicated_extension_identity(tmp_path)
    with cluster.via_proxy(malformed) as client:
        response = client.get(SELF)
    assert response.status_code == 400
    assert response.json() == {"message": "invalid client certificate"}
