"""docs/production.md and docs/examples/: the recipe works as written.

A temporary directory plays the server host (``/etc/kes``, ``/var/lib/kes``);
the example files are used as they are, with only those paths and the listen
address replaced. The systemd unit is checked by ``systemd-analyze verify``;
the container image cannot be built here (no container engine), so the
Containerfile is checked statically and its ENTRYPOINT + CMD are run as a
plain process, as the unit's ExecStart is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from kes_client import Client, KESError, KeyNotFound, NotAllowed, Policy
from kes_server.core.config import load_config
from tests.support.paths import REPO_ROOT
from tests.support.server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCS = REPO_ROOT / "docs"
EXAMPLES = DOCS / "examples"
BIN = Path(sys.executable).parent
#: An application identity assigned through the API (not in the config file).
APP_IDENTITY = "3ecf" + "0" * 60


def sh_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)


def unit_exec_start() -> list[str]:
    unit = (EXAMPLES / "kes-server.service").read_text(encoding="utf-8")
    line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def containerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (EXAMPLES / "Containerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def container_command() -> list[str]:
    steps = dict(containerfile())
    return [*json.loads(steps["ENTRYPOINT"]), *json.loads(steps["CMD"])]


# ---------------------------------------------------------------- static checks


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    argv = unit_exec_start()
    assert argv == [
        "/opt/pykes/bin/kes-server",
        "--config",
        "/etc/kes/config.yml",
        "--auth",
        "off",
        "--mlock",
    ]
    # verify also checks that ExecStart exists: point it at this checkout's install.
    unit = (EXAMPLES / "kes-server.service").read_text(encoding="utf-8")
    local = tmp_path / "kes-server.service"
    local.write_text(unit.replace(argv[0], str(BIN / "kes-server")), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings


def test_containerfile_is_complete() -> None:
    steps = containerfile()
    instructions = [name for name, _ in steps]
    assert instructions[0] == "FROM"
    for name, args in steps:
        if name == "COPY":  # every source exists in the build context (the repository root)
            *sources, _destination = args.split()
            for source in sources:
                assert (REPO_ROOT / source).exists(), source
    settings = dict(steps)
    assert settings["USER"] == "10001"  # not root, and the uid production.md creates
    assert json.loads(settings["VOLUME"]) == ["/var/lib/kes"]
    assert settings["EXPOSE"] == "7373"
    # the container runs what the unit runs, minus --mlock (needs IPC_LOCK in a container)
    assert container_command() == ["kes-server", *unit_exec_start()[1:-1]]
    config = (EXAMPLES / "production-config.yml").read_text(encoding="utf-8")
    assert "path: /var/lib/kes/keys" in config and "address: 0.0.0.0:7373" in config


def test_production_config_loads() -> None:
    text = (EXAMPLES / "production-config.yml").read_text(encoding="utf-8")
    cfg = load_config(text, {"KES_ROOT_IDENTITY": "a" * 64, "KES_PROMETHEUS_IDENTITY": "b" * 64})
    assert cfg.root == "a" * 64 and cfg.keystore is not None
    policy = next(p for p in cfg.policies if p.name == "prometheus")
    assert policy.identities == ("b" * 64,)


def test_readme_links_production_and_has_no_undefined_variables() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running a real server", 1)[1].split("\n## ", 1)[0]
    assert "docs/production.md" in section
    assert "$ROOT_IDENTITY" not in readme


# ---------------------------------------------------------------- a production host


@dataclass
class Host:
    """A temporary stand-in for the server host, laid out as production.md says."""

    root: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "kes"

    @property
    def var(self) -> Path:
        return self.root / "var" / "lib" / "kes"

    def localize(self, text: str) -> str:
        """The example's absolute paths and address, moved into this host."""
        return (
            text.replace("/etc/kes", str(self.etc))
            .replace("/var/lib/kes", str(self.var))
            .replace("0.0.0.0:7373", f"127.0.0.1:{self.port}")
        )

    def admin(self, name: str = "root") -> Client:
        return Client(
            f"https://127.0.0.1:{self.port}",
            cert=self.root / f"{name}.cert",
            key=self.root / f"{name}.key",
            ca=self.etc / "server.cert",
        )

    def start(self, argv: list[str]) -> None:
        command = [str(BIN / argv[0].rsplit("/", 1)[-1]), *argv[1:]]
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [self.localize(arg) for arg in command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.admin() as kes:
                    kes.version()
                return
            except KESError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        (self.root / "server.log").read_text(errors="replace")
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def kes(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(BIN / "kes"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines, as systemd's EnvironmentFile and ``--env-file`` read them."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(name="host")
def _host(tmp_path: Path) -> Iterator[Host]:
    """Certificates, kes.env and config.yml made as production.md §2-3 say."""
    host = Host(tmp_path, free_port(), {})
    host.etc.mkdir(parents=True)
    (host.var / "keys").mkdir(parents=True, mode=0o700)
    kes("identity", "new", "--server", "--dns", "localhost", "--ip", "127.0.0.1", "-t", "8760h",
        "--key", "server.key", "--cert", "server.cert", "localhost", cwd=tmp_path)  # fmt: skip
    kes("identity", "new", "--key", "root.key", "--cert", "root.cert", "root", cwd=tmp_path)
    kes("identity", "new", "--key", "prometheus.key", "--cert", "prometheus.cert", "prometheus",
        cwd=tmp_path)  # fmt: skip
    identities = [kes("identity", "of", f"{n}.cert", cwd=tmp_path) for n in ("root", "prometheus")]
    env_file = host.etc / "kes.env"
    env_file.write_text(
        f"KES_ROOT_IDENTITY={identities[0]}\nKES_PROMETHEUS_IDENTITY={identities[1]}\n"
    )
    for name in ("server.cert", "server.key"):
        shutil.copy(tmp_path / name, host.etc / name)
    config = (EXAMPLES / "production-config.yml").read_text(encoding="utf-8")
    (host.etc / "config.yml").write_text(host.localize(config), encoding="utf-8")
    host.env = {**os.environ, **read_env_file(env_file)}
    host.env = {k: v for k, v in host.env.items() if not k.startswith("KES_CLIENT")}
    try:
        yield host
    finally:
        host.stop()


def test_keys_survive_a_restart_with_the_documented_command_lines(host: Host) -> None:
    """The README's old recipe lost every key on restart; this one keeps them."""
    host.start(container_command())
    with host.admin() as kes_:
        kes_.create_key("app-key")
        dek = kes_.generate_key("app-key", b"ctx")
    host.stop()
    host.start(unit_exec_start())  # the systemd unit's command line, --mlock included
    with host.admin() as kes_:
        assert [k.name for k in kes_.list_keys("*")] == ["app-key"]
        assert kes_.decrypt("app-key", dek.ciphertext, b"ctx") == dek.plaintext


def test_prometheus_scrapes_with_its_certificate_and_nothing_else(host: Host) -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text(encoding="utf-8"))
    job = config["scrape_configs"][0]
    assert job["scheme"] == "https" and job["metrics_path"] == "/v1/metrics"
    assert job["static_configs"][0]["targets"] == ["kes.example.net:7373"]
    tls = job["tls_config"]
    prometheus_dir = Path("/etc/prometheus/kes")
    local = {  # what production.md says to copy to the Prometheus host
        prometheus_dir / "server.cert": host.etc / "server.cert",
        prometheus_dir / "prometheus.cert": host.root / "prometheus.cert",
        prometheus_dir / "prometheus.key": host.root / "prometheus.key",
    }
    files = {name: local[Path(tls[name])] for name in ("ca_file", "cert_file", "key_file")}
    host.start(unit_exec_start())
    ctx = ssl.create_default_context(cafile=str(files["ca_file"]))
    ctx.load_cert_chain(str(files["cert_file"]), str(files["key_file"]))
    url = f"{job['scheme']}://127.0.0.1:{host.port}{job['metrics_path']}"
    with httpx.Client(verify=ctx, timeout=10) as http:
        response = http.get(url)
    assert response.status_code == 200 and "kes_http_request_success" in response.text
    with host.admin("prometheus") as prometheus:
        with pytest.raises(NotAllowed):
            prometheus.list_keys("*")


def test_fs_backup_and_restore_as_documented(host: Host) -> None:
    markdown = (DOCS / "production.md").read_text(encoding="utf-8")
    backup = next(b for b in sh_blocks(markdown) if "tar -C /var/lib/kes -czf" in b)
    restore = next(b for b in sh_blocks(markdown) if "tar -C /var/lib/kes -xzf" in b)
    restore = re.sub(r"\d{4}-\d{2}-\d{2}", "$(date +%F)", restore)
    gnupg = host.root / "gnupg"
    gnupg.mkdir(mode=0o700)
    # sudo, systemctl and chown are the host's business; this test stops and starts the
    # server itself and runs as one user. gpg gets its passphrase without a terminal.
    prelude = "\n".join(
        [
            "set -euo pipefail",
            'sudo() { "$@"; }',
            "systemctl() { :; }",
            "chown() { :; }",
            "gpg() { command gpg --batch --yes --pinentry-mode loopback "
            '--passphrase test-only "$@"; }',
        ]
    )

    def run(block: str) -> None:
        result = subprocess.run(
            ["bash", "-c", prelude + "\n" + host.localize(block)],
            cwd=host.root,
            capture_output=True,
            text=True,
            timeout=60,
            env={**host.env, "GNUPGHOME": str(gnupg)},
        )
        assert result.returncode == 0, result.stderr

    host.start(unit_exec_start())
    with host.admin() as kes_:
        kes_.create_key("kept")
        dek = kes_.generate_key("kept")
        kes_.write_policy("app", Policy(allow=("/v1/key/generate/kept",)))
        kes_.assign_identity("app", APP_IDENTITY)
    try:
        run(backup)
        with host.admin() as kes_:
            kes_.create_key("after-backup")
        host.stop()
        run(restore)
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"], env={**host.env, "GNUPGHOME": str(gnupg)}
        )
    host.start(unit_exec_start())
    with host.admin() as kes_:
        assert kes_.decrypt("kept", dek.ciphertext) == dek.plaintext
        with pytest.raises(KeyNotFound):
            kes_.generate_key("after-backup")
        # policies and assignments made through the API come back too (.pykes/)
        assert {i.identity: i.policy for i in kes_.list_identities("*")}[APP_IDENTITY] == "app"
        assert kes_.read_policy("app").allow == ("/v1/key/generate/kept",)
