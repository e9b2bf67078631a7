"""Requests and parsing of every endpoint, without a network (``_base.Api``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from kes_client import (
    AuditEvent,
    ErrorEvent,
    IdentityInfo,
    InternalError,
    KeyInfo,
    Policy,
    PolicyInfo,
    ProtocolError,
    Status,
    StoreUnavailable,
)
from kes_client._base import Api, escape_segment

SERVER = "https://kes.test:7373"


@pytest.fixture(name="api")
def _api() -> Api:
    return Api(SERVER, timeout=httpx.Timeout(5.0))


def respond(
    request: httpx.Request, status: int = 200, body: bytes | str | Any = b""
) -> httpx.Response:
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body, request=request)
    return httpx.Response(status, json=body, request=request)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("my-key", "my-key"),
        ("*", "%2A"),
        ("a/b", "a%2Fb"),
        ("a b?", "a%20b%3F"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("k$&+:=@", "k$&+:=@"),
        ("ü", "%C3%BC"),
    ],
)
def test_escape_segment_matches_go_path_escape(value: str, escaped: str) -> None:
    assert escape_segment(value) == escaped


@pytest.mark.parametrize(
    ("build", "method", "raw_path"),
    [
        (lambda api: api.version(), "GET", "/version"),
        (lambda api: api.status(), "GET", "/v1/status"),
        (lambda api: api.metrics(), "GET", "/v1/metrics"),
        (lambda api: api.create_key("k 1"), "POST", "/v1/key/create/k%201"),
        (lambda api: api.import_key("k", b"\0" * 32), "POST", "/v1/key/import/k"),
        (lambda api: api.delete_key("k"), "DELETE", "/v1/key/delete/k"),
        (lambda api: api.generate_key("k"), "POST", "/v1/key/generate/k"),
        (lambda api: api.encrypt("k", b"x"), "POST", "/v1/key/encrypt/k"),
        (lambda api: api.decrypt("k", b"x"), "POST", "/v1/key/decrypt/k"),
        (lambda api: api.list_keys(), "GET", "/v1/key/list/%2A"),
        (lambda api: api.write_policy("p", Policy()), "POST", "/v1/policy/write/p"),
        (lambda api: api.read_policy("p"), "GET", "/v1/policy/read/p"),
        (lambda api: api.list_policies("my-*"), "GET", "/v1/policy/list/my-%2A"),
        (lambda api: api.delete_policy("p"), "DELETE", "/v1/policy/delete/p"),
        (lambda api: api.assign_identity("p", "ab12"), "POST", "/v1/identity/assign/p/ab12"),
        (lambda api: api.list_identities(), "GET", "/v1/identity/list/%2A"),
        (lambda api: api.forget_identity("ab12"), "DELETE", "/v1/identity/forget/ab12"),
        (lambda api: api.self_identity(), "GET", "/v1/identity/self/describe"),
        (lambda api: api.trace_audit(), "GET", "/v1/log/audit/trace"),
        (lambda api: api.trace_error(), "GET", "/v1/log/error/trace"),
    ],
)
def test_routes(build: Any, method: str, raw_path: str, api: Api) -> None:
    request: httpx.Request = build(api).request
    assert request.method == method
    assert request.url.raw_path.decode() == raw_path
    assert request.url.host == "kes.test"
    assert request.headers["user-agent"].startswith("pykes/")


def test_bodies_are_base64_json(api: Api) -> None:
    body = json.loads(api.import_key("k", b"\1" * 32).request.content)
    assert body == {"bytes": b64(b"\1" * 32)}
    assert json.loads(api.generate_key("k").request.content) == {}
    assert json.loads(api.generate_key("k", b"ctx").request.content) == {"context": b64(b"ctx")}
    assert json.loads(api.encrypt("k", b"hi", b"c").request.content) == {
        "plaintext": b64(b"hi"),
        "context": b64(b"c"),
    }
    assert json.loads(api.decrypt("k", b"ct").request.content) == {"ciphertext": b64(b"ct")}
    policy = Policy(allow=("/v1/key/*/a",), deny=())
    assert json.loads(api.write_policy("p", policy).request.content) == {
        "allow": ["/v1/key/*/a"],
        "deny": [],
    }
    assert api.generate_key("k").request.headers["content-type"] == "application/json"


def test_streams_never_time_out_reading(api: Api) -> None:
    assert api.list_keys().request.extensions["timeout"]["read"] == 5.0
    timeouts = api.trace_audit().request.extensions["timeout"]
    assert timeouts["read"] is None
    assert timeouts["connect"] == 5.0


def test_parse_generate_encrypt_decrypt(api: Api) -> None:
    call = api.generate_key("k")
    dek = call.parse(
        respond(call.request, body={"plaintext": b64(b"p" * 32), "ciphertext": b64(b"{}")})
    )
    assert dek.plaintext == b"p" * 32 and dek.ciphertext == b"{}"
    assert "plaintext" not in repr(dek)
    call2 = api.encrypt("k", b"x")
    assert call2.parse(respond(call2.request, body={"ciphertext": b64(b"ct")})) == b"ct"
    call3 = api.decrypt("k", b"x")
    assert call3.parse(respond(call3.request, body={"plaintext": b64(b"pt")})) == b"pt"


def test_parse_rejects_bad_base64_and_non_json(api: Api) -> None:
    call = api.encrypt("k", b"x")
    with pytest.raises(ProtocolError, match="base64"):
        call.parse(respond(call.request, body={"ciphertext": "!!"}))
    with pytest.raises(ProtocolError, match="not JSON"):
        call.parse(respond(call.request, body=b"<html>"))


def test_empty_success_bodies(api: Api) -> None:
    call = api.create_key("k")
    assert call.parse(respond(call.request)) is None


def test_key_list_accepts_both_spellings(api: Api) -> None:
    call = api.list_keys()
    body = b'{"Name":"a"}\n{"name":"b","created_at":"2022-01-01T00:00:00Z"}\n'
    assert call.parse(respond(call.request, body=body)) == [
        KeyInfo("a"),
        KeyInfo("b", created_at="2022-01-01T00:00:00Z"),
    ]
    assert call.parse(respond(call.request, body=b"")) == []


def test_key_list_error_line_fails_the_listing(api: Api) -> None:
    call = api.list_keys()
    body = b'{"name":"a"}\n{"error":"bad gateway: failed to list keys"}\n'
    with pytest.raises(StoreUnavailable, match="failed to list keys"):
        call.parse(respond(call.request, body=body))
    with pytest.raises(InternalError, match="disk on fire"):
        call.parse(respond(call.request, body=b'{"error":"disk on fire"}'))


def test_policy_list_array_or_ndjson(api: Api) -> None:
    call = api.list_policies()
    assert call.parse(respond(call.request, body=b'["a","b"]')) == [
        PolicyInfo("a"),
        PolicyInfo("b"),
    ]
    assert call.parse(respond(call.request, body=b"[]")) == []
    ndjson = b'{"name":"a","created_by":"ff"}\n{"name":"b"}\n'
    assert call.parse(respond(call.request, body=ndjson)) == [
        PolicyInfo("a", created_by="ff"),
        PolicyInfo("b"),
    ]


def test_policy_read(api: Api) -> None:
    call = api.read_policy("p")
    parsed = call.parse(respond(call.request, body={"allow": ["/a"], "deny": None}))
    assert parsed == Policy(allow=("/a",), deny=())


def test_identity_list_and_self(api: Api) -> None:
    call = api.list_identities()
    body = b'{"identity":"aa","policy":"p"}\n{"Identity":"bb","Policy":"q","admin":false}\n'
    assert call.parse(respond(call.request, body=body)) == [
        IdentityInfo("aa", "p"),
        IdentityInfo("bb", "q"),
    ]
    me = api.self_identity()
    v019 = {
        "identity": "aa",
        "admin": False,
        "policy_name": "p",
        "policy": {"Allow": ["/v1/key/*/*"], "Deny": []},
    }
    assert me.parse(respond(me.request, body=v019)) == IdentityInfo(
        "aa", "p", rules=Policy(allow=("/v1/key/*/*",))
    )
    assert me.parse(respond(me.request, body={"identity": "rr", "admin": True})).admin


def test_status_and_version(api: Api) -> None:
    call = api.status()
    body = {"version": "v0.17.6", "uptime": 3_000_000_000, "kms": {"state": "available"}}
    assert call.parse(respond(call.request, body=body)) == Status(
        "v0.17.6", 3_000_000_000, "available"
    )
    version = api.version()
    assert version.parse(respond(version.request, body={"version": "v0.1.0"})) == "v0.1.0"
    metrics = api.metrics()
    assert metrics.parse(respond(metrics.request, body=b"# HELP x\nx 1\n")) == "# HELP x\nx 1\n"


def test_trace_event_parsing_is_lenient(api: Api) -> None:
    audit = api.trace_audit().event
    v017 = {
        "time": "2022-01-06T15:50:28+01:00",
        "request": {"path": "/v1/key/create/my-key", "identity": "3ecf"},
        "response": {"code": 200, "time": 183522},
    }
    event = audit(v017)
    assert isinstance(event, AuditEvent)
    assert (event.path, event.identity, event.status, event.response_time) == (
        "/v1/key/create/my-key",
        "3ecf",
        200,
        183522,
    )
    assert event.raw == v017
    odd = audit({"request": "nonsense", "extra": [1]})
    assert odd is not None and odd.status == 0 and odd.path == ""
    assert audit(["not", "an", "object"]) is None
    error = api.trace_error().event({"message": "2022/01/06 http: boom"})
    assert error == ErrorEvent("2022/01/06 http: boom")
