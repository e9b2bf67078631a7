"""Audit and error traces, console audit logging, and metrics, against a real server."""

from __future__ import annotations

import json
import queue
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.protocols import PROTOCOLS
from tests.support.server import RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e


@pytest.fixture(name="trace")
def _trace(kes_server: RunningServer) -> Iterator[LiveTrace]:
    t = LiveTrace.of(kes_server)
    yield t
    t.close()


def test_audit_event_arrives_within_a_second(kes_server: RunningServer, trace: LiveTrace) -> None:
    assert trace.status == 200
    name = f"audit-{secrets.token_hex(4)}"
    with kes_server.client() as client:
        client.post(f"/v1/key/create/{name}").raise_for_status()
    event = trace.next_event(lambda e: e["request"]["path"] == f"/v1/key/create/{name}", 1.0)
    assert event["request"]["identity"] == kes_server.root_identity
    assert event["request"]["ip"] == "127.0.0.1"
    assert event["request"]["method"] == "POST"
    assert event["response"]["code"] == 200 and event["response"]["time"] > 0
    assert "." in event["time"]  # RFC 3339 with sub-second precision


def test_denied_requests_are_audited_too(kes_server: RunningServer, trace: LiveTrace) -> None:
    stranger = kes_server.new_client("stranger")
    with kes_server.client(stranger) as client:
        client.post("/v1/key/create/denied")
    event = trace.next_event(lambda e: e["request"]["identity"] == stranger.identity)
    assert event["response"]["code"] == 403


def test_two_subscribers_get_every_event(kes_server: RunningServer) -> None:
    first, second = LiveTrace.of(kes_server), LiveTrace.of(kes_server)
    try:
        paths = [f"/v1/key/create/two-{secrets.token_hex(4)}" for _ in range(20)]
        with kes_server.client() as client:
            for path in paths:
                client.post(path)
        for t in (first, second):
            seen: set[str] = set()
            while not set(paths) <= seen:
                seen.add(
                    t.next_event(lambda e: e["request"]["path"] in paths, 2.0)["request"]["path"]
                )
    finally:
        first.close()
        second.close()


def test_stalled_subscriber_does_not_block_requests(kes_server: RunningServer) -> None:
    """A client that subscribes and never reads: requests keep being served."""
    ctx = kes_server.ssl_context()
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", kes_server.port))
    stalled = ctx.wrap_socket(raw, server_hostname="localhost")
    stalled.sendall(b"GET /v1/log/audit/trace HTTP/1.1\r\nHost: localhost\r\n\r\n")
    try:
        with kes_server.client() as client:
            padding = "x" * 60
            for i in range(1500):  # ~200 KB of events, more than socket buffers hold
                resp = client.get(f"/v1/status?{padding}{i}")
                assert resp.status_code == 200
            metrics = client.get("/v1/metrics").text
        assert "kes_log_trace_subscribers" in metrics
    finally:
        stalled.close()


def _metrics(client: httpx.Client) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/v1/metrics").text):
        for sample in family.samples:
            if not sample.labels:
                # prometheus-client's parser reports counters as "<name>_total".
                values[sample.name.removesuffix("_total")] = sample.value
    return values


def test_metrics_parse_and_add_up(kes_server: RunningServer) -> None:
    with kes_server.client() as client:
        client.post("/v1/key/create/")  # a 400
        client.get("/version")
        values = _metrics(client)
        again = _metrics(client)
    total = values["kes_http_response_time_count"]
    assert (
        values["kes_http_request_success"]
        + values["kes_http_request_error"]
        + values["kes_http_request_failure"]
        == total
    )
    # Scraping /v1/metrics itself changes none of the counters.
    assert again["kes_http_response_time_count"] == total
    for name in (
        "kes_system_up_time",
        "kes_log_audit_events",
        "kes_log_error_events",
        "kes_http_request_active",
        "kes_cache_hits",
        "kes_log_trace_subscribers",
    ):
        assert name in values


def test_metrics_families_hold_one_metric_each(kes_server: RunningServer) -> None:
    """Upstream's check: every family holds exactly one (unlabelled) metric."""
    with kes_server.client() as client:
        text = client.get("/v1/metrics").text
    for family in text_string_to_metric_families(text):
        label_sets = {
            tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in family.samples
        }
        assert label_sets == {()}, family.name


def test_metrics_need_permission(kes_server: RunningServer) -> None:
    with kes_server.client(kes_server.new_client("nobody")) as client:
        assert client.get("/v1/metrics").status_code == 403
        assert client.get("/v1/log/audit/trace").status_code == 403


def test_audit_log_to_stdout_and_error_trace(tmp_path: Path) -> None:
    with start_server(tmp_path, config={"log": {"audit": "on"}}) as server:
        errors = LiveTrace.of(server, "/v1/log/error/trace")
        try:
            keys = tmp_path / "keys"
            keys.rename(tmp_path / "keys-moved")
            keys.write_text("the key store is gone")
            with server.client() as client:
                resp = client.post("/v1/key/create/broken")
                assert resp.status_code == 502
                assert resp.json()["message"] == "bad gateway: failed to create key"
            event = errors.next_event(lambda e: "broken" in e["message"], 2.0)
            assert "failed to create key" in event["message"]
            with server.client() as client:
                failures = [
                    line
                    for line in client.get("/v1/metrics").text.splitlines()
                    if line.startswith("kes_keystore_errors ")
                ]
            assert failures and float(failures[0].split()[1]) >= 1
        finally:
            errors.close()
        server.stop()
        lines = [
            json.loads(x) for x in server.stdout_path.read_text().splitlines() if x.startswith("{")
        ]
        assert any(e["request"]["path"] == "/v1/key/create/broken" for e in lines)
        assert "failed to create key" in server.stderr_path.read_text()


IDLE_S = 1.0


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2"])
def test_trace_outlives_the_idle_limit(tmp_path: Path, http2: bool) -> None:
    """An open trace is a request in progress: the idle limit never cuts it.

    The server closes connections idle for KES_HTTP_IDLE_TIMEOUT; a trace that
    has been silent for several times that still delivers the next event.
    """
    env = {"KES_HTTP_IDLE_TIMEOUT": str(IDLE_S)}
    with start_server(tmp_path, store="mem", env=env) as server:
        lines: queue.Queue[bytes] = queue.Queue()
        started = threading.Event()

        def read() -> None:
            with (
                server.client(http2=http2, timeout=30) as client,
                client.stream("GET", "/v1/log/audit/trace") as response,
            ):
                assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
                started.set()
                for line in response.iter_lines():
                    if '"/version"' in line:
                        lines.put(line.encode())
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert started.wait(10)
        time.sleep(IDLE_S * 4)
        with server.client() as client:
            assert client.get("/version").status_code == 200
        event = json.loads(lines.get(timeout=5))
        assert event["request"]["path"] == "/version"
        reader.join(5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_workers_share_keys_and_traces(tmp_path: Path, protocol: str) -> None:
    """--workers 2: keys are shared through the store; a trace sees every worker's events."""
    with start_server(tmp_path, args=["--workers", "2"]) as server:
        trace = LiveTrace.of(server)
        try:
            paths = []
            for i in range(12):  # new connections land on both workers
                name = f"w-{i}-{secrets.token_hex(3)}"
                with server.client(http2=protocol == "h2") as client:
                    assert client.post(f"/v1/key/create/{name}").status_code == 200
                    assert client.post(f"/v1/key/generate/{name}", json={}).status_code == 200
                paths.append(f"/v1/key/generate/{name}")
            seen: set[str] = set()
            while not set(paths) <= seen:
                seen.add(
                    trace.next_event(lambda e: e["request"]["path"] in paths, 2.0)["request"][
                        "path"
                    ]
                )
        finally:
            trace.close()
        assert server.stop() == 0


def test_workers_refuse_the_memory_store(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="shared key store"):
        with start_server(tmp_path, args=["--workers", "2"], store="mem"):
            pass
