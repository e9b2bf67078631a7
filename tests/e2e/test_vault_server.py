"""kes-server on Vault (OpenBao), end to end: a KES v0.17 deployment switching over.

Keys are seeded over Vault's own HTTP API exactly where and how KES v0.17
writes them, then a kes-server with the same ``keystore.vault`` section must
decrypt the upstream ciphertext vectors with them; keys the kes-server creates
must be readable in that layout. Then two servers racing, a sealed and an
unreachable Vault (without restarting the server), and start-up failures
that stop the server with one line. No log line may hold a key, token or
secret ID.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import io
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from kes_client import Client
from kes_server.core.crypto import unseal
from kes_server.core.keyfile import decode_key
from kes_tui.screens.status import status_table
from tests.support.cluster import start_cluster
from tests.support.paths import load_vectors
from tests.support.relay import relay
from tests.support.server import RunningServer, free_port, start_server
from tests.support.trace import LiveTrace
from tests.support.vault import OpenBao, Role, openbao

pytestmark = [pytest.mark.e2e, pytest.mark.vault]

VECTORS: list[dict[str, Any]] = load_vectors("ciphertexts.json")["vectors"]


def vault_section(bao: OpenBao, role: Role | None = None, **fields: Any) -> dict[str, Any]:
    role = role or bao.role
    section: dict[str, Any] = {
        "endpoint": bao.addr,
        "engine": "kv",
        "version": "v1",
        "prefix": f"kes-{uuid.uuid4().hex[:10]}",
        "approle": {"id": role.id, "secret": role.secret, "retry": "1s"},
        "status": {"ping": "2s"},
    }
    section.update(fields)
    return section


def vault_server(
    directory: Path, section: dict[str, Any], **config: Any
) -> contextlib.AbstractContextManager[RunningServer]:
    """``start_server`` with ``keystore.vault: section`` (and more config)."""
    return start_server(directory, store="none", config={"keystore": {"vault": section}, **config})


def kes_location(section: dict[str, Any], name: str) -> tuple[str, Callable[[str], dict[str, Any]]]:
    """Where KES v0.17 keeps ``name`` and the body it writes there (Vault API path, body)."""
    engine, prefix = section["engine"], section["prefix"]
    if section["version"] == "v2":
        return f"{engine}/data/{prefix}/{name}", lambda v: {"data": {name: v}}
    return f"{engine}/{prefix}/{name}", lambda v: {name: v}


def read_raw(bao: OpenBao, section: dict[str, Any], name: str) -> str:
    path, _ = kes_location(section, name)
    data = bao.call("GET", path, namespace=section.get("namespace", ""))
    fields = data["data"] if section["version"] == "v2" else data
    assert list(fields) == [name]  # one field, named after the key
    value = fields[name]
    assert isinstance(value, str)
    return value


def list_keys(client: httpx.Client) -> list[str]:
    """``/v1/key/list/*``: v0.17 answers one JSON object per line."""
    resp = client.get("/v1/key/list/*")
    assert resp.status_code == 200, resp.text
    return [json.loads(line)["name"] for line in resp.text.splitlines() if line.strip()]


def message(resp: httpx.Response) -> str:
    return str(resp.json()["message"])


def assert_no_secrets(server: RunningServer, bao: OpenBao, *extra: str) -> None:
    logs = server.logs()
    for secret in (bao.root_token, bao.role.secret, *extra):
        assert secret not in logs


@pytest.mark.parametrize("layout", ["v1", "v2-in-a-namespace"])
def test_keys_kes_v017_stored_decrypt_every_vector(
    bao: OpenBao, tmp_path: Path, layout: str
) -> None:
    if layout == "v1":
        section = vault_section(bao)
    else:
        namespace = f"tenant-{uuid.uuid4().hex[:8]}"
        bao.create_namespace(namespace)
        bao.enable_kv("secrets", 2, namespace=namespace)
        bao.enable_approle(namespace=namespace)
        role = bao.new_role(
            "kes",
            'path "secrets/*" { capabilities = ["create", "read", "update", "delete", "list"] }',
            namespace=namespace,
        )
        section = vault_section(bao, role, engine="secrets", version="v2", namespace=namespace)
    for i, vector in enumerate(VECTORS):
        path, secret = kes_location(section, f"vec-{i}")
        record = json.dumps({"bytes": vector["key_b64"]}, separators=(",", ":"))
        bao.call("PUT", path, secret(record), namespace=section.get("namespace", ""))
    with vault_server(tmp_path, section) as server, server.client() as root:
        assert sorted(list_keys(root)) == sorted(f"vec-{i}" for i in range(len(VECTORS)))
        for i, vector in enumerate(VECTORS):
            body = {
                "ciphertext": vector["ciphertext_b64"],
                "context": vector["context_b64"] or None,
            }
            resp = root.post(f"/v1/key/decrypt/vec-{i}", json=body)
            if vector["expect"] == "ok":
                assert resp.status_code == 200, (vector["id"], resp.text)
                assert resp.json()["plaintext"] == vector["plaintext_b64"]
            else:
                expected = vector.get("error_v0_17") or vector["error_v0_19_2_plus"]
                assert (resp.status_code, message(resp)) == (
                    expected["status"],
                    expected["message"],
                )
        assert_no_secrets(server, bao, *(v["key_b64"] for v in VECTORS))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_keys_the_server_creates_are_in_kes_v017s_layout(
    bao: OpenBao, tmp_path: Path, version: str
) -> None:
    section = vault_section(bao, engine="kv" if version == "v1" else "kv2", version=version)
    policy = {"allow": ["/v1/key/*/app-*"], "identities": ["a" * 64]}
    with vault_server(tmp_path, section, policy={"app": policy}) as server, server.client() as root:
        assert root.post("/v1/key/create/app-key").status_code == 200
        context = base64.b64encode(b"ctx").decode()
        generated = root.post("/v1/key/generate/app-key", json={"context": context}).json()
        record = read_raw(bao, section, "app-key")
        assert record.startswith('{"bytes":"') and record.endswith('"}')  # v0.17's exact form
        key = decode_key(record.encode())
        ciphertext = base64.b64decode(generated["ciphertext"])
        assert unseal(key, ciphertext, b"ctx") == base64.b64decode(generated["plaintext"])
        # The key folder holds keys only; the configured policy went beside it.
        engine, prefix = section["engine"], section["prefix"]
        folder = f"{engine}/metadata/{prefix}" if version == "v2" else f"{engine}/{prefix}"
        assert bao.call("GET", folder + "?list=true")["keys"] == ["app-key"]
        meta = folder + ".pykes/policies"
        assert bao.call("GET", meta + "?list=true")["keys"] == ["app"]
        assert_no_secrets(server, bao, key.hex(), base64.b64encode(key).decode())


def test_creates_racing_across_two_servers_have_one_winner(bao: OpenBao, tmp_path: Path) -> None:
    section = vault_section(bao, engine="kv2", version="v2")
    with (
        vault_server(tmp_path / "a", section) as a,
        vault_server(tmp_path / "b", section) as b,
        a.client() as ca,
        b.client() as cb,
    ):
        clients = [ca, cb] * 8
        with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(lambda c: c.post("/v1/key/create/contested"), clients))
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [400] * (len(clients) - 1)
        assert {message(r) for r in answers if r.status_code == 400} == {"key does already exist"}
        sealed = ca.post("/v1/key/encrypt/contested", json={"plaintext": "aGk="}).json()
        assert cb.post("/v1/key/decrypt/contested", json=sealed).json()["plaintext"] == "aGk="


# ---------------------------------------------------------------------- faults


@pytest.fixture(name="own_bao", scope="module")
def _own_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A Vault to seal: the session's one must stay usable."""
    with openbao(tmp_path_factory.mktemp("openbao-server-faults")) as server:
        yield server


def tui_status(server: RunningServer) -> str:
    """The server panel of kes-tui's status screen, as text."""
    with Client(server.url, cert=server.root_cert, key=server.root_key, ca=server.ca_file) as c:
        status = c.status()
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(status_table(status))
    return console.export_text()


def store_errors(client: httpx.Client) -> float:
    """``kes_keystore_errors``: every store failure, fast ones included, is counted."""
    for line in client.get("/v1/metrics").text.splitlines():
        if line.startswith("kes_keystore_errors "):
            return float(line.split()[1])
    raise AssertionError("no kes_keystore_errors metric")


def wait_for_state(client: httpx.Client, state: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/v1/status").json()["kms"].get("state") != state:
        assert time.monotonic() < deadline, f"the store did not become {state}"
        time.sleep(0.1)


def test_a_sealed_vault_fails_fast_and_comes_back_without_a_restart(
    own_bao: OpenBao, tmp_path: Path
) -> None:
    section = vault_section(own_bao)
    with vault_server(tmp_path, section) as server, server.client() as root:
        pid = server.process.pid if server.process else 0
        trace = LiveTrace.of(server, "/v1/log/error/trace")
        try:
            for name in ("hot", "cold"):
                assert root.post(f"/v1/key/create/{name}").status_code == 200
            sealed = root.post("/v1/key/encrypt/hot", json={"plaintext": "aGk="}).json()  # cached
            own_bao.seal()
            try:
                wait_for_state(root, "reachable")
                trace.next_event(lambda e: "Vault is sealed" in e["message"], 5.0)
                # The cached key still serves; everything that needs Vault fails at once.
                assert root.post("/v1/key/decrypt/hot", json=sealed).json()["plaintext"] == "aGk="
                began = time.monotonic()
                cold = root.post("/v1/key/encrypt/cold", json={"plaintext": "aGk="})
                created = root.post("/v1/key/create/during")
                assert time.monotonic() - began < 2.0  # no timeouts: Vault is not even asked
                assert (cold.status_code, message(cold)) == (
                    502,
                    "bad gateway: failed to access key",
                )
                assert (created.status_code, message(created)) == (
                    502,
                    "bad gateway: failed to create key",
                )
                assert "reachable" in tui_status(server) and "available" not in tui_status(server)
                assert store_errors(root) >= 2
            finally:
                own_bao.unseal()
            wait_for_state(root, "available")
            assert root.post("/v1/key/encrypt/cold", json={"plaintext": "aGk="}).status_code == 200
            assert root.post("/v1/key/create/after").status_code == 200
        finally:
            trace.close()
        assert server.process is not None and server.process.pid == pid
        assert_no_secrets(server, own_bao)


def test_an_unreachable_vault_fails_fast_and_comes_back(own_bao: OpenBao, tmp_path: Path) -> None:
    with relay("127.0.0.1", int(own_bao.addr.rsplit(":", 1)[1])) as cable:
        section = vault_section(own_bao, endpoint=cable.url)
        with vault_server(tmp_path, section) as server, server.client() as root:
            assert root.post("/v1/key/create/before").status_code == 200
            cable.cut()
            wait_for_state(root, "unreachable")
            resp = root.post("/v1/key/generate/before", json={})
            assert resp.status_code == 503
            assert message(resp) == "key store is not reachable"  # the details: error log
            assert "vault: no connection" in server.logs()  # written before the answer
            cable.restore()
            wait_for_state(root, "available")
            assert root.post("/v1/key/generate/before", json={}).status_code == 200
            assert_no_secrets(server, own_bao)


def _failed_start(tmp_path: Path, section: dict[str, Any]) -> str:
    """The server's stderr when it refuses to start (it must exit, not hang)."""
    with pytest.raises(RuntimeError, match="kes-server exited with") as err:
        with vault_server(tmp_path, section):
            pass
    lines = str(err.value).splitlines()[1:]
    return "\n".join(line for line in lines if line.strip())


def test_an_unreachable_vault_at_start_stops_the_server_with_one_line(
    bao: OpenBao, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    out = _failed_start(tmp_path, vault_section(bao, endpoint=endpoint))
    assert out == (
        f"kes-server: keystore.vault: AppRole login (auth/approle) at {endpoint} failed: "
        f"vault: no connection to {endpoint}: connection refused"
    )


def test_a_failed_login_stops_the_server_with_one_line(bao: OpenBao, tmp_path: Path) -> None:
    wrong = Role("kes", bao.role.id, f"wrong-{uuid.uuid4()}")
    out = _failed_start(tmp_path, vault_section(bao, wrong))
    assert out.startswith("kes-server: keystore.vault: AppRole login (auth/approle) at ")
    assert out.endswith("failed: vault: POST auth/approle/login: invalid role or secret ID")
    assert wrong.secret not in out and "\n" not in out


def test_a_server_on_vault_shuts_down_cleanly(bao: OpenBao, tmp_path: Path) -> None:
    with vault_server(tmp_path, vault_section(bao)) as server:
        assert server.stop(signal.SIGTERM) == 0


# ---------------------------------------------------------------------- make cluster


@pytest.mark.nginx
def test_make_cluster_runs_on_vault(tmp_path: Path) -> None:
    """``make cluster ARGS="--store vault"``: the deployment of docs/deployment.md on Vault."""
    with start_cluster(tmp_path, backends=2, store="vault") as cluster:
        assert cluster.vault is not None and cluster.etcd is None
        with cluster.via_proxy(cluster.app) as app:
            assert app.post("/v1/key/create/app-on-vault").status_code == 200
        assert cluster.management is not None
        with cluster.client(cluster.management.url, cluster.admin) as admin:
            assert list_keys(admin) == ["app-on-vault"]
            assert admin.get("/v1/status").json()["kms"]["state"] == "available"
        assert "Vault:" in cluster.describe()
