"""``kes-server``: the command line of the daemon.

Flags override the config file when given (the KES configuration guide's
rule; see docs/decisions/flag-precedence.md). A bad config or an impossible
start-up prints one line naming the field and exits with status 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

from kes_server import KES_VERSION
from kes_server.core.config import Config, load_config
from kes_server.core.errors import ConfigError

__all__ = ["main"]

EXIT_CONFIG = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"kes-server: {message}", err=True)
    sys.exit(EXIT_CONFIG)


def _mlock() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    mcl_current, mcl_future = 1, 2
    if libc.mlockall(mcl_current | mcl_future) != 0:
        _fail(f"--mlock: cannot lock memory: {os.strerror(ctypes.get_errno())}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--addr", help="Address to listen on (default 0.0.0.0:7373).")
@click.option("--root", help="Root identity; '_' disables root.")
@click.option("--cert", help="Server TLS certificate (PEM).")
@click.option("--key", help="Server TLS private key (PEM).")
@click.option(
    "--auth", type=click.Choice(["on", "off"]), help="Verify client certificates (default on)."
)
@click.option(
    "--dev", is_flag=True, help="Zero-config dev server with generated certs and fs store."
)
@click.option("--state-dir", type=click.Path(file_okay=False), help="Where --dev keeps its files.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the listen socket (needs an fs, etcd or vault store).",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop where installed (auto), or the standard asyncio loop.",
)
@click.option("--mlock", is_flag=True, help="Lock all memory (keeps keys out of swap).")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the start-up banner.")
@click.version_option(KES_VERSION, "-v", "--version", prog_name="kes-server")
def main(
    config_file: str | None,
    addr: str | None,
    root: str | None,
    cert: str | None,
    key: str | None,
    auth: str | None,
    dev: bool,
    state_dir: str | None,
    workers: int,
    loop_name: str,
    mlock: bool,
    quiet: bool,
) -> None:
    """Run a KES server: mTLS key API, policies, audit and error traces."""
    from kes_server import dev as devmode
    from kes_server.server import StartupError, run
    from kes_server.transport.listen import AddressError, bind

    loop_factory = _loop_factory(loop_name)
    dev_state = None
    if dev:
        directory = Path(state_dir) if state_dir else devmode.default_state_dir()
        if not directory.exists():
            # Listen first: a dev server that cannot listen leaves nothing behind.
            _listen(bind, AddressError, addr or devmode.DEV_ADDRESS).close()
        dev_state = devmode.prepare(directory, addr or devmode.DEV_ADDRESS)
        config_file = config_file or str(dev_state.config)
        auth = auth or "off"

    cfg = Config()
    if config_file:
        try:
            text = Path(config_file).read_bytes()
        except OSError as exc:
            _fail(f"cannot read config file '{config_file}': {exc.strerror}")
        try:
            cfg = load_config(text, os.environ)
        except ConfigError as exc:
            _fail(f"invalid config '{config_file}': {exc}")

    tls = cfg.tls
    if cert is not None:
        tls = dataclasses.replace(tls, cert=cert)
    if key is not None:
        tls = dataclasses.replace(tls, key=key)
    cfg = dataclasses.replace(
        cfg,
        tls=tls,
        address=addr if addr is not None else cfg.address,
        root=root.strip() if root is not None else cfg.root,
        auth=(auth != "off") if auth is not None else cfg.auth,
    )
    if mlock:
        _mlock()
    # Bind before anything is printed or forked: one clear line if we cannot listen.
    listener = _listen(bind, AddressError, cfg.address)

    extra = ""
    client_cert = client_key = ""
    if dev_state is not None:
        client_cert, client_key = str(dev_state.root_cert), str(dev_state.root_key)
        extra = (
            f"Dev:      state in {dev_state.directory} (server cert is self-signed:\n"
            f"          use `kes -k ...`, or `curl --cacert {dev_state.server_cert}`)\n"
            f"          TUI: kes-tui -k   (after the exports above)\n"
        )
    if workers > 1:
        _run_workers(cfg, listener, workers, loop_factory, quiet, client_cert, client_key, extra)
        return
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(
                run(
                    cfg,
                    quiet=quiet,
                    client_cert=client_cert,
                    client_key=client_key,
                    extra_banner=extra,
                    sock=listener,
                )
            )
    except StartupError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None


def _loop_factory(name: str) -> LoopFactory:
    """uvloop's loop where it is installed (``auto``), or asyncio's own (None)."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            _fail("--loop uvloop: uvloop is not installed (pip install uvloop)")
        return None
    return uvloop.new_event_loop


def _listen(
    bind: Callable[[str], socket.socket], error: type[Exception], address: str
) -> socket.socket:
    try:
        return bind(address)
    except error as exc:
        _fail(f"address: {exc}")
        raise  # unreachable: _fail exits


def _run_workers(
    cfg: Config,
    sock: socket.socket,
    workers: int,
    loop_factory: LoopFactory,
    quiet: bool,
    client_cert: str,
    client_key: str,
    extra: str,
) -> None:
    from kes_server.server import StartupError, run
    from kes_server.workers import Relay, run_workers

    if cfg.keystore is None:
        _fail(
            "--workers needs a shared key store (keystore.fs, keystore.etcd, keystore.vault "
            "or keystore.aws); the in-memory store would differ per worker"
        )

    def start(index: int, sock: socket.socket, relay: Relay) -> int:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(
                    run(
                        cfg,
                        quiet=quiet or index > 0,
                        client_cert=client_cert,
                        client_key=client_key,
                        extra_banner=extra,
                        sock=sock,
                        relay=relay,
                    )
                )
        except StartupError as exc:
            click.echo(f"kes-server: worker {index}: {exc}", err=True)
            return EXIT_CONFIG
        except KeyboardInterrupt:
            pass
        return 0

    sys.exit(run_workers(sock, workers, start, log_errors=cfg.log.error))


if __name__ == "__main__":
    main()
