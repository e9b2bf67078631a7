"""Revocation reaches open trace streams (issue 14, item 9).

A trace stream is authorised once, when it opens, and then lives for hours.
The old server never looked again: a subscriber whose identity was forgotten,
or whose policy no longer allowed the trace, kept receiving every audit
event. Now every change of policies or bindings re-checks the open streams
(``AccessControl.on_change``, used by ``api/log.py``) and ends those their
caller may no longer read:

* on the server where the change was made, at once (the test allows a few
  seconds only so a busy machine does not fail it);
* on the other servers and ``--workers`` sharing the store, when they re-read
  it, within ``REFRESH_S`` seconds (``kes_server/access.py``).

Streams still allowed are left alone, and the alias ``/v1/log/audit`` ends
when the v0.17 path it stands for is no longer allowed.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kes_server.access import REFRESH_S
from tests.support.h2client import H2Client
from tests.support.rawhttp import open_tls
from tests.support.server import ClientIdentity, RunningServer, start_server

pytestmark = pytest.mark.e2e

#: Where the change was made the stream ends at once; this only absorbs a busy machine.
AT_ONCE_S = 3.0
#: Elsewhere it ends when the store is re-read.
REFRESHED_S = REFRESH_S + AT_ONCE_S


class Http1Trace:
    """A trace over HTTP/1.1 (chunked), read with deadlines in the test's thread."""

    def __init__(self, port: int, ctx: ssl.SSLContext, path: str) -> None:
        self.sock = open_tls(port, ctx)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        self.buf = b""
        self.body = b""
        self.ended = False
        self.in_body = False
        self._read_until(lambda: b"\r\n\r\n" in self.buf, 10.0)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        assert b"chunked" in head.lower() or self.status != 200
        self.in_body = True
        self._chunks()

    def _read_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.ended:
                return condition()
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.ended = True  # a closed connection ends the stream too
            self.buf += chunk
            self._chunks()
        return True

    def _chunks(self) -> None:
        """Move complete chunks from ``buf`` to ``body``; the last chunk ends the stream."""
        while self.in_body and not self.ended and (at := self.buf.find(b"\r\n")) >= 0:
            size = int(self.buf[:at].split(b";")[0], 16)
            if size == 0:
                self.ended = True
                return
            if len(self.buf) < at + 2 + size + 2:
                return
            self.body += self.buf[at + 2 : at + 2 + size]
            self.buf = self.buf[at + 2 + size + 2 :]

    def saw(self, marker: str, timeout: float) -> bool:
        return self._read_until(lambda: marker.encode() in self.body, timeout)

    def ends_within(self, timeout: float) -> bool:
        return self._read_until(lambda: self.ended, timeout)

    def close(self) -> None:
        self.sock.close()


class Http2Trace:
    """A trace as one stream of an HTTP/2 connection (which must survive the end)."""

    def __init__(self, port: int, ctx: ssl.SSLContext, path: str) -> None:
        self.h2 = H2Client.open(port, ctx)
        self.sid = self.h2.request(b"GET", path.encode())
        stream = self.h2.streams[self.sid]
        self.h2.wait(lambda: stream.status != 0 or stream.done)
        self.status = stream.status

    def _within(self, condition: Callable[[], bool], timeout: float) -> bool:
        try:
            self.h2.wait(condition, timeout)
        except AssertionError:
            return False
        return True

    def saw(self, marker: str, timeout: float) -> bool:
        stream = self.h2.streams[self.sid]
        return self._within(lambda: marker.encode() in stream.data, timeout)

    def ends_within(self, timeout: float) -> bool:
        stream = self.h2.streams[self.sid]
        ended = self._within(lambda: stream.done, timeout)
        if ended:  # only the stream: the connection takes new requests
            assert not self.h2.closed and self.h2.goaway is None
            assert self.h2.response(self.h2.request(b"GET", b"/version")).status == 200
        return ended

    def close(self) -> None:
        self.h2.close()


Trace = Http1Trace | Http2Trace
TRANSPORTS: dict[str, Callable[[int, ssl.SSLContext, str], Trace]] = {
    "http1": Http1Trace,
    "http2": Http2Trace,
}


@dataclass
class Subscriber:
    """An identity bound to its own policy, which allows ``allow``."""

    server: RunningServer
    who: ClientIdentity
    policy: str

    @classmethod
    def new(cls, server: RunningServer, allow: list[str]) -> Subscriber:
        policy = f"tracer-{secrets.token_hex(4)}"
        who = server.new_client(policy)
        with server.client() as root:
            rules = {"allow": allow, "deny": []}
            assert root.post(f"/v1/policy/write/{policy}", json=rules).status_code == 200
            assert root.post(f"/v1/identity/assign/{policy}/{who.identity}").status_code == 200
        return cls(server, who, policy)

    def open(self, transport: str, path: str, *, within: float = 0.0) -> Trace:
        """The open trace; ``within``: retry that long (another worker may not know the
        new policy yet)."""
        deadline = time.monotonic() + within
        while True:
            ctx = self.server.ssl_context(self.who)
            trace = TRANSPORTS[transport](self.server.port, ctx, path)
            if trace.status == 200 or time.monotonic() > deadline:
                break
            trace.close()
            time.sleep(0.2)
        assert trace.status == 200
        return trace


def forget(root: httpx.Client, sub: Subscriber) -> None:
    assert root.delete(f"/v1/identity/forget/{sub.who.identity}").status_code == 200


def rewrite_without_traces(root: httpx.Client, sub: Subscriber) -> None:
    rules = {"allow": ["/v1/status", "/v1/log/audit"], "deny": []}
    assert root.post(f"/v1/policy/write/{sub.policy}", json=rules).status_code == 200


def delete_policy(root: httpx.Client, sub: Subscriber) -> None:
    assert root.delete(f"/v1/policy/delete/{sub.policy}").status_code == 200


REVOCATIONS = {"forget": forget, "rewrite": rewrite_without_traces, "delete": delete_policy}
#: The trace paths, and what the subscriber's policy allows to open them.
TRACE_PATHS = {
    "audit": ("/v1/log/audit/trace", ["/v1/log/audit/trace"]),
    "error": ("/v1/log/error/trace", ["/v1/log/error/trace"]),
    "audit-alias": ("/v1/log/audit", ["/v1/log/audit", "/v1/log/audit/trace"]),
}


@pytest.fixture(name="server", scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("revocation"), store="mem") as server:
        yield server


def _event_marker(server: RunningServer) -> str:
    """Make an audit event with a path no other test uses; return that path."""
    path = f"/v1/marker-{secrets.token_hex(4)}"
    with server.client() as client:
        assert client.get(path).status_code == 404
    return path


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("kind", sorted(TRACE_PATHS))
@pytest.mark.parametrize("revoke", sorted(REVOCATIONS))
def test_revocation_ends_an_open_trace(
    server: RunningServer, transport: str, kind: str, revoke: str
) -> None:
    path, allow = TRACE_PATHS[kind]
    sub = Subscriber.new(server, allow)
    trace = sub.open(transport, path)
    watcher = Subscriber.new(server, allow).open(transport, path)  # a bystander
    try:
        if kind != "error":
            assert trace.saw(_event_marker(server), 5.0), "the trace delivered nothing"
        with server.client() as root:
            REVOCATIONS[revoke](root, sub)
        assert trace.ends_within(AT_ONCE_S), "the revoked subscriber's trace is still open"
        assert not watcher.ends_within(0.2), "a trace still allowed was ended"
        if kind != "error":
            assert watcher.saw(_event_marker(server), 5.0)
    finally:
        trace.close()
        watcher.close()
    with server.client(sub.who) as client:
        assert client.get(path).status_code == 403


def test_an_alias_trace_ends_when_its_v017_path_is_no_longer_allowed(
    server: RunningServer,
) -> None:
    """The policy keeps ``/v1/log/audit`` but drops ``/v1/log/audit/trace``."""
    sub = Subscriber.new(server, ["/v1/log/audit", "/v1/log/audit/trace"])
    trace = sub.open("http2", "/v1/log/audit")
    try:
        with server.client() as root:
            rewrite_without_traces(root, sub)  # still allows /v1/log/audit
        assert trace.ends_within(AT_ONCE_S)
    finally:
        trace.close()


def test_a_change_that_keeps_the_trace_allowed_keeps_it_open(server: RunningServer) -> None:
    sub = Subscriber.new(server, ["/v1/log/audit/trace"])
    trace = sub.open("http1", "/v1/log/audit/trace")
    try:
        with server.client() as root:
            rules = {"allow": ["/v1/log/audit/trace", "/v1/status"], "deny": ["/v1/key/*/*"]}
            assert root.post(f"/v1/policy/write/{sub.policy}", json=rules).status_code == 200
        assert not trace.ends_within(0.5)
        assert trace.saw(_event_marker(server), 5.0)
    finally:
        trace.close()


# ---------------------------------------------------------------------- --workers


def _local_subscribers(client: httpx.Client) -> float:
    """``kes_log_trace_subscribers`` of the worker that serves this connection."""
    for family in text_string_to_metric_families(client.get("/v1/metrics").text):
        for sample in family.samples:
            if sample.name == "kes_log_trace_subscribers":
                return float(sample.value)
    raise AssertionError("no kes_log_trace_subscribers metric")


@pytest.fixture(name="workers", scope="module")
def _workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("revocation-workers"), args=["--workers", "2"]) as s:
        yield s


@pytest.mark.slow
@pytest.mark.parametrize("revoke", sorted(REVOCATIONS))
def test_revocation_through_one_worker_ends_a_trace_on_the_other(
    workers: RunningServer, revoke: str
) -> None:
    """The change goes through a connection whose worker has no trace subscriber at all,
    so the only open trace is on the other worker: it must end within ``REFRESH_S``."""
    sub = Subscriber.new(workers, ["/v1/log/audit/trace"])
    trace = sub.open("http2", "/v1/log/audit/trace", within=REFRESHED_S)
    try:
        for _ in range(40):  # new connections land on either worker
            with workers.client() as root:
                if _local_subscribers(root) == 0:
                    # Not the trace's worker: revoke through this very connection.
                    REVOCATIONS[revoke](root, sub)
                    break
        else:
            raise AssertionError("40 connections all landed on the trace's worker")
        assert trace.ends_within(REFRESHED_S), (
            f"the trace on the other worker was still open {REFRESHED_S}s after the change"
        )
    finally:
        trace.close()


def test_the_refresh_period_is_what_the_docs_say() -> None:
    text = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert f"`REFRESH_S` = {REFRESH_S:g} s" in text
