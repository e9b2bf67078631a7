"""The documented CLI examples, pasted as a user would after `make run`.

`make run` is `kes-server --dev --state-dir .kes-dev`; here the same dev
server runs in a temporary directory on a free port, its banner's `export`
lines are taken verbatim, and the example blocks of the README section and
of docs/cli.md are run with bash. Blocks that run until Ctrl-C (traces,
`--rate`, `kes server`) or use placeholder paths are left out; the trace
pipeline is covered by test_e2e_cli.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kes_client import Client, KESError
from tests.support.paths import REPO_ROOT
from tests.support.server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = REPO_ROOT / "README.md"
REFERENCE = REPO_ROOT / "docs" / "cli.md"
#: Blocks containing these do not finish on their own or need files we lack.
NOT_RUNNABLE = ("log trace", "kes log", "--rate", "kes server", "/path/to", "export KES_SERVER")


def sh_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture(name="dev_server")
def _dev_server(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A fresh `make run` server in ``tmp_path``; yields the directory and the banner's exports.

    One per test: each document is meant to be followed from a fresh start.
    """
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kes_server",
                "--dev",
                "--state-dir",
                ".kes-dev",
                "--addr",
                f"127.0.0.1:{port}",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        exports: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            exports = re.findall(r"export KES_\w+=\S+", log.read_text(errors="replace"))
            if len(exports) == 3:
                try:
                    with Client(
                        f"127.0.0.1:{port}",
                        cert=tmp_path / ".kes-dev/root.cert",
                        key=tmp_path / ".kes-dev/root.key",
                        insecure=True,
                        timeout=2.0,
                    ) as client:
                        client.version()
                    break
                except KESError:
                    pass
            time.sleep(0.2)
        else:
            raise AssertionError("dev server did not start:\n" + log.read_text(errors="replace"))
        yield tmp_path, exports
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_examples(
    directory: Path, exports: list[str], blocks: list[str]
) -> subprocess.CompletedProcess[str]:
    script = "\n".join(
        [
            "set -euo pipefail",
            f"export PATH={Path(sys.executable).parent}:$PATH",
            *exports,  # what the banner said to paste, in place of the docs' copy
            *blocks,
        ]
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=100,
        env={k: v for k, v in os.environ.items() if not k.startswith("KES_")},
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def readme_section(title: str) -> str:
    readme = README.read_text(encoding="utf-8")
    return readme.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


@pytest.mark.timeout(120)
def test_readme_commands_work_pasted_in_order(dev_server: tuple[Path, list[str]]) -> None:
    """Quick start, then the CLI section, then the console section's `kes` line: one server,
    one shell, in the README's order (no name created twice, no `kes` call without -k)."""
    directory, exports = dev_server
    server = next(e.split("=", 1)[1] for e in exports if e.startswith("export KES_SERVER="))
    quick = next(b for b in sh_blocks(readme_section("Quick start")) if "curl" in b)
    dek = directory / ".kes-dev" / "dek.json"  # not /tmp: other test runs share it
    quick = quick.replace("https://127.0.0.1:7373", server).replace("/tmp/dek.json", str(dek))
    blocks = sh_blocks(readme_section("Using the CLI"))
    setup, examples = blocks[0], [b for b in blocks[1:] if not any(n in b for n in NOT_RUNNABLE)]
    assert "export KES_SERVER=" in setup and "activate" in setup
    assert len(examples) == len(blocks) - 2  # only the trace block is skipped
    console = next(b for b in sh_blocks(readme_section("Terminal console")) if "kes-tui" in b)
    console_cli = [line for line in console.splitlines() if line.startswith("kes ")]
    assert console_cli and all(" -k " in line for line in console_cli)
    result = run_examples(directory, exports, [quick, *examples, *console_cli])
    assert "hello" in result.stdout
    assert "app-key" in result.stdout
    assert result.stderr.strip().splitlines()[-1] in (
        "Error: prohibited by policy",
        "Error: not authorized: insufficient permissions",
    )
    # The quick start's data key decrypts to the plaintext generate returned.
    generated = json.loads(dek.read_text())
    answers = [json.loads(line) for line in result.stdout.splitlines() if '"plaintext"' in line]
    assert answers[0] == generated and answers[1] == {"plaintext": generated["plaintext"]}
    # Nothing was written into the working directory (the repository, for a user).
    assert sorted(p.name for p in directory.iterdir()) == [".kes-dev", "server.log"]


@pytest.mark.timeout(120)
def test_reference_examples_work(dev_server: tuple[Path, list[str]]) -> None:
    """docs/cli.md's examples, with the dev CA trusted through SSL_CERT_FILE (no -k)."""
    directory, exports = dev_server
    blocks = [
        block
        for block in sh_blocks(REFERENCE.read_text(encoding="utf-8"))
        if not any(marker in block for marker in NOT_RUNNABLE)
    ]
    assert any("kes key create" in block for block in blocks)
    trust = f"export SSL_CERT_FILE={directory / '.kes-dev' / 'server.cert'}"
    result = run_examples(directory, [*exports, trust], blocks)
    assert "hello" in result.stdout
