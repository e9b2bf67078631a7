"""CLI behaviour that needs no server: wiring, parsing, error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kes_client.cli import cli
from kes_client.cli._output import format_duration_ns, render_pairs, render_table
from kes_client.cli._params import parse_duration_s
from kes_client.cli.status import _summary, parse_prometheus
from tests.support.paths import REPO_ROOT

CLI_DOC = REPO_ROOT / "docs" / "cli.md"

NO_ENV = {
    "KES_SERVER": "",
    "KES_CLIENT_CERT": "",
    "KES_CLIENT_KEY": "",
    "KES_CLIENT_TLS_CERT_FILE": "",
    "KES_CLIENT_TLS_KEY_FILE": "",
}


@pytest.fixture(name="runner")
def _runner() -> CliRunner:
    return CliRunner()


def test_missing_certificate_is_one_error_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["key", "list"], env=NO_ENV)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no TLS client certificate. Environment variable 'KES_CLIENT_CERT' is not set\n"
    )
    assert result.stdout == ""


def test_missing_certificate_file(runner: CliRunner) -> None:
    env = {**NO_ENV, "KES_CLIENT_CERT": "/nonexistent.cert", "KES_CLIENT_KEY": "/x.key"}
    result = runner.invoke(cli, ["status"], env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot read client certificate '/nonexistent.cert': no such file\n"
    )


def test_bad_base64_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["key", "decrypt", "k", "not base64!"], env=NO_ENV)
    assert result.exit_code == 2
    assert "CIPHERTEXT is not valid base64" in result.stderr


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["key", "frobnicate"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["key", "ls", "--help"], "Usage: kes key list"),
        (["key", "rm", "--help"], "Usage: kes key delete"),
        (["key", "derive", "--help"], "Usage: kes key generate"),
        (["policy", "add", "--help"], "Usage: kes policy write"),
        (["policy", "rm", "--help"], "Usage: kes policy delete"),
        (["identity", "ls", "--help"], "Usage: kes identity list"),
        (["identity", "rm", "--help"], "Usage: kes identity forget"),
        (["tool", "identity", "of", "--help"], "Usage: kes tool identity of"),
        (["tool", "identity", "new", "--help"], "Usage: kes tool identity new"),
        (["log", "trace", "--help"], "Usage: kes log trace"),
        (["metrics", "--help"], "Usage: kes metric"),
    ],
)
def test_aliases_resolve(runner: CliRunner, args: list[str], expected: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(expected)


def test_version_flag(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "pykes" in result.stdout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("720h", 720 * 3600.0), ("1h30m", 5400.0), ("3s", 3.0), ("500ms", 0.5), ("0", 0.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


def test_bad_duration(runner: CliRunner) -> None:
    with pytest.raises(ValueError):
        parse_duration_s("soon")
    result = runner.invoke(cli, ["metric", "--rate", "soon"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (183_522, "184µs"),
        (2_000_000, "2ms"),
        (3_000_000_000, "3s"),
        (3_723_000_000_000, "1h2m3s"),
    ],
)
def test_duration_rendering(ns: int, text: str) -> None:
    assert format_duration_ns(ns) == text


def test_prometheus_summary() -> None:
    text = """
# HELP kes_http_request_success Number of successful requests.
# TYPE kes_http_request_success counter
kes_http_request_success_total 8
kes_http_request_error 2
kes_http_request_failure 0
kes_http_request_active 1
kes_http_response_time_bucket{le="0.01"} 9
kes_http_response_time_sum 0.5
kes_http_response_time_count 10
kes_system_up_time 61
garbage line here
"""
    samples = parse_prometheus(text)
    assert samples['kes_http_response_time_bucket{le="0.01"}'] == 9
    summary = _summary(samples)
    assert summary["requests"] == 10
    assert summary["latency_avg_s"] == pytest.approx(0.05)
    assert summary["uptime_s"] == 61


def test_tables_align() -> None:
    table = click.unstyle(render_table(("Key", "Policy"), [("a", "p"), ("longer", "q")]))
    assert table.splitlines() == ["Key     Policy", "a       p", "longer  q"]
    assert click.unstyle(render_pairs([("A", "1"), ("Long", "2")])).splitlines() == [
        "A:     1",
        "Long:  2",
    ]


def test_cli_reference_mentions_every_command() -> None:
    """docs/cli.md must document every command and alias the CLI offers."""
    text = CLI_DOC.read_text(encoding="utf-8")

    def walk(group: click.Group, prefix: str) -> Iterator[str]:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            path = f"{prefix} {name}"
            yield path
            if isinstance(command, click.Group):
                yield from walk(command, path)

    missing = [path for path in walk(cli, "kes") if f"`{path}" not in text]
    assert missing == []
    for alias in ("ls", "rm", "derive", "dek", "add"):
        assert f"`{alias}`" in text


def test_identity_new_and_of_work_offline(runner: CliRunner, tmp_path: Path) -> None:
    key, cert = tmp_path / "a.key", tmp_path / "a.cert"
    created = runner.invoke(cli, ["identity", "new", "--key", str(key), "--cert", str(cert)])
    assert created.exit_code == 0, created.stderr
    ident = runner.invoke(cli, ["identity", "of", str(cert)], env=NO_ENV)
    assert ident.stdout == created.stdout.strip()
    bad_ip = runner.invoke(
        cli,
        [
            "identity",
            "new",
            "--ip",
            "nope",
            "--key",
            str(tmp_path / "b.key"),
            "--cert",
            str(tmp_path / "b.cert"),
        ],
    )
    assert bad_ip.exit_code == 2 and "nope" in bad_ip.stderr
    assert not (tmp_path / "b.key").exists()
