"""The SDK, sync and async, against a real kes-server over mutual TLS."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kes_client import (
    APIError,
    AsyncClient,
    AuditEvent,
    Client,
    DecryptionFailed,
    InvalidArgument,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    Policy,
    PolicyNotFound,
    TLSError,
)
from tests.kes_client.conftest import unique
from tests.support.server import ClientIdentity, RunningServer

pytestmark = pytest.mark.e2e


def client_for(server: RunningServer, who: ClientIdentity) -> Client:
    return Client(server.url, cert=who.cert, key=who.key, ca=server.ca_file, timeout=10.0)


@pytest.fixture(name="async_root")
async def _async_root(kes_server: RunningServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        kes_server.url,
        cert=kes_server.root_cert,
        key=kes_server.root_key,
        ca=kes_server.ca_file,
        timeout=10.0,
    ) as client:
        yield client


@pytest.fixture(name="app")
def _app(kes_server: RunningServer) -> ClientIdentity:
    """A fresh, policy-less identity."""
    return kes_server.new_client("app")


# --------------------------------------------------------------------- server


def test_version_status_metrics(root_client: Client) -> None:
    assert root_client.version().startswith("v")
    status = root_client.status()
    assert status.version == root_client.version()
    assert status.kms_state == "available"
    assert status.uptime_ns >= 0
    assert "kes_http_request_success" in root_client.metrics()


def test_untrusted_server_certificate(kes_server: RunningServer) -> None:
    with Client(kes_server.url, cert=kes_server.root_cert, key=kes_server.root_key) as client:
        with pytest.raises(TLSError, match="server certificate not trusted"):
            client.version()
    with Client(
        kes_server.url, cert=kes_server.root_cert, key=kes_server.root_key, insecure=True
    ) as client:
        assert client.version().startswith("v")


def test_from_env_uses_legacy_names(
    kes_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KES_SERVER", kes_server.url)
    monkeypatch.delenv("KES_CLIENT_CERT", raising=False)
    monkeypatch.delenv("KES_CLIENT_KEY", raising=False)
    monkeypatch.setenv("KES_CLIENT_TLS_CERT_FILE", str(kes_server.root_cert))
    monkeypatch.setenv("KES_CLIENT_TLS_KEY_FILE", str(kes_server.root_key))
    with Client.from_env(ca=kes_server.ca_file) as client:
        assert client.server == kes_server.url
        assert client.status().kms_state == "available"


# ----------------------------------------------------------------------- keys


def test_key_lifecycle(root_client: Client) -> None:
    name = unique()
    root_client.create_key(name)
    with pytest.raises(KeyExists) as exists:
        root_client.create_key(name)
    assert exists.value.message in ("key does already exist", "key already exists")
    assert name in [info.name for info in root_client.list_keys(name[:-2] + "*")]
    assert [info.name for info in root_client.list_keys(name)] == [name]

    dek = root_client.generate_key(name, b"bucket/object")
    assert len(dek.plaintext) == 32
    assert root_client.decrypt(name, dek.ciphertext, b"bucket/object") == dek.plaintext
    with pytest.raises(DecryptionFailed):
        root_client.decrypt(name, dek.ciphertext, b"other context")

    ciphertext = root_client.encrypt(name, b"hello", b"ctx")
    assert root_client.decrypt(name, ciphertext, b"ctx") == b"hello"

    root_client.delete_key(name)
    root_client.delete_key(name)  # v0.17: deleting a missing key succeeds
    with pytest.raises(KeyNotFound, match="key does not exist"):
        root_client.generate_key(name)
    assert root_client.list_keys(name) == []


def test_import_key(root_client: Client) -> None:
    name = unique()
    material = secrets.token_bytes(32)
    root_client.import_key(name, material)
    ciphertext = root_client.encrypt(name, b"x")
    assert root_client.decrypt(name, ciphertext) == b"x"
    with pytest.raises(InvalidArgument, match="invalid key"):
        root_client.import_key(unique(), b"short")
    root_client.delete_key(name)


@pytest.mark.parametrize("name", ["no such key", "*", "%2F"])
def test_odd_names_arrive_as_one_name(root_client: Client, name: str) -> None:
    """Escaping keeps odd names one path segment: the server judges the name itself."""
    with pytest.raises(InvalidArgument, match="invalid argument: name contains invalid character"):
        root_client.generate_key(name)


@pytest.mark.parametrize("name", ["a/../b", ".."])
def test_names_with_dot_elements_are_refused_before_any_handler(
    root_client: Client, name: str
) -> None:
    """Like Go's mux in front of KES, the server redirects a path with ``..`` elements
    (301 to its clean form) instead of running anything; the SDK reports that status."""
    with pytest.raises(APIError) as caught:
        root_client.generate_key(name)
    assert caught.value.status == 301


# ------------------------------------------------------------ policies & ids


def test_policy_and_identity_lifecycle(
    kes_server: RunningServer, root_client: Client, app: ClientIdentity
) -> None:
    policy_name, key_name = unique("policy"), unique()
    rules = Policy(allow=(f"/v1/key/create/{key_name}", "/v1/identity/self/describe"))
    root_client.write_policy(policy_name, rules)
    assert root_client.read_policy(policy_name) == rules
    assert policy_name in [info.name for info in root_client.list_policies()]

    with client_for(kes_server, app) as app_client:
        with pytest.raises(NotAllowed):
            app_client.create_key(key_name)
        root_client.assign_identity(policy_name, app.identity)
        listed = {info.identity: info.policy for info in root_client.list_identities()}
        assert listed[app.identity] == policy_name
        assert kes_server.root_identity not in listed

        app_client.create_key(key_name)
        with pytest.raises(NotAllowed):
            app_client.create_key(unique())
        me = app_client.self_identity()
        assert me.identity == app.identity
        assert me.policy == policy_name and not me.admin

        root_client.forget_identity(app.identity)
        with pytest.raises(NotAllowed):
            app_client.create_key(key_name)

    root_client.delete_policy(policy_name)
    with pytest.raises(PolicyNotFound, match="policy does not exist"):
        root_client.read_policy(policy_name)
    assert policy_name not in [info.name for info in root_client.list_policies()]
    root_client.delete_key(key_name)


def test_identity_rules(kes_server: RunningServer, root_client: Client) -> None:
    policy_name = unique("policy")
    root_client.write_policy(policy_name, Policy(allow=("/v1/status",)))
    with pytest.raises(InvalidArgument, match="identity is root"):
        root_client.assign_identity(policy_name, kes_server.root_identity)
    with pytest.raises(InvalidArgument, match="identity is root"):
        root_client.forget_identity(kes_server.root_identity)
    with pytest.raises(PolicyNotFound):
        root_client.assign_identity(unique("policy"), "ab" * 32)
    assert root_client.self_identity().admin
    root_client.delete_policy(policy_name)


# --------------------------------------------------------------------- traces


def _next_matching(events: Iterator[AuditEvent], path: str) -> AuditEvent:
    for event in events:
        if event.path == path:
            return event
    raise AssertionError(f"trace ended before an event for {path}")


@pytest.mark.timeout(30)
def test_live_audit_trace(kes_server: RunningServer, root_client: Client) -> None:
    name = unique()
    with root_client.trace_audit() as events:
        # Another connection makes the request while this one is subscribed.
        with client_for(kes_server, kes_server.root) as other:
            with pytest.raises(KeyNotFound):
                other.generate_key(name)
        event = _next_matching(events, f"/v1/key/generate/{name}")
    assert event.status == 404
    assert event.identity == kes_server.root_identity and event.method == "POST"
    assert event.time and event.raw["response"]["code"] == 404


@pytest.mark.timeout(30)
def test_trace_needs_permission(kes_server: RunningServer, app: ClientIdentity) -> None:
    with client_for(kes_server, app) as app_client:
        with pytest.raises(NotAllowed):
            app_client.trace_audit().open()
        with pytest.raises(NotAllowed):
            with app_client.trace_error():
                pass


@pytest.mark.timeout(30)
def test_error_trace_opens_and_closes(root_client: Client) -> None:
    stream = root_client.trace_error()
    with stream:
        pass
    assert list(stream) == []  # closed streams end instead of blocking


# ---------------------------------------------------------------------- async


async def test_async_key_and_policy_calls(async_root: AsyncClient) -> None:
    name = unique()
    await async_root.create_key(name)
    with pytest.raises(KeyExists):
        await async_root.create_key(name)
    dek = await async_root.generate_key(name)
    assert await async_root.decrypt(name, dek.ciphertext) == dek.plaintext
    assert [info.name for info in await async_root.list_keys(name)] == [name]
    await async_root.delete_key(name)

    policy_name = unique("policy")
    await async_root.write_policy(policy_name, Policy(allow=("/v1/status",)))
    assert (await async_root.read_policy(policy_name)).allow == ("/v1/status",)
    assert policy_name in [info.name for info in await async_root.list_policies()]
    await async_root.delete_policy(policy_name)
    assert (await async_root.status()).kms_state == "available"
    assert "kes_" in await async_root.metrics()
    assert (await async_root.self_identity()).admin


@pytest.mark.timeout(30)
async def test_async_live_audit_trace(kes_server: RunningServer, async_root: AsyncClient) -> None:
    name = unique()
    path = f"/v1/key/create/{name}"
    async with async_root.trace_audit() as events:
        await async_root.create_key(name)

        async def first() -> AuditEvent:
            async for event in events:
                if event.path == path:
                    return event
            raise AssertionError("trace ended")

        event = await asyncio.wait_for(first(), timeout=10)
    assert event.status == 200 and event.identity == kes_server.root_identity
    await async_root.delete_key(name)


async def test_async_errors_and_tls(kes_server: RunningServer, tmp_path: Path) -> None:
    async with AsyncClient(
        kes_server.url, cert=kes_server.root_cert, key=kes_server.root_key
    ) as client:
        with pytest.raises(TLSError):
            await client.version()
    stranger = kes_server.new_client("async-stranger")
    async with AsyncClient(
        kes_server.url, cert=stranger.cert, key=stranger.key, ca=kes_server.ca_file
    ) as client:
        with pytest.raises(NotAllowed):
            await client.list_keys()
        with pytest.raises(NotAllowed):
            async with client.trace_audit():
                pass
