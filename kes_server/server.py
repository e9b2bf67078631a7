"""Assembling and running one kes-server process from a ``Config``.

Start-up order matters and mirrors KES: self-test and build TLS, bind the
listening socket, open the store, apply the config's policies, create the
declarative keys (any failure aborts start-up with one line), then serve
until SIGINT/SIGTERM. On shutdown live trace streams are ended first, so the
graceful stop only waits for real requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import TextIO

from cryptography import x509

from kes_server.access import AccessControl
from kes_server.api import create_api
from kes_server.api.state import ServerState
from kes_server.core.config import (
    AWSStoreConfig,
    Config,
    EtcdStoreConfig,
    FSStoreConfig,
    RemoteStoreConfig,
    VaultStoreConfig,
)
from kes_server.core.crypto import new_key
from kes_server.core.errors import ConfigError, KeyExists
from kes_server.core.names import validate_name
from kes_server.keys import KeyManager
from kes_server.keystore.aws_layout import missing_sdk_message
from kes_server.keystore.base import Store, StoreError
from kes_server.keystore.fs import FSStore
from kes_server.keystore.memory import MemoryStore
from kes_server.keystore.metered import MeteredStore
from kes_server.logbus import LogBus, error_console_format
from kes_server.metrics import Metrics
from kes_server.tls import TLSSetupError, self_test, server_context
from kes_server.transport.listen import AddressError, bind
from kes_server.transport.server import HTTPServer, Limits
from kes_server.workers import Relay

__all__ = ["StartupError", "banner", "build_state", "open_store", "run"]


class StartupError(Exception):
    """The server cannot start; the message is one line for the operator."""


def open_store(cfg: Config, say: Callable[[str], None] = lambda _s: None) -> Store:
    ks = cfg.keystore
    if ks is None:
        return MemoryStore()
    if isinstance(ks, FSStoreConfig):
        store = FSStore(ks.path)
        try:
            if store.open():
                say(f"Creating directory '{ks.path}' ... ")
        except (OSError, StoreError) as exc:
            raise StartupError(f"keystore.fs.path: cannot use '{ks.path}': {exc}") from exc
        return store
    if isinstance(ks, EtcdStoreConfig):
        # Imported here so single-node setups never load the etcd client.
        from kes_server.keystore.etcd import EtcdStore

        try:
            return EtcdStore.from_config(ks)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise StartupError(f"keystore.etcd: {exc}") from exc
    if isinstance(ks, VaultStoreConfig):
        from kes_server.keystore.vault import VaultStore

        try:
            return VaultStore.from_config(ks)
        except (OSError, ValueError) as exc:
            raise StartupError(f"keystore.vault: {exc}") from exc
    if isinstance(ks, AWSStoreConfig):
        try:  # the AWS SDK is the optional 'aws' extra
            from kes_server.keystore.aws import AWSSecretsManagerStore
        except ModuleNotFoundError as exc:
            raise StartupError(missing_sdk_message(exc.name)) from exc
        return AWSSecretsManagerStore(ks)
    if isinstance(ks, RemoteStoreConfig):
        raise StartupError(
            f"keystore.{ks.kind}: this key store is not supported by pykes "
            "(supported: in-memory, fs, etcd, vault, aws)"
        )
    raise StartupError("keystore: unknown key store")


def _load_trust(cfg: Config) -> list[x509.Certificate] | None:
    """CAs for verifying certificates forwarded by a TLS proxy (``--auth on``)."""
    if not cfg.tls.proxy.identities or not cfg.auth:
        return None
    import ssl

    path = cfg.tls.ca or ssl.get_default_verify_paths().cafile
    if not path:
        return []
    try:
        with open(path, "rb") as fh:
            return x509.load_pem_x509_certificates(fh.read())
    except (OSError, ValueError) as exc:
        raise StartupError(f"tls.ca: cannot load '{path}': {exc}") from exc


async def build_state(cfg: Config, *, stdout: TextIO, stderr: TextIO) -> ServerState:
    """Open everything a request needs; raises StartupError with one clear line."""
    if not cfg.root:
        raise StartupError(
            "no root identity has been specified (use --root or 'root:'; '_' disables it)"
        )
    metrics = Metrics()
    audit = LogBus(
        console=stdout if cfg.log.audit else None, on_publish=metrics.log_audit_events.inc
    )
    errors = LogBus(
        console=stderr if cfg.log.error else None,
        console_format=error_console_format,
        on_publish=metrics.log_error_events.inc,
    )
    store: Store = MeteredStore(
        open_store(cfg, say=lambda s: print(s, file=stdout, flush=True)),
        observe=metrics.store_latency.observe,
        failed=metrics.store_errors.inc,
    )
    holder: list[ServerState] = []

    def log_error(text: str) -> None:
        if holder:
            holder[0].log_error(text)

    keys = KeyManager(store, cfg.cache, on_error=log_error, on_cache=metrics.cache_event)
    access = AccessControl(
        store, root=cfg.root, proxies=cfg.tls.proxy.identities, on_error=log_error
    )
    state = ServerState(
        config=cfg,
        store=store,
        keys=keys,
        access=access,
        audit=audit,
        errors=errors,
        metrics=metrics,
        proxy_trust=_load_trust(cfg),
    )
    holder.append(state)
    try:
        await store.start(log_error)
    except StoreError as exc:
        raise StartupError(str(exc)) from exc
    try:
        await access.apply_config(cfg)
    except StoreError as exc:
        raise StartupError(f"policy: cannot store the configured policies: {exc}") from exc
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    for name in cfg.keys:
        try:
            validate_name(name, "key")
            await keys.create(name, new_key())
        except KeyExists:
            continue
        except Exception as exc:  # noqa: BLE001 - any failure aborts start-up
            raise StartupError(f'failed to create key "{name}": {exc}') from exc
    return state


#: Connection timeouts an operator may tune without a config change, e.g. to keep the
#: server's idle timeout above a load balancer's: (variable, default seconds).
IDLE_TIMEOUT_ENV = ("KES_HTTP_IDLE_TIMEOUT", 75.0)
HEADER_TIMEOUT_ENV = ("KES_HTTP_HEADER_TIMEOUT", 5.0)


def env_seconds(setting: tuple[str, float], environ: dict[str, str] | None = None) -> float:
    """A positive number of seconds from the environment, or the default."""
    name, default = setting
    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise StartupError(f"{name}: must be a positive number of seconds, not {text!r}")
    return value


def _endpoints(address: str) -> list[str]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host not in ("", "0.0.0.0", "::"):
        return [f"https://{host}:{port}"]
    ips = ["127.0.0.1"]
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            ip = str(info[4][0])
            if ip not in ips:
                ips.append(ip)
    return [f"https://{ip}:{port}" for ip in ips]


def banner(cfg: Config, store: Store, *, client_cert: str = "", client_key: str = "") -> str:
    """The start-up banner, in the shape of KES's."""
    endpoints = _endpoints(cfg.address)
    root = cfg.root if cfg.root_enabled else f"{cfg.root}  [ disabled ]"
    auth = (
        "on    [ only clients with certificates from a trusted CA can connect ]"
        if cfg.auth
        else "off   [ any client certificate is accepted; policies decide what it may do ]"
    )
    keys = (
        f"{store.kind[:1].upper()}{store.kind[1:]}: {store.location}"
        if store.kind != "in-memory"
        else "In Memory"
    )
    lines = [
        f"Endpoint: {endpoints[0]}",
        *[f"          {e}" for e in endpoints[1:]],
        "",
        f"Root:     {root}",
        f"Auth:     {auth}",
        "",
        f"Keys:     {keys}",
        "",
        f"CLI:      export KES_SERVER={endpoints[0]}",
        f"          export KES_CLIENT_KEY={client_key or '<client-private-key>'}",
        f"          export KES_CLIENT_CERT={client_cert or '<client-certificate>'}",
        "",
    ]
    return "\n".join(lines)


async def run(
    cfg: Config,
    *,
    quiet: bool = False,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
    client_cert: str = "",
    client_key: str = "",
    extra_banner: str = "",
    sock: socket.socket | None = None,
    relay: Relay | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. Raises StartupError when it cannot start.

    ``sock`` is the listening socket when the caller bound it already (the
    command line does, to fail early; so does the parent of several workers,
    which also passes the ``relay``).
    """
    keep_alive_s = env_seconds(IDLE_TIMEOUT_ENV)
    header_timeout_s = env_seconds(HEADER_TIMEOUT_ENV)
    if not cfg.tls.cert or not cfg.tls.key:
        raise StartupError(
            "tls: a server certificate and key are required (--cert/--key or tls.cert/tls.key)"
        )
    try:
        self_test()
        ssl_ctx = server_context(
            cert=cfg.tls.cert,
            key=cfg.tls.key,
            password=cfg.tls.password,
            auth=cfg.auth,
            ca=cfg.tls.ca,
            min_version=cfg.tls.min_version,
        )
    except TLSSetupError as exc:
        raise StartupError(str(exc)) from exc
    if sock is None:
        try:
            sock = bind(cfg.address)
        except AddressError as exc:
            raise StartupError(f"address: {exc}") from exc
    state = await build_state(cfg, stdout=stdout, stderr=stderr)
    api = create_api(state, trust=state.proxy_trust)
    if not quiet:
        print(
            banner(cfg, state.store, client_cert=client_cert, client_key=client_key) + extra_banner,
            file=stdout,
            flush=True,
        )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def stopped() -> None:
        await stop.wait()
        # Live trace streams end first, so the graceful stop only waits for real requests.
        state.audit.close()
        state.errors.close()

    def on_tls_error(peer: str, reason: str) -> None:
        state.log_error(f"http: TLS handshake error from {peer}: {reason}")

    # Everything built so far lives as long as the process: keep it out of the
    # garbage collector's full passes, which otherwise pause every request.
    gc.freeze()
    limits = Limits(idle_timeout_s=keep_alive_s, header_timeout_s=header_timeout_s)
    server = HTTPServer(api, ssl_ctx, limits, on_tls_error=on_tls_error)
    state.keys.start()
    state.access.start()
    if relay is not None:
        await relay.start(state.audit, state.errors)
    try:
        await server.serve(sock, stopped())
    finally:
        if relay is not None:
            await relay.stop()
        await state.keys.stop()
        await state.access.stop()
        await state.store.close()
