"""Policies and identities over the HTTP API, with root, an app and an operator identity."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kes_server.api.routes import ROUTER
from tests.support.paths import load_vectors
from tests.support.server import ClientIdentity, RunningServer, start_server

pytestmark = pytest.mark.e2e

SEED_CASES = [c for c in load_vectors("policy_match.json")["cases"] if c["id"].startswith("seed")]


def message(resp: httpx.Response) -> str:
    return str(resp.json()["message"])


def method_of(path: str) -> str | None:
    """The method of the route ``path`` belongs to, or None for a path with no route."""
    found = ROUTER.match("GET", path)
    if isinstance(found, tuple):
        return "GET"
    return found[0] if found else None


def call(client: httpx.Client, path: str) -> httpx.Response:
    """Call a path with the method its route expects (GET for unknown paths)."""
    method = method_of(path) or "GET"
    body: dict[str, Any] | None = {} if method == "POST" else None
    return client.request(method, path, json=body)


@pytest.fixture(name="people")
def _people(kes_server: RunningServer) -> dict[str, ClientIdentity]:
    return {"app": kes_server.new_client("app"), "ops": kes_server.new_client("ops")}


@pytest.fixture(name="root")
def _root(kes_server: RunningServer) -> Iterator[httpx.Client]:
    with kes_server.client() as client:
        yield client


def test_seed_tables_exist() -> None:
    assert len(SEED_CASES) >= 12


@pytest.mark.parametrize("case", SEED_CASES, ids=lambda c: c["id"])
def test_seed_table_rows_through_http(
    kes_server: RunningServer, root: httpx.Client, case: dict[str, Any]
) -> None:
    app = kes_server.new_client("seed")
    policy = f"seed-{secrets.token_hex(4)}"
    body = {"allow": case["allow"], "deny": case["deny"]}
    assert root.post(f"/v1/policy/write/{policy}", json=body).status_code == 200
    assert root.post(f"/v1/identity/assign/{policy}/{app.identity}").status_code == 200
    with kes_server.client(app) as client:
        resp = call(client, case["path"])
    if case["expect"] == "allow":
        assert resp.status_code != 403, resp.text
    elif method_of(case["path"]) is None:
        assert resp.status_code == 404  # /v0/... is not even an API path
    else:
        assert resp.status_code == 403 and message(resp) == "prohibited by policy"


def test_policy_write_read_list_delete(root: httpx.Client, kes_server: RunningServer) -> None:
    name = f"pol-{secrets.token_hex(4)}"
    body = {"allow": ["/v1/key/*/my-key*", "/version"], "deny": ["/v1/key/delete/*"]}
    assert root.post(f"/v1/policy/write/{name}", json=body).status_code == 200
    assert root.get(f"/v1/policy/read/{name}").json() == body
    empty = f"{name}-empty"
    assert root.post(f"/v1/policy/write/{empty}", json={}).status_code == 200
    assert root.get(f"/v1/policy/read/{empty}").json() == {"allow": [], "deny": []}
    listed = root.get(f"/v1/policy/list/{name}*").json()
    assert sorted(listed) == sorted([name, empty])
    app = kes_server.new_client("bound")
    root.post(f"/v1/identity/assign/{name}/{app.identity}").raise_for_status()
    assert root.delete(f"/v1/policy/delete/{name}").status_code == 200
    assert root.delete(f"/v1/policy/delete/{name}").status_code == 200
    missing = root.get(f"/v1/policy/read/{name}")
    assert missing.status_code == 404 and message(missing) == "policy does not exist"
    identities = [json.loads(x)["identity"] for x in root.get("/v1/identity/list/*").text.split()]
    assert app.identity not in identities  # deleting a policy unassigns its identities


@pytest.mark.parametrize(
    "body",
    [
        {"allow": ["/v1/key/[a-"]},
        {"allow": ["/v1/key/x\\"]},
        {"allow": "not-a-list"},
        {"allow": [], "unknown": []},
        [],
    ],
)
def test_bad_policies_are_invalid_json(root: httpx.Client, body: object) -> None:
    resp = root.post("/v1/policy/write/bad", json=body)
    assert resp.status_code == 400 and message(resp) == "invalid json"


def test_assignment_rules(
    kes_server: RunningServer, root: httpx.Client, people: dict[str, ClientIdentity]
) -> None:
    ops_policy = f"ops-{secrets.token_hex(4)}"
    app_policy = f"app-{secrets.token_hex(4)}"
    root.post(
        f"/v1/policy/write/{ops_policy}",
        json={"allow": ["/v1/identity/assign/*/*", "/v1/policy/write/*", "/v1/identity/list/*"]},
    ).raise_for_status()
    root.post(
        f"/v1/policy/write/{app_policy}", json={"allow": ["/v1/key/create/*"]}
    ).raise_for_status()
    root.post(f"/v1/identity/assign/{ops_policy}/{people['ops'].identity}").raise_for_status()
    with kes_server.client(people["ops"]) as ops:
        self_assign = ops.post(f"/v1/identity/assign/{app_policy}/{people['ops'].identity}")
        assert self_assign.status_code == 403
        assert message(self_assign) == "identity cannot assign policy to itself"
        as_root = ops.post(f"/v1/identity/assign/{app_policy}/{kes_server.root_identity}")
        assert (as_root.status_code, message(as_root)) == (400, "identity is root")
        missing = ops.post(
            f"/v1/identity/assign/nope-{secrets.token_hex(3)}/{people['app'].identity}"
        )
        assert missing.status_code == 404 and message(missing) == "policy does not exist"
        # The operator may assign the app; the change applies to the app's next request.
        with kes_server.client(people["app"]) as app:
            assert app.post(f"/v1/key/create/k-{secrets.token_hex(4)}").status_code == 403
            assert (
                ops.post(f"/v1/identity/assign/{app_policy}/{people['app'].identity}").status_code
                == 200
            )
            assert app.post(f"/v1/key/create/k-{secrets.token_hex(4)}").status_code == 200
            root.post(f"/v1/policy/write/{app_policy}", json={"allow": []}).raise_for_status()
            assert app.post(f"/v1/key/create/k-{secrets.token_hex(4)}").status_code == 403
    forget_root = root.delete(f"/v1/identity/forget/{kes_server.root_identity}")
    assert (forget_root.status_code, message(forget_root)) == (400, "identity is root")
    assert root.delete(f"/v1/identity/forget/{people['app'].identity}").status_code == 200
    assert root.delete(f"/v1/identity/delete/{people['app'].identity}").status_code == 200


def test_identity_list_and_self_describe(
    kes_server: RunningServer, root: httpx.Client, people: dict[str, ClientIdentity]
) -> None:
    policy = f"desc-{secrets.token_hex(4)}"
    body = {"allow": ["/v1/identity/self/describe"], "deny": []}
    root.post(f"/v1/policy/write/{policy}", json=body).raise_for_status()
    root.post(f"/v1/identity/assign/{policy}/{people['app'].identity}").raise_for_status()
    lines = [
        json.loads(x)
        for x in root.get(f"/v1/identity/list/{people['app'].identity[:8]}*").text.split()
    ]
    assert lines and lines[0]["identity"] == people["app"].identity and lines[0]["policy"] == policy
    with kes_server.client(people["app"]) as app:
        me = app.get("/v1/identity/self/describe").json()
    assert me["identity"] == people["app"].identity and me["admin"] is False
    assert me["policy_name"] == policy and me["policy"] == body
    admin = root.get("/v1/identity/self/describe").json()
    assert admin["admin"] is True and admin["identity"] == kes_server.root_identity
    # Root is never listed: it has no policy.
    everyone = [json.loads(x)["identity"] for x in root.get("/v1/identity/list/*").text.split()]
    assert kes_server.root_identity not in everyone


def test_disabled_root_and_persistence(tmp_path: Path) -> None:
    """Root '_' matches nobody; policies and bindings made via the API survive restarts."""
    with start_server(tmp_path) as server:
        app = server.new_client("app")
        policy = "persisted"
        with server.client() as root:
            root.post(
                f"/v1/policy/write/{policy}", json={"allow": ["/v1/key/create/*"]}
            ).raise_for_status()
            root.post(f"/v1/identity/assign/{policy}/{app.identity}").raise_for_status()
        server.args += ["--root", "_"]
        server.restart()
        with server.client() as former_root:
            resp = former_root.post("/v1/key/create/anything")
            assert resp.status_code == 403 and message(resp) == "prohibited by policy"
        with server.client(app) as client:
            assert client.post("/v1/key/create/persisted-key").status_code == 200
        assert "_  [ disabled ]" in server.stdout_path.read_text()
