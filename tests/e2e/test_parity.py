"""HTTP/1.1 and HTTP/2 give the same answers and the same audit events.

The application never sees which protocol carried a request
(kes_server/transport/exchange.py), so nothing a client can observe of the
API may depend on it. One script of requests covers every route, good and
bad (bad names, bad JSON, wrong methods, unknown paths, bodies over the
limit, policy denials); it runs once over HTTP/1.1 and once over HTTP/2
against the same server, each time leaving the server as it found it. Status,
content type, the headers KES defines, body and trailers must match, and so
must the audit events the two runs produce. Values that differ by design
(fresh keys and nonces, timestamps, uptime, counters) are compared by shape.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kes_server.api.routes import ROUTER, ROUTES
from tests.support.paths import load_vectors
from tests.support.protocols import raw_call
from tests.support.rawh2 import H2Client
from tests.support.rawhttp import RawResponse, open_tls, read_response
from tests.support.server import ClientIdentity, RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
#: Headers whose presence and value are part of the contract (the rest is the transport's).
COMPARED_HEADERS = ("content-type", "accept", "trailer", "x-content-type-options")
#: JSON fields that differ between two identical requests by design.
VOLATILE = {"created_at", "uptime"}
#: ... and one that is only there when it is not zero (the store's latency in ms).
OPTIONAL = "latency"
#: ... and, in generate/encrypt answers, the fresh key and ciphertext.
RANDOM = {"plaintext", "ciphertext"}
OTHER = "ab" * 32  # an identity no client presents
TRACES = ("/v1/log/audit/trace", "/v1/log/error/trace", "/v1/log/audit", "/v1/log/error")
START, END = "/parity/start", "/parity/end"


@dataclass(frozen=True)
class Step:
    who: str
    method: str
    target: str
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _script(limited: str) -> list[Step]:
    vector = next(v for v in load_vectors("ciphertexts.json")["vectors"] if v["expect"] == "ok")
    sealed = {"ciphertext": vector["ciphertext_b64"], "context": vector["context_b64"]}
    b64 = base64.b64encode(b"parity").decode()
    root = "root"
    return [
        Step(root, "GET", "/version"),
        Step(root, "GET", "/v1/status"),
        Step(root, "GET", "/v1/metrics"),
        Step(root, "GET", "/v1/api"),
        Step(root, "POST", "/v1/key/create/par-key"),
        Step(root, "POST", "/v1/key/create/par-key"),  # 400: exists
        Step(root, "POST", "/v1/key/import/par-vec", _json({"bytes": vector["key_b64"]})),
        Step(root, "POST", "/v1/key/generate/par-key", b"{}"),
        Step(root, "POST", "/v1/key/generate/par-key", _json({"context": b64})),
        Step(root, "POST", "/v1/key/encrypt/par-key", _json({"plaintext": b64})),
        Step(root, "POST", "/v1/key/decrypt/par-vec", _json(sealed)),
        Step(root, "POST", "/v1/key/bulk/decrypt/par-vec", _json([sealed, sealed])),
        Step(root, "POST", "/v1/key/decrypt/par-key", _json(sealed)),  # 400: not authentic
        Step(root, "POST", "/v1/key/generate/missing", b"{}"),  # 404: no such key
        Step(root, "GET", "/v1/key/list/par-*"),
        Step(root, "GET", "/v1/key/list/nothing-*"),  # empty list: trailers only
        Step(root, "POST", "/v1/policy/write/par-policy", _json({"allow": ["/v1/key/*/par-*"]})),
        Step(root, "GET", "/v1/policy/read/par-policy"),
        Step(root, "GET", "/v1/policy/show/par-policy"),
        Step(root, "GET", "/v1/policy/describe/par-policy"),
        Step(root, "GET", "/v1/policy/list/par-*"),
        Step(root, "GET", "/v1/policy/read/missing"),
        Step(root, "POST", f"/v1/identity/assign/par-policy/{limited}"),
        Step(root, "POST", "/v1/policy/assign/par-policy", _json({"identity": OTHER})),
        Step(root, "GET", f"/v1/identity/describe/{limited}"),
        Step(root, "GET", "/v1/identity/list/*"),
        Step("limited", "GET", "/v1/identity/self/describe"),
        Step("limited", "POST", "/v1/key/generate/par-key", b"{}"),
        Step("limited", "POST", "/v1/key/create/other"),  # 403: not in the policy
        Step("limited", "POST", "/v1/key/import/other", b"{" * 10_000),  # 403 before the body
        Step("stranger", "POST", "/v1/key/generate/par-key", b"{}"),  # 403: unknown
        Step("stranger", "GET", "/version"),
        Step("stranger", "GET", "/v1/identity/self/describe"),
        # Bad input.
        Step(root, "POST", "/v1/key/create/a%2Fb"),
        Step(root, "POST", "/v1/key/create/.."),
        Step(root, "POST", "/v1/key/generate/", b"{}"),
        Step(root, "POST", "/v1/key/encrypt/par-key", b"{"),
        Step(root, "POST", "/v1/key/encrypt/par-key", _json({"plaintext": 1})),
        Step(root, "POST", "/v1/policy/write/par-bad", _json({"allow": "x"})),
        Step(root, "GET", "/v1/key/list/a["),
        Step(root, "GET", "/v1/key/create/x"),
        Step(root, "PUT", "/v1/key/decrypt/x"),
        Step(root, "DELETE", "/v1/status"),
        Step(root, "GET", "/nope"),
        Step(root, "GET", "/v1/key"),
        Step(root, "POST", "/v1/key/encrypt/par-key", b"{" * (512 * 1024 + 1)),
        Step(
            root,
            "POST",
            "/v1/key/import/par-big",
            headers=((b"content-length", str(MIB + 1).encode()),),
        ),
        # Back to the state the run found.
        Step(root, "DELETE", f"/v1/identity/forget/{OTHER}"),
        Step(root, "DELETE", f"/v1/identity/delete/{limited}"),
        Step(root, "DELETE", "/v1/policy/delete/par-policy"),
        Step(root, "DELETE", "/v1/key/delete/par-key"),
        Step(root, "DELETE", "/v1/key/delete/par-vec"),
        Step(root, "DELETE", "/v1/key/delete/par-vec"),  # 404 now
    ]


@dataclass(frozen=True)
class Clients:
    root: ClientIdentity
    limited: ClientIdentity
    stranger: ClientIdentity


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("parity")) as srv:
        yield srv


@pytest.fixture(scope="module")
def clients(server: RunningServer) -> Clients:
    return Clients(server.root, server.new_client("limited"), server.new_client("stranger"))


def _shape(value: Any, hide: set[str]) -> Any:
    """``value`` with the fields named in ``hide`` replaced by their type."""
    if isinstance(value, dict):
        return {
            k: type(v).__name__ if k in hide else _shape(v, hide)
            for k, v in sorted(value.items())
            if k != OPTIONAL
        }
    if isinstance(value, list):
        return [_shape(v, hide) for v in value]
    return value


def _comparable_body(step: Step, answer: RawResponse) -> object:
    if step.target == "/v1/metrics":
        # Counters move; the families present must not.
        names = re.findall(r"^([a-z_]+)", answer.body.decode(), flags=re.MULTILINE)
        return sorted(set(names))
    hide = VOLATILE | (
        RANDOM if "/generate/" in step.target or "/encrypt/" in step.target else set()
    )
    kind = answer.content_type
    if kind.startswith("application/json") and answer.body:
        return _shape(json.loads(answer.body), hide)
    if kind == "application/x-ndjson":
        return [_shape(json.loads(line), hide) for line in answer.body.splitlines()]
    return answer.body


def _observed(step: Step, answer: RawResponse) -> dict[str, object]:
    return {
        "status": answer.status,
        "headers": {h: answer.headers.get(h) for h in COMPARED_HEADERS},
        "body": _comparable_body(step, answer),
        "trailers": answer.trailers,
    }


def _run(
    server: RunningServer, clients: Clients, protocol: str, trace: LiveTrace
) -> tuple[list[dict[str, object]], list[tuple[str, str, str, int]]]:
    """The answers to the script over ``protocol``, and the audit events it caused."""
    observed = []
    raw_call(protocol, server.port, server.ssl_context(), b"GET", START.encode())
    for step in _script(clients.limited.identity):
        answer = raw_call(
            protocol,
            server.port,
            server.ssl_context(getattr(clients, step.who)),
            step.method.encode(),
            step.target.encode(),
            step.body,
            headers=step.headers,
        )
        observed.append(
            {"step": f"{step.who} {step.method} {step.target}"} | _observed(step, answer)
        )
    raw_call(protocol, server.port, server.ssl_context(), b"GET", END.encode())
    events: list[tuple[str, str, str, int]] = []
    trace.next_event(lambda e: e["request"]["path"] == START, 5.0)
    while True:
        event = trace.next_event(lambda e: True, 5.0)
        request = event["request"]
        if request["path"] == END:
            return observed, events
        events.append(
            (request["method"], request["path"], request["identity"], event["response"]["code"])
        )


def test_the_script_covers_every_route(clients: Clients) -> None:
    """Every route of the table is exercised (the live traces by the test below)."""
    covered = set()
    for step in _script(clients.limited.identity):
        found = ROUTER.match(step.method, step.target.split("?")[0])
        if isinstance(found, tuple):
            covered.add((found[0].method, found[0].pattern))
    every = {(r.method, r.pattern) for r in ROUTES if r.pattern not in TRACES}
    assert every - covered == set()


def test_both_protocols_answer_and_audit_alike(server: RunningServer, clients: Clients) -> None:
    trace = LiveTrace.of(server)
    try:
        answers_h1, events_h1 = _run(server, clients, "http1", trace)
        answers_h2, events_h2 = _run(server, clients, "h2", trace)
    finally:
        trace.close()
    assert len(answers_h1) == len(answers_h2)
    for over_h1, over_h2 in zip(answers_h1, answers_h2, strict=True):
        assert over_h1 == over_h2
    assert events_h1 == events_h2
    # /v1/metrics is not audited; everything else is, once.
    assert len(events_h1) == len(answers_h1) - 1
    statuses = {a["status"] for a in answers_h1}
    assert {200, 301, 400, 403, 404, 405} <= statuses, statuses
    logs = server.logs()
    assert "Traceback" not in logs and "internal error" not in logs


def _trace_head_http1(server: RunningServer, path: str) -> dict[str, object]:
    with open_tls(server.port, server.ssl_context()) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        head = read_response(sock, head=True)
    return {"status": head.status, "headers": {h: head.headers.get(h) for h in COMPARED_HEADERS}}


def _trace_head_h2(server: RunningServer, path: str) -> dict[str, object]:
    with H2Client(server.port, server.ssl_context()) as client:
        answer = client.streams[client.send_request(b"GET", path.encode())]
        assert client.wait(lambda: answer.status != 0)
    return {
        "status": answer.status,
        "headers": {h: answer.headers.get(h) for h in COMPARED_HEADERS},
    }


@pytest.mark.parametrize("path", TRACES)
def test_trace_streams_start_alike(server: RunningServer, path: str) -> None:
    over_h1, over_h2 = _trace_head_http1(server, path), _trace_head_h2(server, path)
    assert over_h1 == over_h2
    assert over_h1["status"] == 200
