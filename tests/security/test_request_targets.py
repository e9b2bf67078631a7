"""The audit log names the path that ran, whatever form the request target took (issue 14, item 7).

The old server executed an absolute-form target (``DELETE
https://host/v1/key/delete/k``) and a ``//v1/...`` target but audited the raw
text, so a log search for ``/v1/key/delete/k`` missed the deletion. Now:

* absolute-form (HTTP/1.1) and percent-encoded targets run as their decoded
  path, and that canonical path is what the policy sees and what is audited;
* a path that is not canonical (``//v1/...``, ``/v1//...``) runs nothing: as
  Go's ServeMux does for KES, it is a 301 to the clean path, audited as the
  301 it is, on HTTP/1.1 and as an h2 ``:path``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.h2client import H2Client
from tests.support.rawhttp import raw_request
from tests.support.server import RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e


@pytest.fixture(name="server", scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("targets"), store="mem") as server:
        yield server


@pytest.fixture(name="trace")
def _trace(server: RunningServer) -> Iterator[LiveTrace]:
    trace = LiveTrace.of(server)
    try:
        yield trace
    finally:
        trace.close()


def _new_key(server: RunningServer) -> str:
    name = f"target-{secrets.token_hex(4)}"
    with server.client() as root:
        assert root.post(f"/v1/key/create/{name}").status_code == 200
    return name


def _exists(server: RunningServer, name: str) -> bool:
    with server.client() as root:
        listed = root.get(f"/v1/key/list/{name}")
    assert listed.status_code == 200
    return any(json.loads(line)["name"] == name for line in listed.text.splitlines() if line)


def _event(trace: LiveTrace, marker: str) -> dict[str, Any]:
    """The audit event of the one DELETE whose path contains ``marker`` (a key name)."""
    return trace.next_event(
        lambda e: e["request"]["method"] == "DELETE" and marker in e["request"]["path"], 5.0
    )


@pytest.mark.parametrize(
    "target",
    [
        "https://localhost/v1/key/delete/{k}",
        "https://elsewhere.example:9/v1/key/delete/{k}?x=y",
        "/v1/key/%64elete/{k}",
    ],
    ids=["absolute-form", "absolute-form-other-host", "percent-encoded"],
)
def test_http1_target_runs_and_is_audited_as_its_canonical_path(
    server: RunningServer, trace: LiveTrace, target: str
) -> None:
    name = _new_key(server)
    raw = target.format(k=name).encode()
    answer = raw_request(server.port, server.ssl_context(), b"DELETE", raw)
    assert answer.status == 200
    assert not _exists(server, name)
    event = _event(trace, name)
    assert event["request"]["path"] == f"/v1/key/delete/{name}"
    assert event["response"]["code"] == 200


@pytest.mark.parametrize(
    "target",
    ["//v1/key/delete/{k}", "https://localhost//v1/key/delete/{k}", "/v1//key/delete/{k}"],
    ids=["double-slash", "absolute-form-double-slash", "inner-double-slash"],
)
def test_http1_non_canonical_target_runs_nothing(
    server: RunningServer, trace: LiveTrace, target: str
) -> None:
    name = _new_key(server)
    raw = target.format(k=name).encode()
    answer = raw_request(server.port, server.ssl_context(), b"DELETE", raw)
    assert answer.status == 301
    assert answer.headers["location"] == f"/v1/key/delete/{name}"
    assert _exists(server, name), "the key was deleted"
    event = _event(trace, name)
    assert event["response"]["code"] == 301


@pytest.mark.parametrize(
    ("path", "status", "deleted"),
    [
        ("//v1/key/delete/{k}", 301, False),
        ("/v1//key/delete/{k}", 301, False),
        ("/v1/key/%64elete/{k}", 200, True),
    ],
    ids=["double-slash", "inner-double-slash", "percent-encoded"],
)
def test_h2_path_runs_as_audited(
    server: RunningServer, trace: LiveTrace, path: str, status: int, deleted: bool
) -> None:
    name = _new_key(server)
    with H2Client.open(server.port, server.ssl_context()) as h2:
        answer = h2.response(h2.request(b"DELETE", path.format(k=name).encode()))
    assert answer.status == status
    assert _exists(server, name) is not deleted
    event = _event(trace, name)
    assert event["response"]["code"] == status
    if deleted:
        assert event["request"]["path"] == f"/v1/key/delete/{name}"


@pytest.mark.parametrize(
    "target",
    ["https://localhost/v1/key/delete/{k}", "/v1/key/%64elete/{k}"],
    ids=["absolute-form", "percent-encoded"],
)
def test_a_deny_rule_sees_the_canonical_path(
    server: RunningServer, tmp_path: Path, target: str
) -> None:
    """The policy is evaluated on the path that would run, not on the raw target."""
    name = _new_key(server)
    policy = f"no-delete-{secrets.token_hex(3)}"
    caller = server.new_client(policy)
    with server.client() as root:
        rules = {"allow": ["/v1/key/*/*"], "deny": ["/v1/key/delete/*"]}
        assert root.post(f"/v1/policy/write/{policy}", json=rules).status_code == 200
        assert root.post(f"/v1/identity/assign/{policy}/{caller.identity}").status_code == 200
    raw = target.format(k=name).encode()
    answer = raw_request(server.port, server.ssl_context(caller), b"DELETE", raw)
    assert answer.status == 403
    assert _exists(server, name)
