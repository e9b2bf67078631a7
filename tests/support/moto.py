"""A real moto server (AWS Secrets Manager and KMS over HTTP) on loopback.

moto's standalone server speaks the AWS wire protocol, so the AWS store is
tested through the same SDK and HTTP calls it makes against AWS
(../shared/infra/aws/README.md). The launcher can stop, pause and restart the
server, which is how the tests take AWS away from a running kes-server.

One difference from plain ``moto_server``: requests are applied one at a
time. moto's CreateSecret checks for the name and then inserts it without a
lock, so two creates racing in its threads can both succeed, which AWS
never allows; serializing the requests gives moto AWS's atomic create, so a
race test measures kes-server, not moto. Run this module
(``python -m tests.support.moto -H 127.0.0.1 -p PORT``) for such a server;
it takes ``moto_server``'s options.

For tests: the session-wide ``moto_server`` fixture (registered in
tests/conftest.py), ``start_moto`` for a private server, ``secrets_client`` for
seeding AWS directly as KES v0.17 would have, ``store_config`` for the
kes-server config section.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.paths import REPO_ROOT
from tests.support.server import free_port

if TYPE_CHECKING:
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_kms import KMSClient
    from types_aiobotocore_secretsmanager import SecretsManagerClient

__all__ = [
    "ACCESS_KEY",
    "REGION",
    "SECRET_KEY",
    "MotoServer",
    "kms_client",
    "moto_server",
    "secrets_client",
    "start_moto",
    "store_config",
]

READY_TIMEOUT_S = 30.0
#: moto accepts any credentials; these are what the tests configure.
ACCESS_KEY = "AKIAPYKESTEST0000000"
SECRET_KEY = "pykes-test-secret-key-never-logged"
REGION = "us-east-1"


@dataclass
class MotoServer:
    """One moto server process; ``start`` again after ``stop`` on the same port."""

    port: int
    log_path: Path
    #: Extra environment for moto, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT=0`` (enforce IAM).
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (with empty state: moto keeps everything in memory) and wait until it answers."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.moto",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, "PYTHONPATH": str(REPO_ROOT)},
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._answers():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"moto exited; log: {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto did not answer in time; log: {self.log_path}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1.0) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM; SIGKILL if it hangs) and wait until the port is free."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot exit
            self.process.terminate()
            try:
                self.process.wait(5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel but never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def reset(self) -> None:
        """Forget every secret and KMS key (moto's own reset call)."""
        request = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=5.0) as response:
            response.read()


@contextlib.contextmanager
def start_moto(
    directory: Path, *, start: bool = True, env: dict[str, str] | None = None
) -> Iterator[MotoServer]:
    """A moto server on a free port for the block (``start=False``: not started yet)."""
    directory.mkdir(parents=True, exist_ok=True)
    server = MotoServer(port=free_port(), log_path=directory / "moto.log", env=env or {})
    try:
        if start:
            server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(name="moto_server", scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the whole session (tests that stop moto start their own)."""
    with start_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


def secrets_client(
    moto: MotoServer, region: str = REGION
) -> ClientCreatorContext[SecretsManagerClient]:
    """A Secrets Manager client talking to moto directly, as KES v0.17 (or a person) would."""
    from aiobotocore.session import get_session

    return get_session().create_client(
        "secretsmanager",
        region_name=region,
        endpoint_url=moto.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def kms_client(moto: MotoServer) -> ClientCreatorContext[KMSClient]:
    from aiobotocore.session import get_session

    return get_session().create_client(
        "kms",
        region_name=REGION,
        endpoint_url=moto.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def store_config(moto: MotoServer, *, credentials: bool = True, **fields: str) -> dict[str, Any]:
    """The ``keystore:`` section of a kes-server config for this moto server."""
    section: dict[str, Any] = {"endpoint": moto.endpoint, "region": REGION, **fields}
    if credentials:
        section["credentials"] = {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}
    return {"aws": {"secretsmanager": section}}


def _serve_serialized(argv: list[str]) -> None:
    """moto's own server, with each request applied under one lock (see the module doc)."""
    from moto import server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    dispatch = DomainDispatcherApplication.__call__

    def one_at_a_time(
        self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any
    ) -> Any:
        with lock:
            return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = one_at_a_time  # type: ignore[method-assign]
    server.main(argv)


if __name__ == "__main__":
    _serve_serialized(sys.argv[1:])
