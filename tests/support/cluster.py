"""A complete KES deployment on loopback: etcd (or Vault), kes-servers, nginx, a management server.

This is the topology of docs/deployment.md, shared by the e2e tests and
``make cluster`` (scripts/cluster.py) so that what a developer plays with is
exactly what the tests check:

* an etcd cluster (``etcd_members``, default 3) as the one shared key store;
* ``backends`` stateless kes-servers with ``--root _`` (root disabled, the
  seed's first best practice) that trust nginx as a TLS proxy;
* nginx in front of them, running docs/examples/nginx.conf;
* a management kes-server on the same store, *not* behind the proxy and not
  trusting any proxy, where root (the ``admin`` identity) is enabled for
  routine management such as deleting keys.

One test CA issues every server certificate (kes-servers and nginx), so
clients and nginx verify servers normally; client certificates are
self-signed and accepted with ``--auth off``, as in the KES guides.
With ``etcd_members=0`` the backends use an in-memory store (only sensible
with one backend and no management server: the proxy tests need no etcd).
With ``store="vault"`` one OpenBao (tests/support/vault.py) replaces etcd as
the shared store: every kes-server logs in with the same AppRole and keeps
its keys in KV v1 under ``prefix``, as KES v0.17 would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import trustme
import yaml

from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem
from tests.support.etcd import EtcdCluster, start_etcd_cluster
from tests.support.nginx import NginxProxy, start_nginx
from tests.support.server import ClientIdentity, RunningServer, free_port
from tests.support.vault import OpenBao, openbao

__all__ = [
    "APP_POLICY",
    "MONITOR_POLICY",
    "Cluster",
    "new_client",
    "start_cluster",
]

#: What applications may do: no delete, no policy or identity management
#: (the seed: never grant dangerous operations on servers behind a proxy).
APP_POLICY = {
    "allow": [
        "/v1/key/create/app-*",
        "/v1/key/generate/app-*",
        "/v1/key/decrypt/app-*",
        "/v1/key/list/*",
        "/v1/identity/self/describe",
    ],
    "deny": [],
}
#: Reading the logs and status is separate from using keys.
MONITOR_POLICY = {
    "allow": [
        "/v1/log/audit/trace",
        "/v1/log/error/trace",
        "/v1/status",
        "/v1/metrics",
        "/v1/identity/self/describe",
    ],
    "deny": [],
}
PROXY_HEADER = "X-Tls-Client-Cert"


def new_client(directory: Path, name: str) -> ClientIdentity:
    """A self-signed client certificate (what ``kes identity new`` makes)."""
    key_pem, cert_pem = new_identity(name, key_type="ecdsa")
    cert, key = directory / f"{name}.cert", directory / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    return ClientIdentity(cert, key, identity_of_pem(cert_pem))


@dataclass
class Cluster:
    directory: Path
    ca_file: Path
    admin: ClientIdentity
    app: ClientIdentity
    monitor: ClientIdentity
    #: nginx's own client certificate: the one trusted TLS proxy identity.
    proxy_identity: ClientIdentity
    backends: list[RunningServer]
    proxy: NginxProxy
    management: RunningServer | None = None
    etcd: EtcdCluster | None = None
    vault: OpenBao | None = None
    _clients: int = field(default=0)

    def new_client(self, name: str) -> ClientIdentity:
        self._clients += 1
        return new_client(self.directory, f"{name}-{self._clients}")

    def ssl_context(self, who: ClientIdentity | None) -> ssl.SSLContext:
        """Verifies any server of the cluster; sends ``who``'s certificate (if any)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if who is not None:
            ctx.load_cert_chain(str(who.cert), str(who.key))
        return ctx

    def client(
        self,
        url: str,
        who: ClientIdentity | None,
        *,
        http2: bool = False,
        timeout: float = 10.0,
        local_address: str | None = None,
    ) -> httpx.Client:
        """An httpx client for one server (or nginx) acting as ``who``."""
        ctx = self.ssl_context(who)
        transport = httpx.HTTPTransport(verify=ctx, http2=http2, local_address=local_address)
        return httpx.Client(base_url=url, transport=transport, timeout=timeout)

    def via_proxy(self, who: ClientIdentity | None, **kwargs: Any) -> httpx.Client:
        return self.client(self.proxy.url, who, **kwargs)

    @property
    def servers(self) -> list[RunningServer]:
        """Every kes-server: the backends, then the management server."""
        return [*self.backends, *([self.management] if self.management else [])]

    def describe(self) -> str:
        """What ``make cluster`` prints: endpoints and the client settings."""
        d = self.directory
        lines = [
            f"Endpoint:    {self.proxy.url}   (nginx -> {len(self.backends)} kes-servers)",
            *[
                f"  backend:   {s.url}   (--root _, trusts nginx as TLS proxy)"
                for s in self.backends
            ],
        ]
        if self.management is not None:
            lines.append(f"Management:  {self.management.url}   (root enabled, NOT behind nginx)")
        if self.etcd is not None:
            lines.append(f"etcd:        {','.join(self.etcd.endpoints)}")
        if self.vault is not None:
            lines.append(
                f"Vault:       {self.vault.addr}   (OpenBao dev server; "
                f"export BAO_ADDR={self.vault.addr} BAO_TOKEN={self.vault.root_token})"
            )
        lines += [
            f"Files, logs: {d}",
            "",
            "Application (policy 'app': create/generate/decrypt app-* keys, list):",
            f"  export KES_SERVER={self.proxy.url}",
            f"  export KES_CLIENT_CERT={self.app.cert}",
            f"  export KES_CLIENT_KEY={self.app.key}",
            f"  kes --ca {self.ca_file} key create app-demo",
            "",
        ]
        if self.management is not None:
            lines += [
                "Management (root; use only this server for deletes and policies):",
                f"  export KES_SERVER={self.management.url}",
                f"  export KES_CLIENT_CERT={self.admin.cert}",
                f"  export KES_CLIENT_KEY={self.admin.key}",
                f"  kes --ca {self.ca_file} key delete app-demo",
                "",
            ]
        lines += [
            "Monitoring (policy 'monitor': audit/error traces, status, metrics):",
            f"  KES_SERVER={self.proxy.url} KES_CLIENT_CERT={self.monitor.cert} "
            f"KES_CLIENT_KEY={self.monitor.key} kes --ca {self.ca_file} log trace",
            "",
            f"TLS proxy identity (tls.proxy.identities): {self.proxy_identity.identity}",
        ]
        return "\n".join(lines)


def _server_config(
    port: int,
    *,
    root: str,
    store: Mapping[str, Any],
    policies: Mapping[str, Any],
    proxy_identity: str | None,
    cache: Mapping[str, str],
) -> dict[str, Any]:
    tls: dict[str, Any] = {}
    if proxy_identity is not None:
        tls["proxy"] = {"identities": [proxy_identity], "header": {"cert": PROXY_HEADER}}
    config: dict[str, Any] = {
        "address": f"127.0.0.1:{port}",
        "root": root,
        "tls": tls,
        "policy": dict(policies),
        "cache": {"expiry": dict(cache)},
        "log": {"error": "on", "audit": "on"},
    }
    if store:
        config["keystore"] = dict(store)
    return config


def _server(
    directory: Path,
    ca: trustme.CA,
    ca_file: Path,
    port: int,
    config: dict[str, Any],
    *,
    ready_as: ClientIdentity,
    args: list[str],
) -> RunningServer:
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = directory / "server.cert", directory / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    config["tls"]["cert"], config["tls"]["key"] = str(cert), str(key)
    server = RunningServer(
        url=f"https://127.0.0.1:{port}",
        port=port,
        directory=directory,
        config_path=directory / "config.yml",
        ca_file=ca_file,
        # start_server's readiness probe (/version) needs some client certificate.
        root_cert=ready_as.cert,
        root_key=ready_as.key,
        root_identity=str(config["root"]),
        args=[*args, "--auth", "off"],
        env=dict(os.environ),
    )
    server.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return server


def _start_all(servers: list[RunningServer]) -> None:
    """Start the kes-servers in parallel: each needs ~1 s of Python start-up."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(servers) or 1) as pool:
        for future in [pool.submit(s.start) for s in servers]:
            future.result()


def _stop_all(servers: list[RunningServer]) -> None:
    """Signal every server first, so their graceful shutdowns overlap."""
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        server.stop()


@contextlib.contextmanager
def start_cluster(
    directory: Path,
    *,
    backends: int = 3,
    etcd_members: int = 3,
    management: bool = True,
    proxy_host: str = "127.0.0.1",
    proxy_port: int | None = None,
    management_port: int | None = None,
    etcd_timeout: str = "2s",
    cache: Mapping[str, str] | None = None,
    prefix: str = "kes/",
    store: Literal["etcd", "vault"] = "etcd",
) -> Iterator[Cluster]:
    """Start everything, yield the ``Cluster``, stop everything (reverse order)."""
    if store == "etcd" and etcd_members == 0 and (backends != 1 or management):
        raise ValueError("without etcd only one backend and no management server make sense")
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_file = directory / "ca.cert"
    ca.cert_pem.write_to_path(str(ca_file))
    admin = new_client(directory, "admin")
    app = new_client(directory, "app")
    monitor = new_client(directory, "monitor")
    proxy_id = new_client(directory, "nginx-client")
    policies = {
        "app": {**APP_POLICY, "identities": [app.identity]},
        "monitor": {**MONITOR_POLICY, "identities": [monitor.identity]},
    }
    cache_cfg = dict(cache or {})
    with contextlib.ExitStack() as stack:
        etcd: EtcdCluster | None = None
        vault: OpenBao | None = None
        keystore: dict[str, Any] = {}
        if store == "vault":
            vault = stack.enter_context(openbao(directory / "openbao"))
            keystore = {
                "vault": {
                    "endpoint": vault.addr,
                    "engine": "kv",
                    "version": "v1",
                    "prefix": prefix,
                    "approle": {"id": vault.role.id, "secret": vault.role.secret},
                }
            }
        elif etcd_members:
            etcd = stack.enter_context(start_etcd_cluster(directory / "etcd", etcd_members))
            keystore = {
                "etcd": {"endpoints": etcd.endpoints, "prefix": prefix, "timeout": etcd_timeout}
            }
        servers: list[RunningServer] = []
        for i in range(backends):
            port = free_port()
            config = _server_config(
                port,
                root="_",
                store=keystore,
                policies=policies,
                proxy_identity=proxy_id.identity,
                cache=cache_cfg,
            )
            servers.append(
                _server(
                    directory / f"kes-{i}",
                    ca,
                    ca_file,
                    port,
                    config,
                    ready_as=app,
                    args=["--root", "_"],
                )
            )
        mgmt: RunningServer | None = None
        if management:
            port = management_port or free_port()
            config = _server_config(
                port,
                root=admin.identity,
                store=keystore,
                policies=policies,
                proxy_identity=None,
                cache=cache_cfg,
            )
            mgmt = _server(
                directory / "kes-management", ca, ca_file, port, config, ready_as=admin, args=[]
            )
        everyone = [*servers, *([mgmt] if mgmt else [])]
        stack.callback(_stop_all, everyone)
        _start_all(everyone)
        proxy_leaf = ca.issue_cert("localhost", proxy_host)
        proxy_cert, proxy_key = directory / "nginx-server.cert", directory / "nginx-server.key"
        proxy_leaf.cert_chain_pems[0].write_to_path(str(proxy_cert))
        proxy_leaf.private_key_pem.write_to_path(str(proxy_key))
        proxy = stack.enter_context(
            start_nginx(
                host=proxy_host,
                port=proxy_port or free_port(),
                upstreams=[f"127.0.0.1:{s.port}" for s in servers],
                server_cert=proxy_cert,
                server_key=proxy_key,
                client_cert=proxy_id.cert,
                client_key=proxy_id.key,
                upstream_ca=ca_file,
                upstream_name="localhost",
                log_path=directory / "nginx.log",
            )
        )
        yield Cluster(
            directory=directory,
            ca_file=ca_file,
            admin=admin,
            app=app,
            monitor=monitor,
            proxy_identity=proxy_id,
            backends=servers,
            proxy=proxy,
            management=mgmt,
            etcd=etcd,
            vault=vault,
        )
