"""Kubernetes login against a local stub of Vault's ``auth/<engine>/login`` endpoint.

There is no Kubernetes here, so Vault's Kubernetes auth method (which asks the
Kubernetes API to review the JWT) cannot run for real. What pykes owns is the
login call itself: the request KES v0.17 sends (``{"role", "jwt"}``, the JWT
read from a file when the config names one), the token taken from the answer,
and errors that never repeat the JWT. A small HTTP server plays that one
endpoint (and ``sys/health``, which the store polls).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kes_server.core.config import VaultKubernetesConfig, VaultStoreConfig
from kes_server.keystore.base import StoreError
from kes_server.keystore.vault import VaultStore

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a2VzIn0.c2lnbmF0dXJl"


@dataclass
class Stub:
    url: str
    #: (path, namespace header, JSON body) of every login.
    logins: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    accept: set[str] = field(default_factory=set)


@pytest.fixture(name="stub")
def _stub() -> Iterator[Stub]:
    stub = Stub(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _reply(self, status: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self.path.startswith("/v1/sys/health"):
                self._reply(200, {"initialized": True, "sealed": False})
            else:
                self._reply(404, {"errors": []})

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            stub.logins.append((self.path, self.headers.get("X-Vault-Namespace", ""), body))
            if not self.path.endswith("/login") or body.get("jwt") not in stub.accept:
                # Vault-like, and careless: the error repeats what it was sent.
                self._reply(400, {"errors": [f"invalid JWT {body.get('jwt')!r}"]})
                return
            auth = {"client_token": f"s.tok-{len(stub.logins)}", "lease_duration": 3600}
            self._reply(200, {"auth": {**auth, "renewable": True}})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def _store(stub: Stub, jwt: str, *, engine: str = "kubernetes", namespace: str = "") -> VaultStore:
    cfg = VaultStoreConfig(
        endpoint=stub.url,
        namespace=namespace,
        kubernetes=VaultKubernetesConfig(engine=engine, role="kes", jwt=jwt),
    )
    return VaultStore.from_config(cfg)


async def test_login_sends_role_and_jwt_and_uses_the_token(stub: Stub) -> None:
    stub.accept.add(JWT)
    store = _store(stub, JWT, engine="k8s/prod", namespace="team-a")
    try:
        await store.start()
        assert stub.logins == [
            ("/v1/auth/k8s/prod/login", "team-a", {"role": "kes", "jwt": JWT}),
        ]
        assert store.session.token == "s.tok-1"
    finally:
        await store.close()


async def test_a_jwt_file_is_read_at_every_login(stub: Stub, tmp_path: Path) -> None:
    """KES reads a path in ``jwt`` as a file; Kubernetes rotates that file, so we re-read it."""
    token_file = tmp_path / "token"
    token_file.write_text(JWT + "\n")
    stub.accept.update({JWT, JWT + "-rotated"})
    store = _store(stub, str(token_file))
    try:
        await store.start()
        token_file.write_text(JWT + "-rotated")
        await store.session.login()
        assert [body["jwt"] for _, _, body in stub.logins] == [JWT, JWT + "-rotated"]
        assert store.session.token == "s.tok-2"
    finally:
        await store.close()


async def test_a_failed_login_is_one_line_without_the_jwt(stub: Stub) -> None:
    store = _store(stub, JWT)
    try:
        with pytest.raises(StoreError) as err:
            await store.start()
    finally:
        await store.close()
    text = str(err.value)
    assert text.startswith(f"keystore.vault: Kubernetes login (auth/kubernetes) at {stub.url}")
    assert "invalid JWT" in text and "[redacted]" in text
    assert JWT not in text and "\n" not in text


def test_no_credentials_is_an_error_at_open() -> None:
    with pytest.raises(ValueError, match="no credentials"):
        VaultStore.from_config(VaultStoreConfig(endpoint="http://127.0.0.1:8200"))
