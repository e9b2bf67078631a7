"""Answers that must be exactly KES's (or one documented rule), on HTTP/1.1 and h2."""

from __future__ import annotations

import base64
import secrets

import httpx
import pytest

from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


@pytest.fixture(params=[False, True], ids=["http1", "h2"])
def root(kes_server: RunningServer, request: pytest.FixtureRequest) -> httpx.Client:
    client = kes_server.client(http2=request.param)
    request.addfinalizer(client.close)
    return client


def _assert_empty_200(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.content == b""
    # KES writes no body and so no Content-Type (Quart used to add text/html).
    assert "content-type" not in response.headers
    assert response.headers["content-length"] == "0"


def test_empty_answers_carry_no_content_type(root: httpx.Client, kes_server: RunningServer) -> None:
    name = f"exact-{secrets.token_hex(4)}"
    _assert_empty_200(root.post(f"/v1/key/create/{name}"))
    imported = base64.b64encode(bytes(32)).decode()
    _assert_empty_200(root.post(f"/v1/key/import/{name}-i", json={"bytes": imported}))
    _assert_empty_200(root.delete(f"/v1/key/delete/{name}"))
    _assert_empty_200(root.post(f"/v1/policy/write/{name}", json={"allow": ["/version"]}))
    app = kes_server.new_client("exact")
    _assert_empty_200(root.post(f"/v1/identity/assign/{name}/{app.identity}"))
    _assert_empty_200(root.delete(f"/v1/identity/forget/{app.identity}"))
    _assert_empty_200(root.delete(f"/v1/policy/delete/{name}"))


@pytest.mark.parametrize("kind", ["key", "policy", "identity"])
def test_an_empty_list_pattern_is_refused_by_every_list(root: httpx.Client, kind: str) -> None:
    """One rule for the three lists (v0.17 would list the keys matching "list")."""
    response = root.get(f"/v1/{kind}/list/")
    assert response.status_code == 400
    assert response.json() == {"message": "invalid argument: pattern is empty"}
    assert root.get(f"/v1/{kind}/list/*").status_code == 200
