"""Starting the servers under test: kes-server, the bare baseline, the real KES.

A bench-specific launcher rather than tests/support/server.py: the benchmark
must run from ``pip install -e '.[bench]'`` alone (no trustme, no httpx on the
readiness path), start many servers quickly, and know the process id to read
its CPU time from /proc. Certificates are generated once per run; every
server reuses them, so start-up costs no key generation.

Every server can be pinned to a set of cores (``cpus``): the bench gives the
server under test core 0 and the load generator core 1, so each row is one
core's worth of server, comparable across servers and runs (``Pinning``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.loadgen import Target, request_once
from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem

__all__ = [
    "Certs",
    "Pinning",
    "Running",
    "baseline_server",
    "free_port",
    "kes_server",
    "make_certs",
    "pinning",
    "real_kes",
    "upstream_binary",
]

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 30.0
#: Where the real KES v0.17.6 is looked for (../shared/infra/kes-upstream/build.sh puts it there).
UPSTREAM_ENV = "KES_UPSTREAM_BIN"
UPSTREAM_DEFAULT = Path.home() / ".cache" / "kes-upstream" / "bin" / "kes"


@dataclass(frozen=True)
class Pinning:
    """Which cores the server under test and the load generator run on (empty: any)."""

    server: tuple[int, ...]
    load: tuple[int, ...]

    def describe(self) -> str:
        if not self.server:
            return "not pinned (fewer than 2 usable cores)"
        return (
            f"server on core {','.join(map(str, self.server))}, "
            f"load generator on core {','.join(map(str, self.load))}"
        )


def pinning() -> Pinning:
    """The first usable core for the server, the second for the load generator."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return Pinning((), ())
    return Pinning((cores[0],), (cores[1],))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Certs:
    """The run's server certificate and the root client identity (the load generator's)."""

    directory: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_identity: str

    def target(self, port: int) -> Target:
        return Target(
            "127.0.0.1", port, str(self.server_cert), str(self.client_cert), str(self.client_key)
        )


def make_certs(directory: Path) -> Certs:
    """ECDSA P-256 everywhere: what MinIO's certificates usually are, and cheap to verify."""
    directory.mkdir(parents=True, exist_ok=True)
    skey, scert = new_identity(
        "localhost", server=True, dns=("localhost",), ips=("127.0.0.1",), key_type="ecdsa"
    )
    ckey, ccert = new_identity("bench-root", key_type="ecdsa")
    paths = {
        "server.cert": scert,
        "server.key": skey,
        "client.cert": ccert,
        "client.key": ckey,
    }
    for name, data in paths.items():
        (directory / name).write_bytes(data)
        os.chmod(directory / name, 0o600)
    return Certs(
        directory,
        directory / "server.cert",
        directory / "server.key",
        directory / "client.cert",
        directory / "client.key",
        identity_of_pem(ccert),
    )


@dataclass
class Running:
    """A started server: where to connect and whose CPU to measure."""

    name: str
    target: Target
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_ready(running: Running) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"{running.name} exited early:\n{running.logs()}")
        with contextlib.suppress(OSError, asyncio.TimeoutError, ValueError):
            status, _ = asyncio.run(request_once(running.target, "GET", "/version", timeout=2.0))
            if status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{running.name} did not become ready:\n{running.logs()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _launch(
    name: str,
    argv: list[str],
    target: Target,
    log: Path,
    env: Mapping[str, str],
    cpus: tuple[int, ...] = (),
) -> Iterator[Running]:
    """Start ``argv`` (on ``cpus`` only, when given; before its first instruction, so
    every thread it ever starts inherits the mask), wait until it answers, stop it."""
    pin = functools.partial(os.sched_setaffinity, 0, cpus) if cpus else None
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=REPO,
            preexec_fn=pin,  # safe: the bench starts servers from its only thread
        )
    running = Running(name, target, process, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        _stop(process)


@contextlib.contextmanager
def kes_server(
    certs: Certs,
    work: Path,
    *,
    name: str = "kes",
    store: str = "mem",
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    cpus: tuple[int, ...] = (),
) -> Iterator[Running]:
    """kes-server with ``--auth off``, the bench client as root, audit to stdout off.

    ``store``: ``mem`` (no keystore section) or ``fs`` (a fresh directory);
    anything else is passed as the ``keystore`` section through ``config``.
    ``args`` go to the command line as they are (e.g. ``--loop asyncio``), so
    one bench can measure the server in any of its configurations.
    """
    port = free_port()
    directory = work / f"{name}-{port}"
    directory.mkdir(parents=True)
    cfg: dict[str, Any] = {
        "address": f"127.0.0.1:{port}",
        "root": certs.client_identity,
        "tls": {"cert": str(certs.server_cert), "key": str(certs.server_key)},
        "log": {"error": "on", "audit": "off"},
    }
    if store == "fs":
        cfg["keystore"] = {"fs": {"path": str(directory / "keys")}}
    cfg.update(config or {})
    (directory / "config.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    argv = [
        sys.executable,
        "-m",
        "kes_server",
        "--config",
        str(directory / "config.yml"),
        "--auth",
        "off",
        "--quiet",
    ]
    if workers != 1:
        argv += ["--workers", str(workers)]
    argv += args
    with _launch(
        name,
        argv,
        certs.target(port),
        directory / "server.log",
        {**os.environ, **(env or {})},
        cpus,
    ) as running:
        yield running


@contextlib.contextmanager
def baseline_server(
    certs: Certs, work: Path, *, loop: str = "asyncio", cpus: tuple[int, ...] = ()
) -> Iterator[Running]:
    """bench/baseline_server.py on a free port, on the ``loop`` event loop."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.baseline_server",
        "--addr",
        f"127.0.0.1:{port}",
        "--cert",
        str(certs.server_cert),
        "--key",
        str(certs.server_key),
        "--loop",
        loop,
    ]
    with _launch(
        f"baseline-{loop}",
        argv,
        certs.target(port),
        work / f"baseline-{port}.log",
        os.environ,
        cpus,
    ) as running:
        yield running


def upstream_binary() -> Path:
    """The real KES binary, or RuntimeError saying where it was looked for and how to get it."""
    path = Path(os.environ.get(UPSTREAM_ENV) or UPSTREAM_DEFAULT).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"no real KES binary at {path} (${UPSTREAM_ENV} or its default)")
    return path


@contextlib.contextmanager
def real_kes(certs: Certs, work: Path, *, cpus: tuple[int, ...] = ()) -> Iterator[Running]:
    """The real KES (Go) with ``--auth=off``, in-memory keys, the bench client as admin.

    ``GOMAXPROCS`` is the number of ``cpus`` (1 when pinned to one core), so the Go
    scheduler does not run more threads than the cores it may use.
    """
    binary = upstream_binary()
    port = free_port()
    directory = work / f"kes-upstream-{port}"
    directory.mkdir(parents=True)
    cfg = {
        "address": f"127.0.0.1:{port}",
        "admin": {"identity": certs.client_identity},
        "tls": {"cert": str(certs.server_cert), "key": str(certs.server_key)},
        "log": {"error": "on", "audit": "off"},
    }
    (directory / "config.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    argv = [str(binary), "server", "--config", str(directory / "config.yml"), "--auth=off"]
    env = {**os.environ, "GOMAXPROCS": str(len(cpus) or os.cpu_count() or 1)}
    with _launch(
        "kes-upstream", argv, certs.target(port), directory / "server.log", env, cpus
    ) as running:
        yield running
