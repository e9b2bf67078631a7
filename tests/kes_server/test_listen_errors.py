"""``kes-server`` cannot listen: one line, exit status 2, nothing printed or created before.

The listening socket is bound before the banner is printed, a ``--dev``
state directory is created or workers are forked
(kes_server/transport/listen.py), so an operator who mistyped ``--addr`` or
picked a busy port reads one ``kes-server: address: ...`` line and finds
nothing to clean up. Each case runs the real command in a subprocess.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.server import free_port

pytestmark = pytest.mark.e2e

EXIT_CONFIG = 2


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _kes_server(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kes_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == EXIT_CONFIG, done
    assert done.stderr == f"kes-server: address: {message}\n"
    assert done.stdout == "", "nothing (no banner) may be printed before listening"


BAD_ADDRESSES = {
    "no-port": ("127.0.0.1", "'127.0.0.1' is not HOST:PORT"),
    "port-over-65535": ("127.0.0.1:70000", "'70000' is not a port number (0-65535)"),
    "ipv6-without-brackets": (
        "::1:7373",
        "'::1:7373': write an IPv6 host in brackets, e.g. [::1]:7373",
    ),
    # 192.0.2.0/24 is reserved for documentation: no machine has it.
    "foreign-host": (
        "192.0.2.1:7373",
        "cannot listen on 192.0.2.1:7373: Cannot assign requested address",
    ),
    "unresolvable-host": (
        "no-such-host.invalid:7373",
        "cannot resolve 'no-such-host.invalid': Name or service not known",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ADDRESSES))
def test_bad_addr_with_dev_creates_nothing(tmp_path: Path, case: str) -> None:
    address, message = BAD_ADDRESSES[case]
    state = tmp_path / "new-state"
    _refused(_kes_server("--dev", "--state-dir", str(state), "--addr", address), message)
    assert not state.exists()


def test_port_in_use(tmp_path: Path, busy_port: int) -> None:
    address = f"127.0.0.1:{busy_port}"
    message = f"cannot listen on {address}: Address already in use"
    state = tmp_path / "new-state"
    _refused(_kes_server("--dev", "--state-dir", str(state), "--addr", address), message)
    assert not state.exists()
    # The same from a config file, and before any worker is forked.
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"address": address}))
    _refused(_kes_server("--config", str(config)), message)
    _refused(_kes_server("--config", str(config), "--workers", "2"), message)


def test_dev_on_an_ipv6_address(tmp_path: Path) -> None:
    """A bracketed IPv6 ``--addr`` is written to the generated config so it reads back."""
    port = free_port()
    address = f"[::1]:{port}"
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "kes_server", "--dev", "--state-dir", str(state), "--addr", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            try:
                ctx = ssl.create_default_context(cafile=str(state / "server.cert"))
                ctx.load_cert_chain(str(state / "root.cert"), str(state / "root.key"))
                with httpx.Client(base_url=f"https://{address}", verify=ctx, timeout=2) as c:
                    assert c.get("/version").status_code == 200
                break
            except (OSError, httpx.HTTPError):  # not written, or not listening, yet
                time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1]
        assert yaml.safe_load((state / "config.yml").read_text())["address"] == address
    finally:
        process.terminate()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()
