"""Screenshots of every kes-tui screen against a real dev server with a demo workload.

``make screenshots`` runs this: it starts ``kes-server --dev`` in a temporary
state directory, creates policies, identities and keys, runs a few client
"applications" (including one that keeps getting denied), drives the
console headless through each screen and writes ``screenshots/<screen>.svg``
and ``.png`` (PNG needs libcairo2 and a monospace font such as
fonts-dejavu-core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes.util
import random
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from kes_client import AsyncClient, Client, KESError, Policy
from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem
from kes_tui.app import KesApp
from kes_tui.model import StreamState
from kes_tui.screens import KeysScreen

ROOT = Path(__file__).resolve().parent.parent
SIZE = (128, 34)
NARROW = (80, 24)
SCREENS = ("audit", "errors", "keys", "policies", "identities", "status")
#: Textual's SVGs ask for Fira Code from the web; cairo renders offline.
FONT = "DejaVu Sans Mono"

POLICIES = {
    "my-app": Policy(allow=("/v1/key/generate/my-app-*", "/v1/key/decrypt/my-app-*")),
    "minio": Policy(
        allow=("/v1/key/create/minio-*", "/v1/key/generate/minio-*", "/v1/key/decrypt/minio-*"),
        deny=("/v1/key/create/minio-root",),
    ),
    "backup": Policy(allow=("/v1/key/*/*", "/v1/key/list/*"), deny=("/v1/key/delete/*",)),
    "monitoring": Policy(allow=("/v1/status", "/v1/metrics", "/v1/log/*/trace")),
}
KEYS = ("my-app-key", "my-app-2025", "minio-default", "minio-tenant-1", "backup-primary")


@dataclass(frozen=True)
class Who:
    name: str
    cert: Path
    key: Path
    identity: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_identity(directory: Path, name: str) -> Who:
    key_pem, cert_pem = new_identity(name, key_type="ecdsa")
    cert, key = directory / f"{name}.cert", directory / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return Who(name, cert, key, identity_of_pem(cert_pem))


@contextlib.contextmanager
def dev_server(state: Path) -> Iterator[str]:
    """``kes-server --dev`` on a free port; yields its URL."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kes_server",
            "--dev",
            "--state-dir",
            str(state),
            "--addr",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with root_client(url, state) as kes:
                    kes.version()
                break
            except (KESError, httpx.HTTPError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("kes-server --dev did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def root_client(url: str, state: Path) -> Client:
    return Client(url, cert=state / "root.cert", key=state / "root.key", ca=state / "server.cert")


def prepare(url: str, state: Path) -> list[Who]:
    """Policies, identities bound to them, and keys: a small but real deployment."""
    apps = [make_identity(state, name) for name in ("my-app", "minio", "backup", "monitoring")]
    apps.append(make_identity(state, "stranger"))  # no policy: everything is denied
    with root_client(url, state) as kes:
        for name, policy in POLICIES.items():
            kes.write_policy(name, policy)
        for who in apps[:4]:
            kes.assign_identity(who.name, who.identity)
        existing = {k.name for k in kes.list_keys("*")}
        for key in KEYS:
            if key not in existing:
                kes.create_key(key)
    return apps


async def workload(url: str, state: Path, apps: list[Who], stop: asyncio.Event) -> None:
    """Each app does what it is for, plus a few mistakes worth seeing in the console."""
    rng = random.Random(7)
    clients = {
        who.name: AsyncClient(url, cert=who.cert, key=who.key, ca=state / "server.cert")
        for who in apps
    }
    plan = [
        ("my-app", "generate", "my-app-key"),
        ("my-app", "decrypt", "my-app-key"),
        ("minio", "generate", "minio-default"),
        ("minio", "decrypt", "minio-tenant-1"),
        ("backup", "list", "*"),
        ("monitoring", "status", ""),
        ("my-app", "delete", "my-app-key"),  # denied
        ("minio", "create", "minio-root"),  # denied by the deny rule
        ("stranger", "list", "*"),  # no policy
        ("my-app", "decrypt-bad", "my-app-2025"),  # 400: not authentic
    ]
    try:
        while not stop.is_set():
            who, op, key = rng.choice(plan)
            kes = clients[who]
            with contextlib.suppress(KESError):
                if op == "generate":
                    await kes.generate_key(key)
                elif op == "decrypt":
                    dek = await clients["backup"].generate_key(key)
                    await kes.decrypt(key, dek.ciphertext)
                elif op == "decrypt-bad":
                    await kes.decrypt(
                        key, b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"","nonce":"","bytes":""}'
                    )
                elif op == "list":
                    await kes.list_keys(key)
                elif op == "status":
                    await kes.status()
                elif op == "delete":
                    await kes.delete_key(key)
                elif op == "create":
                    await kes.create_key(key)
            if rng.random() < 0.03:
                await bad_handshake(url)
            await asyncio.sleep(rng.uniform(0.01, 0.08))
    finally:
        for kes in clients.values():
            await kes.aclose()


async def bad_handshake(url: str) -> None:
    """A client without a certificate: the server logs it as an error event."""
    host, port = url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with contextlib.suppress(OSError, ssl.SSLError):
        _, writer = await asyncio.open_connection(host, int(port), ssl=ctx)
        writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        writer.close()


def to_png(svg: Path) -> Path | None:
    """Render an SVG screenshot to PNG with cairosvg, if cairo is installed."""
    if ctypes.util.find_library("cairo") is None:
        print("  (no libcairo2: PNG skipped; apt-get install libcairo2 fonts-dejavu-core)")
        return None
    import cairosvg

    text = svg.read_text(encoding="utf-8")
    text = text.replace("Fira Code, monospace", FONT).replace('"Fira Code"', f'"{FONT}"')
    png = svg.with_suffix(".png")
    cairosvg.svg2png(bytestring=text.encode(), write_to=str(png))
    return png


async def capture(url: str, state: Path, apps: list[Who], out: Path, warmup_s: float) -> None:
    root = state / "root.cert"
    client = AsyncClient(url, cert=root, key=state / "root.key", ca=state / "server.cert")
    app = KesApp(client, identity=identity_of_pem(root.read_bytes()))
    stop = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        load = asyncio.create_task(workload(url, state, apps, stop))
        await pilot.pause(warmup_s)
        for mode in SCREENS:
            await app.switch_mode(mode)
            screen = app.screen
            if isinstance(screen, KeysScreen):
                screen.action_reload()
            await pilot.pause(1.5 if mode == "status" else 0.6)
            if mode == "status":
                await pilot.pause(16)  # scrapes start when the screen shows: a few for the bars
            shoot(app, out, mode)
        await app.switch_mode("audit")
        await pilot.press("slash", *"status:403")  # the filter bar while typing
        await pilot.pause(0.5)
        shoot(app, out, "audit-filter")
        await pilot.press("enter", "space", "up", "enter")
        await pilot.pause(0.3)
        shoot(app, out, "audit-denied")
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.3)
        shoot(app, out, "help")
        await pilot.press("escape", "escape")
        await pilot.resize_terminal(*NARROW)  # an 80x24 SSH session
        await pilot.press("space", "up", "up", "enter")
        await pilot.pause(0.5)
        shoot(app, out, "narrow-detail")
        await pilot.press("escape")
        await app.switch_mode("identities")
        await pilot.pause(1.0)
        shoot(app, out, "narrow-identities")
        stop.set()
        await load
        app.set_header(audit=StreamState("offline"))


async def capture_untrusted(url: str, state: Path, out: Path) -> None:
    """The console started without --ca against the self-signed dev server."""
    root = state / "root.cert"
    client = AsyncClient(url, cert=root, key=state / "root.key")
    app = KesApp(client, identity=identity_of_pem(root.read_bytes()))
    async with app.run_test(size=SIZE) as pilot:
        while app.header.audit.phase != "failed":
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        shoot(app, out, "untrusted")


def shoot(app: KesApp, out: Path, name: str) -> None:
    svg = Path(app.save_screenshot(f"{name}.svg", str(out)))
    png = to_png(svg)
    print(
        f"  {svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg}"
        + (" + png" if png else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds of traffic first")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kes-screens-") as tmp:
        state = Path(tmp)
        with dev_server(state) as url:
            apps = prepare(url, state)
            print(f"capturing against {url} into {args.out}")
            asyncio.run(capture(url, state, apps, args.out, args.warmup))
            asyncio.run(capture_untrusted(url, state, args.out))


if __name__ == "__main__":
    main()
