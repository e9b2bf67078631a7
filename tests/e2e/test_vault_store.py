"""The Vault store against a real OpenBao: the store contract, KES's layout, races, faults.

The generic contract (tests/kes_server/keystore/test_stores.py) runs unchanged
on KV v1 and v2, each test under a fresh prefix. Then what only Vault has:
KES v0.17's locations read raw over Vault's API, namespaces, creates racing
from independent stores (as separate kes-servers would), Vault policies
without ``update``, a sealed and an unreachable Vault, short-lived tokens and
TLS. Server-level behaviour (KES-written keys, exit lines, /v1/status) is in
test_vault_server.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest

from kes_server.core.config import VaultAppRoleConfig, VaultStoreConfig, VaultTLSConfig
from kes_server.keystore.base import Namespace, Store, StoreError, StoreUnreachable
from kes_server.keystore.vault import VaultStore
from kes_server.keystore.vault.protocol import Answer, Request, VaultSealed
from tests.kes_server.keystore import test_stores as contract
from tests.support.relay import Relay, relay
from tests.support.server import free_port
from tests.support.vault import OpenBao, Role, openbao

pytestmark = [pytest.mark.e2e, pytest.mark.vault]

Version = Literal["v1", "v2"]
ENGINES: dict[str, str] = {"v1": "kv", "v2": "kv2"}
#: The Vault policy of KES's own guide: no 'update', since KES never overwrites a key.
KES_GUIDE_POLICY = 'path "kv/*" { capabilities = ["create", "read", "delete", "list"] }'


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def config(
    bao: OpenBao, version: Version = "v1", *, role: Role | None = None, **fields: Any
) -> VaultStoreConfig:
    role = role or bao.role
    cfg = VaultStoreConfig(
        endpoint=bao.addr,
        engine=ENGINES[version],
        version=version,
        prefix=_prefix(),
        approle=VaultAppRoleConfig(id=role.id, secret=role.secret),
        ping_s=1.0,
    )
    return replace(cfg, **fields)


class Opened:
    """Stores opened by a test, with the lines they wrote to the error log."""

    def __init__(self) -> None:
        self.stores: list[VaultStore] = []
        self.log: list[str] = []

    async def __call__(self, cfg: VaultStoreConfig) -> VaultStore:
        store = VaultStore.from_config(cfg)
        self.stores.append(store)
        await store.start(self.log.append)
        return store


@pytest.fixture(name="opened")
async def _opened() -> AsyncIterator[Opened]:
    opened = Opened()
    yield opened
    for store in opened.stores:
        await store.close()


@pytest.fixture(name="store", params=["v1", "v2"])
async def _store(request: pytest.FixtureRequest, bao: OpenBao, opened: Opened) -> Store:
    """What the contract tests get: a store under a prefix nobody else uses."""
    return await opened(config(bao, request.param))


# The generic contract, the same functions the in-memory, fs and etcd stores pass.
test_contract_create_is_create_if_absent = contract.test_create_is_create_if_absent
test_contract_get_missing_and_delete = contract.test_get_missing_and_delete
test_contract_namespaces_are_independent = contract.test_namespaces_are_independent
test_contract_status_available = contract.test_status_available
test_contract_concurrent_creates_have_one_winner = contract.test_concurrent_creates_have_one_winner


def _raw_path(version: Version, *parts: str) -> str:
    engine = ENGINES[version]
    return "/".join([engine, "data", *parts] if version == "v2" else [engine, *parts])


def _list_path(version: Version, folder: str) -> str:
    engine = ENGINES[version]
    return f"{engine}/metadata/{folder}" if version == "v2" else f"{engine}/{folder}"


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_entries_sit_where_kes_v017_keeps_them(
    bao: OpenBao, opened: Opened, version: Version
) -> None:
    cfg = config(bao, version)
    store = await opened(cfg)
    assert await store.create(Namespace.KEYS, "my-key", b'{"bytes":"kes"}')
    await store.put(Namespace.POLICIES, "my-policy", b'{"allow":[]}')
    await store.put(Namespace.IDENTITIES, "ab12", b'{"policy":"my-policy"}')

    status, doc = bao.request("GET", _raw_path(version, cfg.prefix, "my-key"))
    data = doc["data"]["data"] if version == "v2" else doc["data"]
    assert (status, data) == (200, {"my-key": '{"bytes":"kes"}'})
    # A LIST of the key folder shows keys only: pykes's entries sit beside it.
    status, doc = bao.request("GET", _list_path(version, cfg.prefix) + "?list=true")
    assert doc["data"]["keys"] == ["my-key"]
    status, doc = bao.request("GET", _list_path(version, cfg.prefix + ".pykes") + "?list=true")
    assert sorted(doc["data"]["keys"]) == ["identities/", "policies/"]
    status, doc = bao.request(
        "GET", _raw_path(version, cfg.prefix + ".pykes", "policies", "my-policy")
    )
    assert status == 200
    # A key folder KES filled is read as it is.
    seeded = {"data": {"from-kes": "v"}} if version == "v2" else {"from-kes": "v"}
    bao.call("PUT", _raw_path(version, cfg.prefix, "from-kes"), seeded)
    assert await store.get(Namespace.KEYS, "from-kes") == b"v"
    assert sorted(await store.list(Namespace.KEYS)) == ["from-kes", "my-key"]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_an_empty_prefix_keeps_keys_at_the_engine_root(
    bao: OpenBao, opened: Opened, version: Version
) -> None:
    """Another engine, so the root is ours alone; pykes's folder is skipped as a folder."""
    engine = f"kv-{uuid.uuid4().hex[:8]}"
    bao.enable_kv(engine, int(version[1]))
    policy = (
        f'path "{engine}/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}'
    )
    role = bao.new_role(f"root-{engine}", policy)
    store = await opened(config(bao, version, role=role, engine=engine, prefix=""))
    await store.create(Namespace.KEYS, "k", b"v")
    await store.put(Namespace.POLICIES, "p", b"{}")
    listing = f"{engine}/metadata" if version == "v2" else engine
    assert sorted(bao.call("GET", f"{listing}?list=true")["keys"]) == [".pykes/", "k"]
    assert await store.list(Namespace.KEYS) == ["k"]
    assert await store.list(Namespace.POLICIES) == ["p"]
    assert await store.get(Namespace.KEYS, "k") == b"v"


async def test_a_namespace_holds_its_own_keys(bao: OpenBao, opened: Opened) -> None:
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    bao.create_namespace(namespace)
    bao.enable_kv("kv", 1, namespace=namespace)
    bao.enable_approle(namespace=namespace)
    role = bao.new_role("kes", namespace=namespace)
    cfg = config(bao, role=role, namespace=namespace)
    store = await opened(cfg)
    assert await store.create(Namespace.KEYS, "k", b"in-namespace")
    assert bao.request("GET", f"kv/{cfg.prefix}/k", namespace=namespace)[0] == 200
    assert bao.request("GET", f"kv/{cfg.prefix}/k")[0] == 404
    # Health is asked outside the namespace (Vault refuses it inside one).
    assert (await store.status()).state == "available"


async def test_prefixes_separate_deployments(bao: OpenBao, opened: Opened) -> None:
    a, b = await opened(config(bao)), await opened(config(bao))
    assert await a.create(Namespace.KEYS, "same", b"a")
    assert await b.create(Namespace.KEYS, "same", b"b")
    assert await a.list(Namespace.KEYS) == ["same"]
    assert await b.get(Namespace.KEYS, "same") == b"b"


async def _race(stores: list[VaultStore]) -> tuple[list[bool], list[bytes]]:
    values = [f"value-{s}-{n}".encode() for s in range(len(stores)) for n in range(10)]
    results = await asyncio.gather(
        *(stores[i // 10].create(Namespace.KEYS, "race", v) for i, v in enumerate(values))
    )
    return list(results), values


async def test_v2_creates_racing_from_two_servers_have_one_winner(
    bao: OpenBao, opened: Opened
) -> None:
    cfg = config(bao, "v2")
    stores = [await opened(cfg), await opened(cfg)]
    results, values = await _race(stores)
    assert results.count(True) == 1
    winner = values[results.index(True)]
    for store in stores:
        assert await store.get(Namespace.KEYS, "race") == winner


async def test_v1_creates_racing_from_two_servers_agree_on_the_stored_key(
    bao: OpenBao, opened: Opened
) -> None:
    """KV v1 has no check-and-set: the guarantee is weaker (see docs/configuration.md).

    At least one create wins, every other one reports "exists", and the value
    left in Vault belongs to a winner: a loser never believes it holds the key.
    """
    cfg = config(bao, "v1")
    stores = [await opened(cfg), await opened(cfg)]
    results, values = await _race(stores)
    stored = await stores[0].get(Namespace.KEYS, "race")
    assert results.count(True) >= 1
    assert stored in [v for v, won in zip(values, results, strict=True) if won]


async def test_v1_a_refused_overwrite_counts_as_exists(bao: OpenBao, opened: Opened) -> None:
    """With a Vault policy without ``update`` (as KES's guide has), Vault itself refuses to
    overwrite: a rival that wrote between our read and our write keeps its key."""
    role = bao.new_role(f"create-only-{uuid.uuid4().hex[:6]}", KES_GUIDE_POLICY)
    cfg = config(bao, role=role)
    store = await opened(cfg)
    real_exists = store._exists
    calls = 0

    async def rival_writes_after_our_read(ns: Namespace, name: str) -> bool:
        nonlocal calls
        calls += 1
        found = await real_exists(ns, name)
        if calls == 1:
            bao.call("PUT", f"kv/{cfg.prefix}/{name}", {name: "rival"})
        return found

    store._exists = rival_writes_after_our_read  # type: ignore[method-assign]
    assert not await store.create(Namespace.KEYS, "contested", b"ours")
    assert bao.call("GET", f"kv/{cfg.prefix}/contested") == {"contested": "rival"}
    # Replacing a policy works without 'update' too (delete, then create), and none of
    # this took a new login.
    await store.put(Namespace.POLICIES, "p", b"one")
    await store.put(Namespace.POLICIES, "p", b"two")
    assert await store.get(Namespace.POLICIES, "p") == b"two"
    assert store.session.logins == 1


async def test_v1_a_lost_race_is_detected_by_reading_back(bao: OpenBao, opened: Opened) -> None:
    """With ``update`` allowed, a rival's write after ours wins; the read-back notices."""
    cfg = config(bao)
    store = await opened(cfg)
    real_send = store._send

    async def rival_overwrites_after_our_write(request: Request, relogin: bool = True) -> Answer:
        answer = await real_send(request, relogin=relogin)
        if request.method == "PUT":
            bao.call("PUT", f"kv/{cfg.prefix}/contested", {"contested": "rival"})
        return answer

    store._send = rival_overwrites_after_our_write  # type: ignore[method-assign]
    assert not await store.create(Namespace.KEYS, "contested", b"ours")
    assert await store.get(Namespace.KEYS, "contested") == b"rival"


async def test_v2_a_soft_deleted_entry_is_named_in_the_error(bao: OpenBao, opened: Opened) -> None:
    cfg = config(bao, "v2")
    store = await opened(cfg)
    assert await store.create(Namespace.KEYS, "k", b"v")
    bao.call("DELETE", f"kv2/data/{cfg.prefix}/k")  # `vault kv delete`: versions stay
    assert await store.get(Namespace.KEYS, "k") is None
    with pytest.raises(StoreError, match="only deleted versions of this entry exist"):
        await store.create(Namespace.KEYS, "k", b"again")
    assert await store.delete(Namespace.KEYS, "k") is False  # removes the versions
    assert await store.create(Namespace.KEYS, "k", b"again")


async def test_a_revoked_token_is_replaced_by_a_new_login(bao: OpenBao, opened: Opened) -> None:
    cfg = config(bao)
    # No rate limit here: the start-up login is only milliseconds old.
    cfg = replace(cfg, approle=replace(cfg.approle, retry_s=0.0))
    store = await opened(cfg)
    bao.call("POST", "auth/token/revoke", {"token": store.session.token})
    assert await store.create(Namespace.KEYS, "after-revoke", b"v")
    assert store.session.logins == 2


async def test_tokens_outliving_their_max_ttl(bao: OpenBao, opened: Opened) -> None:
    """A role with a 3 s TTL and a 6 s max TTL: renewals, then a new login before it dies."""
    role = bao.new_role(f"short-{uuid.uuid4().hex[:6]}", ttl="3s", max_ttl="6s")
    store = await opened(config(bao, role=role))
    first = store.session.token

    def alive(token: str) -> bool:
        return bao.request("POST", "auth/token/lookup", {"token": token})[0] == 200

    n = 0
    while alive(first):  # keep working while the first token lives and dies
        n += 1
        assert await store.create(Namespace.KEYS, f"k{n}", b"v")
        await asyncio.sleep(0.2)
    assert await store.create(Namespace.KEYS, "after-expiry", b"v")
    assert await store.get(Namespace.KEYS, "k1") == b"v"
    # Renewed at half the TTL until the max TTL capped it, then a new login in time.
    assert store.session.renewals >= 2
    assert store.session.logins >= 2 and store.session.token != first
    assert not any("failed" in line for line in opened.log), opened.log


async def test_a_failed_renewal_logs_in_again(bao: OpenBao, opened: Opened) -> None:
    role = bao.new_role(f"renew-{uuid.uuid4().hex[:6]}", ttl="2s", max_ttl="1h")
    store = await opened(config(bao, role=role))
    bao.call("POST", "auth/token/revoke", {"token": store.session.token})
    await _until(lambda: store.session.logins == 2)  # no request needed: the renewal failed
    assert any("token renewal failed" in line for line in opened.log)
    assert await store.create(Namespace.KEYS, "after", b"v")


async def test_failed_logins_are_retried_every_retry_period(bao: OpenBao, opened: Opened) -> None:
    """The role disappears (its token with it) and comes back with the same IDs."""
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    role = bao.new_role(name, ttl="2s", max_ttl="1h")
    cfg = config(bao, role=role)
    store = await opened(replace(cfg, approle=replace(cfg.approle, retry_s=0.2)))
    bao.call("DELETE", f"auth/approle/role/{name}")
    bao.call("POST", "auth/token/revoke", {"token": store.session.token})
    await _until(lambda: sum("login (auth/approle) failed" in line for line in opened.log) >= 3)
    assert store.session.logins == 1
    bao.call("POST", f"auth/approle/role/{name}", {"token_policies": name, "token_ttl": "2s"})
    bao.call("POST", f"auth/approle/role/{name}/role-id", {"role_id": role.id})
    bao.call("POST", f"auth/approle/role/{name}/custom-secret-id", {"secret_id": role.secret})
    await _until(lambda: store.session.logins == 2)
    assert await store.create(Namespace.KEYS, "after", b"v")
    assert not any(role.secret in line for line in opened.log)


async def test_unreachable_at_start_is_one_line() -> None:
    cfg = VaultStoreConfig(
        endpoint=f"http://127.0.0.1:{free_port()}",
        approle=VaultAppRoleConfig(id="r", secret="not-the-real-secret"),
    )
    store = VaultStore.from_config(cfg)
    try:
        with pytest.raises(StoreError) as err:
            await store.start()
    finally:
        await store.close()
    assert str(err.value) == (
        f"keystore.vault: AppRole login (auth/approle) at {cfg.endpoint} failed: "
        f"vault: no connection to {cfg.endpoint}: connection refused"
    )


async def test_a_bad_secret_id_is_one_line_without_the_secret(bao: OpenBao) -> None:
    cfg = config(bao, role=Role("kes", bao.role.id, "wrong-secret-id"))
    store = VaultStore.from_config(cfg)
    try:
        with pytest.raises(StoreError) as err:
            await store.start()
    finally:
        await store.close()
    assert str(err.value).endswith("POST auth/approle/login: invalid role or secret ID")
    assert "wrong-secret-id" not in str(err.value)


# ---------------------------------------------------------------------- faults


@pytest.fixture(name="own_bao", scope="module")
def _own_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A Vault to seal: the shared one must stay usable for everybody else."""
    with openbao(tmp_path_factory.mktemp("openbao-faults")) as server:
        yield server


async def _until(condition: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_sealed_vault_fails_fast_and_recovers_when_unsealed(
    own_bao: OpenBao, opened: Opened
) -> None:
    store = await opened(config(own_bao))
    assert await store.create(Namespace.KEYS, "before", b"v")
    own_bao.seal()
    try:
        with pytest.raises(VaultSealed, match="Vault is sealed"):
            await store.get(Namespace.KEYS, "before")
        # Known to be sealed now: later calls do not reach Vault at all.
        with pytest.raises(VaultSealed, match="no request sent"):
            await store.create(Namespace.KEYS, "during", b"v")
        assert (await store.status()).state == "reachable"
        assert any("Vault is sealed" in line for line in opened.log)
    finally:
        own_bao.unseal()
    await _until(lambda: store.health.state == "available")
    assert await store.get(Namespace.KEYS, "before") == b"v"
    assert await store.create(Namespace.KEYS, "after", b"v")
    assert (await store.status()).state == "available"


async def test_an_unreachable_vault_fails_fast_and_recovers(
    own_bao: OpenBao, opened: Opened
) -> None:
    with relay("127.0.0.1", int(own_bao.addr.rsplit(":", 1)[1])) as cable:
        store = await opened(replace(config(own_bao), endpoint=cable.url))
        assert await store.create(Namespace.KEYS, "before", b"v")
        cable.cut()
        with pytest.raises(StoreUnreachable, match=f"no connection to {cable.url}"):
            await store.get(Namespace.KEYS, "before")
        await _until(lambda: store.health.state == "unreachable")
        with pytest.raises(StoreUnreachable, match="no request sent"):
            await store.list(Namespace.KEYS)
        assert (await store.status()).state == "unreachable"
        cable.restore()
        await _until(lambda: store.health.state == "available")
        assert await store.get(Namespace.KEYS, "before") == b"v"
        assert _kept_quiet(opened, cable)


def _kept_quiet(opened: Opened, cable: Relay) -> bool:
    """The outage was logged once when it began and once when it ended."""
    down = [line for line in opened.log if "key operations fail" in line]
    up = [line for line in opened.log if "available again" in line]
    return len(down) == 1 and len(up) == 1 and cable.url in down[0]


# ---------------------------------------------------------------------- TLS


@pytest.fixture(name="tls_bao", scope="module")
def _tls_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    with openbao(tmp_path_factory.mktemp("openbao-tls"), tls=True) as server:
        yield server


def _ca_dir(tmp_path: Path, ca_file: Path) -> Path:
    directory = tmp_path / "cas"
    directory.mkdir()
    (directory / "vault-ca.pem").write_bytes(ca_file.read_bytes())
    (directory / "other.crt").write_bytes(ca_file.read_bytes())
    return directory


@pytest.mark.parametrize("form", ["file", "directory"])
async def test_tls_ca_file_or_directory(
    tls_bao: OpenBao, opened: Opened, tmp_path: Path, form: str
) -> None:
    assert tls_bao.ca_file is not None
    ca = str(tls_bao.ca_file if form == "file" else _ca_dir(tmp_path, tls_bao.ca_file))
    store = await opened(config(tls_bao, tls=VaultTLSConfig(ca=ca)))
    assert await store.create(Namespace.KEYS, "over-tls", b"v")
    assert (await store.status()).state == "available"


async def test_tls_without_the_ca_is_refused(tls_bao: OpenBao) -> None:
    store = VaultStore.from_config(config(tls_bao))
    try:
        with pytest.raises(StoreError, match="no connection to .*: TLS error: unable to get"):
            await store.start()
    finally:
        await store.close()


async def test_tls_client_certificate(tls_bao: OpenBao, opened: Opened, tmp_path: Path) -> None:
    """A listener that requires a client certificate: ``tls.cert``/``tls.key`` are sent."""
    assert tls_bao.client_ca is not None
    leaf = tls_bao.client_ca.issue_cert("kes-server")
    cert, key = tmp_path / "client.cert", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    server_ca = tmp_path / "server-ca.pem"
    tls_bao.client_ca.cert_pem.write_to_path(str(server_ca))  # the listener's CA is the same
    tls = VaultTLSConfig(ca=str(server_ca), cert=str(cert), key=str(key))
    store = await opened(config(tls_bao, endpoint=tls_bao.mtls_addr, tls=tls))
    assert await store.create(Namespace.KEYS, "with-client-cert", b"v")
    anonymous = VaultStore.from_config(
        config(tls_bao, endpoint=tls_bao.mtls_addr, tls=VaultTLSConfig(ca=str(server_ca)))
    )
    try:
        with pytest.raises(StoreError, match="no connection to"):
            await anonymous.start()
    finally:
        await anonymous.close()


def test_unusable_tls_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "cas"
    bad.mkdir()
    (bad / "notes.txt").write_text("not a certificate")
    base = VaultStoreConfig(
        endpoint="https://127.0.0.1:8200", approle=VaultAppRoleConfig(id="r", secret="s")
    )
    cases = [
        (VaultTLSConfig(ca=str(tmp_path / "missing.pem")), "tls.ca: cannot load"),
        (VaultTLSConfig(ca=str(bad)), "holds no PEM certificate"),
        (VaultTLSConfig(cert=str(tmp_path / "c")), "must be set together"),
    ]
    for tls, fragment in cases:
        with pytest.raises(ValueError, match=fragment):
            VaultStore.from_config(replace(base, tls=tls))
