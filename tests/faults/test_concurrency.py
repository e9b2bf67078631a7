"""Races and crashes: one winner per name, and nothing half-written after ``kill -9``.

Create is the one atomic primitive several servers sharing a store rely on
(keystore/base.py), so it is hammered through the whole stack: 200 creates of
one name in flight at once must give exactly one 200. And since the fs store
publishes a key only once it is complete and fsync'ed, killing the server in
the middle of a stream of creates must leave no partial or corrupt key file,
and every create that answered 200 must still decrypt after the restart.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem
from kes_server.core.keyfile import decode_key
from tests.support.protocols import PROTOCOLS
from tests.support.server import ClientIdentity, RunningServer, start_server

pytestmark = pytest.mark.e2e

CONCURRENT = 200


@contextmanager
def _etcd_config(directory: Path) -> Iterator[dict[str, Any]]:
    from tests.support.etcd import etcd_binary, start_etcd_cluster

    try:
        etcd_binary()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with start_etcd_cluster(directory, size=1) as cluster:
        yield {"keystore": {"etcd": {"endpoints": cluster.endpoints}}}


@contextmanager
def _server(tmp_path: Path, store: str) -> Iterator[RunningServer]:
    if store == "fs":
        with start_server(tmp_path / "kes") as server:
            yield server
        return
    with (
        _etcd_config(tmp_path / "etcd") as config,
        start_server(tmp_path / "kes", store="mem", config=config) as server,
    ):
        yield server


@pytest.fixture(scope="module", params=["fs", pytest.param("etcd", marks=pytest.mark.etcd)])
def store_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RunningServer]]:
    """(store, server): one per store, shared by both protocols' races (each races its own name)."""
    store = str(request.param)
    with _server(tmp_path_factory.mktemp(f"race-{store}"), store) as srv:
        yield store, srv


async def _race(server: RunningServer, name: str, http2: bool) -> list[httpx.Response]:
    """CONCURRENT creates of ``name``, all in flight together.

    Over HTTP/2 they are streams on four connections; over HTTP/1.1 each needs
    a connection of its own, so there are CONCURRENT connections.
    """
    clients = [server.async_client(http2=http2, timeout=30) for _ in range(4)]
    try:
        for client in clients:  # connect first, so the creates are not spread by handshakes
            assert (await client.get("/version")).status_code == 200
        calls = [
            clients[i % len(clients)].post(f"/v1/key/create/{name}") for i in range(CONCURRENT)
        ]
        return list(await asyncio.gather(*calls))
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_concurrent_creates_of_one_name_have_one_winner(
    store_server: tuple[str, RunningServer], protocol: str
) -> None:
    store, server = store_server
    name = f"contended-{protocol}"
    answers = asyncio.run(_race(server, name, http2=protocol == "h2"))
    assert {r.http_version for r in answers} == {"HTTP/2" if protocol == "h2" else "HTTP/1.1"}
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 1, codes
    losers = [r for r in answers if r.status_code != 200]
    assert {(r.status_code, r.json()["message"]) for r in losers} == {
        (400, "key does already exist")
    }
    with server.client() as root:
        gen = root.post(f"/v1/key/generate/{name}", json={}).json()
        dec = root.post(f"/v1/key/decrypt/{name}", json={"ciphertext": gen["ciphertext"]})
        assert dec.json()["plaintext"] == gen["plaintext"]
    if store == "fs":
        keys = server.directory / "keys"
        assert decode_key((keys / name).read_bytes())
        assert not list(keys.glob(".tmp-*"))


def test_workers_start_with_configured_policies_and_keys(tmp_path: Path) -> None:
    """Issue 13.1: every worker writes the config's policies and keys at start-up.

    Four workers each putting 60 policies used to sweep one another's temp files
    and fail to start ("cannot write 'p0': No such file or directory").
    """
    key_pem, cert_pem = new_identity("app", key_type="ecdsa")
    (tmp_path / "app.key").write_bytes(key_pem)
    (tmp_path / "app.cert").write_bytes(cert_pem)
    app = ClientIdentity(tmp_path / "app.cert", tmp_path / "app.key", identity_of_pem(cert_pem))
    policies: dict[str, Any] = {
        f"p{i}": {"allow": [f"/v1/key/generate/k{i % 8}"]} for i in range(60)
    }
    policies["p0"]["identities"] = [app.identity]
    config = {"policy": policies, "keys": [{"name": f"k{i}"} for i in range(8)]}
    with start_server(tmp_path / "kes", config=config, args=["--workers", "4"]) as server:
        for _ in range(8):  # fresh connections, spread over the workers
            with server.client(app) as client:
                assert client.post("/v1/key/generate/k0", json={}).status_code == 200
                assert client.post("/v1/key/generate/k1", json={}).status_code == 403
        with server.client() as root:
            assert len(root.get("/v1/policy/list/*").json()) == 60
            # The key listing is a stream of JSON objects, one per line.
            assert len(root.get("/v1/key/list/*").text.splitlines()) == 8
        assert server.stop() == 0
        assert "Traceback" not in server.logs()


class _Creator(threading.Thread):
    """Creates keys one after another until the server dies; remembers the 200s."""

    def __init__(self, server: RunningServer, prefix: str, *, http2: bool) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.prefix = prefix
        self.http2 = http2
        self.created: list[str] = []
        self.attempted: list[str] = []

    def run(self) -> None:
        with self.server.client(timeout=5, http2=self.http2) as client:
            for i in range(100_000):
                name = f"{self.prefix}-{i}"
                self.attempted.append(name)
                try:
                    resp = client.post(f"/v1/key/create/{name}")
                except httpx.HTTPError:
                    return
                if resp.status_code == 200:
                    self.created.append(name)


@pytest.mark.slow
def test_kill_9_during_creates_loses_nothing_acknowledged(tmp_path: Path) -> None:
    created: list[str] = []
    with start_server(tmp_path) as server:
        for round_ in range(3):
            # Both protocols at once: the kill lands in the middle of either.
            creators = [_Creator(server, f"r{round_}t{t}", http2=t % 2 == 1) for t in range(3)]
            for c in creators:
                c.start()
            time.sleep(0.4 + 0.15 * round_)  # vary where in a write the kill lands
            server.stop(signal.SIGKILL)
            for c in creators:
                c.join(10)
                created += c.created
            server.start()
        assert len(created) > 20, "too few creates to prove anything"
        creator_ids = {name.split("-")[0][-2:] for name in created}
        assert {"t0", "t1"} <= creator_ids, "creates over HTTP/1.1 (t0) and HTTP/2 (t1) expected"

        keys = server.directory / "keys"
        assert not list(keys.glob(".tmp-*")), "temp files must be swept at start-up"
        for path in keys.iterdir():
            if path.is_file() and not path.name.startswith("."):
                decode_key(path.read_bytes())  # raises on a partial or corrupt record
        with server.client() as root:
            for name in created:
                plaintext = base64.b64encode(name.encode()).decode()
                enc = root.post(f"/v1/key/encrypt/{name}", json={"plaintext": plaintext})
                assert enc.status_code == 200, (name, enc.text)
                dec = root.post(f"/v1/key/decrypt/{name}", json=enc.json())
                assert dec.json()["plaintext"] == plaintext
