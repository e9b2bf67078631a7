"""nginx as a real TLS proxy in front of kes-servers, run from docs/examples/nginx.conf.

The documented config is the tested config: ``render_site`` takes the example
file and replaces only deployment-specific values (upstream servers, listen
address, certificate paths, the upstream TLS name), failing loudly if one of
those directives disappears from the example. ``main_config`` wraps it in a
private nginx prefix (pid, temp dirs, logs) so nothing system-wide is used;
nginx runs in the foreground and stops on SIGTERM (see
../shared/infra/nginx/README.md for the behaviour measured on this machine).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO_ROOT

__all__ = [
    "EXAMPLE_CONFIG",
    "NginxProxy",
    "main_config",
    "nginx_binary",
    "render_site",
    "start_nginx",
]

EXAMPLE_CONFIG = REPO_ROOT / "docs" / "examples" / "nginx.conf"
READY_TIMEOUT_S = 10.0


def nginx_binary() -> str:
    """nginx (``NGINX_BIN`` overrides); Debian installs it in /usr/sbin."""
    found = (
        os.environ.get("NGINX_BIN")
        or shutil.which("nginx")
        or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    )
    if not found:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    return found


def _set_directive(text: str, name: str, value: str) -> str:
    """Replace the value of the one ``name ...;`` line (indentation kept)."""
    pattern = re.compile(rf"^(\s*){re.escape(name)}\s+[^;\n]*;", re.MULTILINE)
    new, count = pattern.subn(lambda m: f"{m.group(1)}{name} {value};", text)
    if count != 1:
        raise ValueError(f"{EXAMPLE_CONFIG.name}: expected one '{name}' directive, found {count}")
    return new


def render_site(
    text: str,
    *,
    listen: str,
    upstreams: Sequence[str],
    server_cert: Path,
    server_key: Path,
    client_cert: Path,
    client_key: Path,
    upstream_ca: Path,
    upstream_name: str = "localhost",
) -> str:
    """The example site with this deployment's addresses and files filled in.

    Upstream servers keep the example's parameters (``max_fails=...``).
    """
    block = re.search(r"upstream\s+kes_backends\s*\{(.*?)\n\}", text, re.DOTALL)
    if block is None:
        raise ValueError(f"{EXAMPLE_CONFIG.name}: no 'upstream kes_backends' block")
    body = block.group(1)
    servers = re.findall(r"^(\s*)server\s+\S+(\s[^;\n]*)?;", body, re.MULTILINE)
    if not servers:
        raise ValueError(f"{EXAMPLE_CONFIG.name}: the upstream block lists no server")
    indent, params = servers[0][0], servers[0][1] or ""
    lines = "".join(f"{indent}server {address}{params};" for address in upstreams)
    body = re.sub(r"^\s*server\s+\S+(\s[^;\n]*)?;", "", body, flags=re.MULTILINE)
    body = lines + body
    text = text[: block.start(1)] + body + text[block.end(1) :]
    values = {
        "listen": f"{listen} ssl http2",
        "ssl_certificate": str(server_cert),
        "ssl_certificate_key": str(server_key),
        "proxy_ssl_trusted_certificate": str(upstream_ca),
        "proxy_ssl_name": upstream_name,
        "proxy_ssl_certificate": str(client_cert),
        "proxy_ssl_certificate_key": str(client_key),
    }
    for name, value in values.items():
        text = _set_directive(text, name, value)
    return text


def _worker_user() -> str | None:
    """As root nginx needs an unprivileged worker user; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("www-data", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    return "nobody"


def main_config(site: str, *, prefix: Path, user: str | None) -> str:
    """A complete nginx.conf around ``site`` that only uses ``prefix``."""
    user_line = "# not root: workers run as the current user"
    if user:
        group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        user_line = f"user {user} {group};"
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user_line}\n"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        "error_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    log_format kes '$remote_addr \"$request\" $status upstream=$upstream_addr';\n"
        f"    access_log {prefix / 'access.log'} kes;\n"
        f"{temp}\n"
        f"{site}\n"
        "}\n"
    )


@dataclass
class NginxProxy:
    """One nginx process; ``url`` is what clients connect to."""

    prefix: Path
    host: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.prefix / "nginx.conf"

    def check(self) -> None:
        """``nginx -t``: raises with nginx's message when the config is invalid."""
        result = subprocess.run(
            [nginx_binary(), "-e", "stderr", "-p", str(self.prefix), "-c", str(self.config_path)]
            + ["-t"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{result.stderr}")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [nginx_binary(), "-e", "stderr", "-p", str(self.prefix)]
                + ["-c", str(self.config_path), "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("nginx exited:\n" + self.log_path.read_text(errors="replace"))
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as raw:
                    with ctx.wrap_socket(raw, server_hostname=self.host):
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start listening in time") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGTERM), as the shared run-nginx.sh does."""
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

    def logs(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        access = self.prefix / "access.log"
        return text + (access.read_text(errors="replace") if access.exists() else "")


@contextlib.contextmanager
def start_nginx(
    *,
    host: str,
    port: int,
    upstreams: Sequence[str],
    server_cert: Path,
    server_key: Path,
    client_cert: Path,
    client_key: Path,
    upstream_ca: Path,
    upstream_name: str = "localhost",
    log_path: Path | None = None,
    edit_site: Callable[[str], str] | None = None,
) -> Iterator[NginxProxy]:
    """Run the example config as a proxy for ``upstreams`` until the block ends.

    ``edit_site`` changes the rendered site before nginx sees it, for tests of
    a deployment that departs from the example (e.g. one that forwards
    ``Upgrade``, as a common websocket snippet does).

    The prefix is a fresh directory under the system temp dir (not pytest's
    0700 tree) handed to the worker user, because as root the workers run as
    www-data and must be able to use the temp dirs.
    """
    prefix = Path(tempfile.mkdtemp(prefix="kes-nginx."))
    user = _worker_user()
    try:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "tmp" / kind).mkdir(parents=True)
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in [prefix, *prefix.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        site = render_site(
            EXAMPLE_CONFIG.read_text(encoding="utf-8"),
            listen=f"{host}:{port}",
            upstreams=upstreams,
            server_cert=server_cert,
            server_key=server_key,
            client_cert=client_cert,
            client_key=client_key,
            upstream_ca=upstream_ca,
            upstream_name=upstream_name,
        )
        if edit_site is not None:
            site = edit_site(site)
        proxy = NginxProxy(prefix, host, port, log_path or prefix / "nginx.log")
        proxy.config_path.write_text(main_config(site, prefix=prefix, user=user), "utf-8")
        proxy.check()
        proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
