"""A real etcd cluster on loopback, whose members can be killed and restarted.

Tests (and ``make cluster``) need what the shared ``run-etcd-cluster.sh``
cannot give: restarting one member on its old data directory to prove that
kes-servers recover without a restart of their own. So this launcher starts
each member itself, with the same flags as that script (see
../shared/infra/etcd/README.md for the measured behaviour), on free ports and
a fresh cluster token, and keeps every member's process handle.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import free_port

__all__ = [
    "EtcdCluster",
    "EtcdMember",
    "EtcdTLS",
    "etcd_binary",
    "new_cluster",
    "start_etcd_cluster",
]

READY_TIMEOUT_S = 30.0
#: SIGTERM first; members that lost quorum may hang on stop, then SIGKILL.
STOP_GRACE_S = 2.0


def etcd_binary() -> str:
    """The etcd server binary (``ETCD_BIN`` overrides); installed by ``make apt-test``."""
    found = os.environ.get("ETCD_BIN") or shutil.which("etcd")
    if not found:
        raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
    return found


def _post(
    url: str, body: dict[str, object], tls: EtcdTLS | None, timeout: float = 1.0
) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    ctx = tls.client_context() if tls else None
    with urllib.request.urlopen(request, timeout=timeout, context=ctx) as response:
        doc = json.loads(response.read())
    return doc if isinstance(doc, dict) else {}


@dataclass(frozen=True)
class EtcdTLS:
    """Client-port TLS: etcd's certificate and the CA that issued the client certificates.

    With it the members require client certificates (``--client-cert-auth``).
    """

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    tls: EtcdTLS | None = None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or restart on the same data dir: etcd then ignores the initial-* flags)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [etcd_binary(), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self, sig: int = signal.SIGKILL, timeout: float = STOP_GRACE_S) -> None:
        """Stop the member with ``sig`` (SIGKILL: a crash) and wait for it to exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def healthy(self) -> bool:
        try:
            ctx = self.tls.client_context() if self.tls else None
            url = self.endpoint + "/health"
            with urllib.request.urlopen(url, timeout=1.0, context=ctx) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"etcd {self.name} exited; log: {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd {self.name} not healthy in time; log: {self.log_path}")
            time.sleep(0.1)

    def status(self) -> dict[str, object]:
        """``/v3/maintenance/status``: member id and the leader it sees."""
        return _post(self.endpoint + "/v3/maintenance/status", {}, self.tls)


@dataclass
class EtcdCluster:
    directory: Path
    members: list[EtcdMember]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self) -> None:
        for member in self.members:
            member.start()
        for member in self.members:
            member.wait_healthy()

    def leader(self) -> int:
        """Index of the current leader, as the live members see it."""
        ids: dict[str, int] = {}
        leaders: set[str] = set()
        for i, member in enumerate(self.members):
            if not member.running:
                continue
            with contextlib.suppress(OSError, ValueError):
                doc = member.status()
                header = doc.get("header")
                if isinstance(header, dict):
                    ids[str(header.get("member_id"))] = i
                leaders.add(str(doc.get("leader", "")))
        for leader in leaders:
            if leader in ids:
                return ids[leader]
        raise RuntimeError("the etcd cluster has no leader")

    def followers(self) -> list[int]:
        leader = self.leader()
        return [i for i, m in enumerate(self.members) if m.running and i != leader]

    def stop(self) -> None:
        """Stop the members one by one (SIGTERM, SIGKILL after a grace period).

        One at a time, because members stopping all at once can hang without
        quorum until killed (shared/infra/etcd/README.md).
        """
        for member in self.members:
            member.kill(signal.SIGTERM, timeout=STOP_GRACE_S / 2)


def new_cluster(directory: Path, size: int = 3, tls: EtcdTLS | None = None) -> EtcdCluster:
    """Members on free loopback ports with a fresh token (nothing started yet)."""
    directory.mkdir(parents=True, exist_ok=True)
    ports = [(free_port(), free_port()) for _ in range(size)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    token = f"kes-test-{os.getpid()}-{time.monotonic_ns()}"
    members = []
    for i, (client, peer) in enumerate(ports):
        member = EtcdMember(
            name=f"m{i}",
            client_port=client,
            peer_port=peer,
            data_dir=directory / f"m{i}.etcd",
            log_path=directory / f"m{i}.log",
            tls=tls,
        )
        member.args = [
            "--name",
            member.name,
            "--data-dir",
            str(member.data_dir),
            "--listen-client-urls",
            member.endpoint,
            "--advertise-client-urls",
            member.endpoint,
            "--listen-peer-urls",
            member.peer_url,
            "--initial-advertise-peer-urls",
            member.peer_url,
            "--initial-cluster",
            initial,
            "--initial-cluster-token",
            token,
            "--initial-cluster-state",
            "new",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ]
        if tls is not None:
            member.args += [
                "--cert-file",
                str(tls.cert),
                "--key-file",
                str(tls.key),
                "--client-cert-auth",
                "--trusted-ca-file",
                str(tls.ca),
            ]
        members.append(member)
    return EtcdCluster(directory, members)


@contextlib.contextmanager
def start_etcd_cluster(
    directory: Path, size: int = 3, tls: EtcdTLS | None = None
) -> Iterator[EtcdCluster]:
    """A healthy ``size``-member cluster for the duration of the block."""
    cluster = new_cluster(directory, size, tls)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
