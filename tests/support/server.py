"""A real kes-server subprocess on a free loopback port, for end-to-end tests.

Everything is real: the certificates are generated per server, the server is
started as ``python -m kes_server`` with a generated config file, and clients
talk to it over mutual TLS. ``start_server`` waits until the server answers
``/version`` over mTLS and stops it (SIGTERM) on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trustme
import yaml

from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem

__all__ = ["ClientIdentity", "RunningServer", "free_port", "start_server"]

STARTUP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ClientIdentity:
    cert: Path
    key: Path
    identity: str


@dataclass
class RunningServer:
    url: str
    port: int
    directory: Path
    config_path: Path
    ca_file: Path
    root_cert: Path
    root_key: Path
    root_identity: str
    args: list[str]
    env: dict[str, str]
    #: Set when client certificates come from a CA (``--auth on`` servers).
    client_ca: trustme.CA | None = None
    process: subprocess.Popen[bytes] | None = None
    _clients: int = field(default=0)

    # ------------------------------------------------------------------ identities
    def new_client(self, name: str) -> ClientIdentity:
        """A fresh client certificate + key (self-signed, or from the client CA)."""
        self._clients += 1
        cert = self.directory / f"client-{name}-{self._clients}.cert"
        key = self.directory / f"client-{name}-{self._clients}.key"
        if self.client_ca is not None:
            leaf = self.client_ca.issue_cert(f"{name}@clients.test")
            cert.write_bytes(leaf.cert_chain_pems[0].bytes())
            key.write_bytes(leaf.private_key_pem.bytes())
        else:
            key_pem, cert_pem = new_identity(name, key_type="ecdsa")
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
        return ClientIdentity(cert, key, identity_of_pem(cert.read_bytes()))

    @property
    def root(self) -> ClientIdentity:
        return ClientIdentity(self.root_cert, self.root_key, self.root_identity)

    def ssl_context(self, who: ClientIdentity | None = None) -> ssl.SSLContext:
        who = who or self.root
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(who.cert), str(who.key))
        return ctx

    def client(
        self, who: ClientIdentity | None = None, *, http2: bool = False, timeout: float = 10.0
    ) -> httpx.Client:
        """An httpx client authenticated as ``who`` (root by default)."""
        return httpx.Client(
            base_url=self.url, verify=self.ssl_context(who), http2=http2, timeout=timeout
        )

    def async_client(
        self, who: ClientIdentity | None = None, *, http2: bool = False, timeout: float = 10.0
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, verify=self.ssl_context(who), http2=http2, timeout=timeout
        )

    # ------------------------------------------------------------------ process
    @property
    def stdout_path(self) -> Path:
        return self.directory / "server.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.directory / "server.stderr"

    def start(self) -> None:
        if os.environ.get("KES_UNIT_ONLY"):
            raise RuntimeError(
                "this test starts a kes-server: mark it e2e (make test-fast runs unit tests only)"
            )
        out = open(self.stdout_path, "ab")  # noqa: SIM115 - owned by the process
        err = open(self.stderr_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kes_server", "--config", str(self.config_path), *self.args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        out.close()
        err.close()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # never leave a server running that no test will stop
            raise

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        ctx = self.ssl_context()
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"kes-server exited with {self.process.returncode}:\n"
                    + self.stderr_path.read_text(errors="replace")
                )
            try:
                with httpx.Client(base_url=self.url, verify=ctx, timeout=2.0) as c:
                    if c.get("/version").status_code == 200:
                        return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("kes-server did not become ready:\n" + self.stderr_path.read_text())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Stop the server; returns its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return int(code)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@contextlib.contextmanager
def start_server(
    directory: Path,
    *,
    config: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    auth: bool = False,
    store: str = "fs",
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Start a kes-server in ``directory`` and stop it afterwards.

    ``auth=False`` runs ``--auth off`` with self-signed client certificates (the
    KES default for guides); ``auth=True`` issues client certificates from a
    test CA and configures the server to trust only that CA. ``store`` is
    ``"fs"`` (a ``keys`` directory inside ``directory``) or ``"mem"``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    skey, scert = new_identity(
        "localhost", server=True, dns=("localhost",), ips=("127.0.0.1",), key_type="ecdsa"
    )
    (directory / "server.key").write_bytes(skey)
    (directory / "server.cert").write_bytes(scert)
    client_ca = trustme.CA() if auth else None
    server = RunningServer(
        url=f"https://127.0.0.1:{port}",
        port=port,
        directory=directory,
        config_path=directory / "config.yml",
        ca_file=directory / "server.cert",
        root_cert=directory / "root.cert",
        root_key=directory / "root.key",
        root_identity="",
        args=[*args, "--auth", "on" if auth else "off"],
        env={**os.environ, **(env or {})},
        client_ca=client_ca,
    )
    root = server.new_client("root")
    root.cert.rename(server.root_cert)
    root.key.rename(server.root_key)
    server.root_identity = root.identity
    base: dict[str, Any] = {
        "address": f"127.0.0.1:{port}",
        "root": root.identity,
        "tls": {"cert": str(directory / "server.cert"), "key": str(directory / "server.key")},
    }
    if client_ca is not None:
        ca_path = directory / "client-ca.pem"
        client_ca.cert_pem.write_to_path(str(ca_path))
        base["tls"]["ca"] = str(ca_path)
    if store == "fs":
        base["keystore"] = {"fs": {"path": str(directory / "keys")}}
    merged = _merge(base, config or {})
    server.config_path.write_text(yaml.safe_dump(merged), encoding="utf-8")
    server.start()
    try:
        yield server
    finally:
        server.stop()
