"""Every ``kes`` command end to end against a real kes-server.

Most commands run in process through click's ``CliRunner`` (fast, and stdout
is not a TTY, as in scripts). Traces run as real subprocesses: the jq
pipeline from the docs under a pseudo-terminal, so jq behaves exactly as it
does for a user, and Ctrl-C as a real SIGINT.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kes_client import Client, KeyNotFound
from kes_client.cli import cli
from tests.kes_client.conftest import unique
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DENIED = ("Error: prohibited by policy\n", "Error: not authorized: insufficient permissions\n")


@pytest.fixture(name="env")
def _env(kes_server: RunningServer) -> dict[str, str]:
    """The environment `make run` tells users to export, for the test server."""
    return {
        "KES_SERVER": kes_server.url,
        "KES_CLIENT_CERT": str(kes_server.root_cert),
        "KES_CLIENT_KEY": str(kes_server.root_key),
        "KES_CLIENT_TLS_CERT_FILE": "",
        "KES_CLIENT_TLS_KEY_FILE": "",
    }


Run = Callable[..., Result]


@pytest.fixture(name="kes")
def _kes(kes_server: RunningServer, env: dict[str, str]) -> Run:
    """Invoke ``kes --ca <server CA> ARGS...`` in process as root."""

    def run(*args: str, input: str | bytes | None = None, **extra_env: str) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            ["--ca", str(kes_server.ca_file), *args],
            input=input,
            env={**env, **extra_env},
            catch_exceptions=False,
        )

    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result.stdout


def kes_command() -> list[str]:
    script = shutil.which("kes", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "kes_client.cli"]


def subprocess_env(env: dict[str, str], kes_server: RunningServer) -> dict[str, str]:
    # SSL_CERT_FILE is how OpenSSL (and so `kes` without --ca) finds extra roots.
    return {**os.environ, **env, "SSL_CERT_FILE": str(kes_server.ca_file)}


# ----------------------------------------------------------------- server/tls


def test_status(kes: Run, kes_server: RunningServer) -> None:
    out = ok(kes("status"))
    assert re.search(rf"^Endpoint: +{re.escape(kes_server.url)}$", out, re.MULTILINE)
    assert re.search(r"^Key store: +available$", out, re.MULTILINE)
    status = json.loads(ok(kes("status", "--json")))
    assert status["kms"]["state"] == "available" and status["version"].startswith("v")


def test_insecure_flag_anywhere(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["-k", "status"], env=env).exit_code == 0
    assert runner.invoke(cli, ["status", "-k"], env=env).exit_code == 0
    assert runner.invoke(cli, ["key", "list", "--insecure"], env=env).exit_code == 0
    failed = runner.invoke(cli, ["status"], env=env)
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Error: TLS handshake with")
    assert "server certificate not trusted" in failed.stderr
    assert failed.stderr.rstrip().endswith(
        "pass --ca FILE (the CA that signed the server certificate) or -k"
    )
    assert len(failed.stderr.splitlines()) == 1


def test_connection_options_after_the_command(
    env: dict[str, str], kes_server: RunningServer
) -> None:
    """`kes status --server ... --ca ...`: upstream guides put options after the command."""
    runner = CliRunner()
    bare = {k: "" for k in env}  # nothing from the environment
    args = ["--server", kes_server.url, "--ca", str(kes_server.ca_file)]
    args += ["--cert", str(kes_server.root_cert), "--key", str(kes_server.root_key)]
    result = runner.invoke(cli, ["status", *args], env=bare)
    assert result.exit_code == 0, result.stderr
    assert kes_server.url in result.stdout
    listed = runner.invoke(cli, ["key", "list", "--json", *args], env=bare)
    assert listed.exit_code == 0, listed.stderr
    # after the command beats before it (and the environment)
    wrong = runner.invoke(cli, ["--server", "127.0.0.1:1", "status", "--server", kes_server.url,
                                "--ca", str(kes_server.ca_file)], env=env)  # fmt: skip
    assert wrong.exit_code == 0, wrong.stderr


def test_metric(kes: Run) -> None:
    out = ok(kes("metric"))
    assert "Requests:" in out and "Latency:" in out
    summary = json.loads(ok(kes("metric", "--json")))
    assert summary["requests"] >= 1
    counts = ("requests", "success", "error", "failure", "active", "audit_events", "uptime_s")
    assert all(type(summary[name]) is int for name in counts), summary
    assert type(summary["latency_avg_s"]) is float
    assert "kes_http_request_success" in ok(kes("metric", "--raw"))
    assert "Requests:" in ok(kes("metrics"))


def test_server_subcommand_runs_kes_server() -> None:
    result = subprocess.run(
        [*kes_command(), "server", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--auth" in result.stdout
    assert result.stdout.startswith("Usage: kes server ")  # not `python -m kes_server`


# ----------------------------------------------------------------------- keys


def test_key_commands(kes: Run) -> None:
    name = unique()
    assert ok(kes("key", "create", name)) == ""  # silent success in scripts
    duplicate = kes("key", "create", name)
    assert duplicate.exit_code == 1
    assert duplicate.stderr in ("Error: key does already exist\n", "Error: key already exists\n")

    listing = ok(kes("key", "list", name[:-1] + "*"))
    assert listing.splitlines()[0].strip() == "Key" and name in listing
    assert json.loads(ok(kes("key", "ls", name, "--json"))) == {"name": name}

    dek = json.loads(ok(kes("key", "generate", name, "--json")))
    assert len(base64.b64decode(dek["plaintext"])) == 32
    plain = ok(kes("key", "decrypt", name, dek["ciphertext"])).strip()
    assert plain == dek["plaintext"]
    human = ok(kes("key", "derive", name))
    assert "Plaintext:" in human and "Ciphertext:" in human

    context = base64.b64encode(b"ctx").decode()
    ciphertext = ok(kes("key", "encrypt", name, base64.b64encode(b"hello").decode(), context))
    decrypted = ok(kes("key", "decrypt", name, ciphertext.strip(), context))
    assert base64.b64decode(decrypted) == b"hello"
    piped = ok(kes("key", "encrypt", name, input=b"raw bytes"))
    assert json.loads(ok(kes("key", "decrypt", name, "--json", input=piped))) == {
        "plaintext": base64.b64encode(b"raw bytes").decode()
    }
    wrong = kes("key", "decrypt", name, ciphertext.strip())
    assert wrong.exit_code == 1
    assert wrong.stderr == "Error: decryption failed: ciphertext is not authentic\n"

    ok(kes("key", "delete", name))
    ok(kes("key", "rm", name))  # deleting twice succeeds (v0.17)
    missing = kes("key", "generate", name)
    assert (missing.exit_code, missing.stderr) == (1, "Error: key does not exist\n")
    assert ok(kes("key", "list", name)) == ""


def test_key_import(kes: Run) -> None:
    first, second = unique(), unique()
    raw = os.urandom(32)
    material = base64.b64encode(raw).decode()
    ok(kes("key", "import", first, material))
    ok(kes("key", "create", second, material))  # v0.17 spelling of import
    # stdin carries raw bytes, as for encrypt; base64 there is refused, not misread
    third = unique()
    ok(kes("key", "import", third, input=raw))
    assert ok(kes("key", "decrypt", third, ok(kes("key", "encrypt", first, "aGk=")).strip()))
    wrong = kes("key", "import", unique(), input=material + "\n")
    assert wrong.exit_code == 2 and "stdin must hold the 32 raw bytes" in wrong.stderr
    ciphertext = ok(kes("key", "encrypt", first, base64.b64encode(b"same key").decode()))
    # Same bytes under both names: the ciphertext only names the key by its id.
    assert base64.b64decode(ok(kes("key", "decrypt", second, ciphertext.strip()))) == b"same key"
    short = kes("key", "import", unique(), base64.b64encode(b"short").decode())
    assert (short.exit_code, short.stderr) == (1, "Error: invalid key\n")
    ok(kes("key", "delete", first, second, third))


# ------------------------------------------------------------------- policies


def test_policy_commands(kes: Run, tmp_path: Path) -> None:
    name = unique("policy")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"allow": ["/v1/key/generate/app-*"], "deny": []}))
    assert ok(kes("policy", "write", name, str(policy_file))) == ""
    shown = ok(kes("policy", "show", name))
    assert "Allow:" in shown and "/v1/key/generate/app-*" in shown
    assert json.loads(ok(kes("policy", "show", name, "--json"))) == {
        "allow": ["/v1/key/generate/app-*"],
        "deny": [],
    }
    ok(kes("policy", "add", name, input='{"allow": ["/v1/status"], "deny": ["/v1/key/*/*"]}'))
    assert json.loads(ok(kes("policy", "show", name, "--json")))["deny"] == ["/v1/key/*/*"]
    assert name in ok(kes("policy", "list"))
    assert {"name": name} in [
        json.loads(line) for line in ok(kes("policy", "ls", "--json")).splitlines()
    ]
    ok(kes("policy", "delete", name))
    missing = kes("policy", "show", name)
    assert (missing.exit_code, missing.stderr) == (1, "Error: policy does not exist\n")
    bad = kes("policy", "write", name, input='{"allow": "not a list"}')
    assert bad.exit_code == 2 and "'allow' must be a list" in bad.stderr


# ----------------------------------------------------------------- identities


def test_identity_of(kes: Run, kes_server: RunningServer) -> None:
    root_cert = str(kes_server.root_cert)
    assert ok(kes("identity", "of", root_cert)) == kes_server.root_identity
    assert ok(kes("tool", "identity", "of", root_cert)) == kes_server.root_identity
    from_stdin = kes("identity", "of", input=kes_server.root_cert.read_bytes())
    assert ok(from_stdin) == kes_server.root_identity
    longer = ok(kes("identity", "of", "--hash", "SHA512", root_cert))
    assert len(longer) == 128
    not_a_cert = kes("identity", "of", input=b"hello")
    assert not_a_cert.exit_code == 1 and not_a_cert.stderr.startswith("Error: ")


def test_identity_new(kes: Run, tmp_path: Path) -> None:
    key, cert = tmp_path / "app.key", tmp_path / "app.cert"
    ident = ok(kes("identity", "new", "--key", str(key), "--cert", str(cert), "my-app")).strip()
    assert len(ident) == 64
    assert key.stat().st_mode & 0o777 == 0o600
    assert ok(kes("identity", "of", str(cert))) == ident
    again = kes("identity", "new", "--key", str(key), "--cert", str(cert), "my-app")
    assert again.exit_code == 1 and "already exists" in again.stderr
    forced = ok(kes("tool", "identity", "new", "-f", "--key", str(key), "--cert", str(cert)))
    assert forced.strip() != ident
    server_key, server_cert = tmp_path / "srv.key", tmp_path / "srv.cert"
    ok(
        kes(
            "identity",
            "new",
            "--server",
            "--ip",
            "127.0.0.1",
            "--dns",
            "localhost",
            "-t",
            "8760h",
            "--key",
            str(server_key),
            "--cert",
            str(server_cert),
            "localhost",
        )
    )
    assert server_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_identity_assign_list_forget_self(kes: Run, kes_server: RunningServer) -> None:
    app = kes_server.new_client("cli-app")
    policy_name = unique("policy")
    ok(kes("policy", "write", policy_name, input='{"allow": ["/v1/identity/self/describe"]}'))
    assert ok(kes("identity", "assign", app.identity, policy_name)) == ""
    listing = ok(kes("identity", "list"))
    assert listing.splitlines()[0].split() == ["Identity", "Policy"]
    assert any(line.split() == [app.identity, policy_name] for line in listing.splitlines())
    rows = [json.loads(line) for line in ok(kes("identity", "ls", "--json")).splitlines()]
    assert {"identity": app.identity, "policy": policy_name} in rows

    me = json.loads(
        ok(
            kes(
                "identity",
                "self",
                "--json",
                KES_CLIENT_CERT=str(app.cert),
                KES_CLIENT_KEY=str(app.key),
            )
        )
    )
    assert me["identity"] == app.identity and me["policy"] == policy_name and not me["admin"]
    root_me = ok(kes("identity", "self"))
    assert kes_server.root_identity in root_me and "admin" in root_me

    ok(kes("identity", "forget", app.identity))
    assert app.identity not in ok(kes("identity", "list"))
    is_root = kes("identity", "assign", kes_server.root_identity, policy_name)
    assert (is_root.exit_code, is_root.stderr) == (1, "Error: identity is root\n")
    ok(kes("policy", "delete", policy_name))


# ------------------------------------------------------------ errors and env


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["identity", "assign", "3ecf", "my-app"], "expected 64 lowercase hex digits"),
        (["identity", "forget", "A" * 64], "identities are lowercase hex"),
        (["identity", "rm", "a" * 64, "not-an-identity"], "'not-an-identity' is not an identity"),
    ],
)
def test_identities_are_validated_before_sending(kes: Run, args: list[str], problem: str) -> None:
    result = kes(*args)
    assert result.exit_code == 2 and problem in result.stderr


def test_error_exit_codes(kes: Run, kes_server: RunningServer) -> None:
    stranger = kes_server.new_client("cli-stranger")
    denied = kes(
        "key", "list", KES_CLIENT_CERT=str(stranger.cert), KES_CLIENT_KEY=str(stranger.key)
    )
    assert denied.exit_code == 1 and denied.stderr in DENIED and denied.stdout == ""
    assert kes("key", "create").exit_code == 2  # usage error: missing NAME
    unreachable = kes("status", "--insecure", KES_SERVER="https://127.0.0.1:9")
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith("Error: cannot connect to https://127.0.0.1:9")


def test_env_var_precedence(kes: Run, kes_server: RunningServer) -> None:
    stranger = kes_server.new_client("cli-env")
    root_cert, root_key = str(kes_server.root_cert), str(kes_server.root_key)
    as_stranger = {"KES_CLIENT_CERT": str(stranger.cert), "KES_CLIENT_KEY": str(stranger.key)}
    legacy_root = {"KES_CLIENT_TLS_CERT_FILE": root_cert, "KES_CLIENT_TLS_KEY_FILE": root_key}

    # The current names win over the legacy ones...
    assert kes("key", "list", **as_stranger, **legacy_root).stderr in DENIED
    # ...which are still honoured on their own...
    only_legacy = {"KES_CLIENT_CERT": "", "KES_CLIENT_KEY": "", **legacy_root}
    ok(kes("key", "list", **only_legacy))
    # ...and flags win over every variable.
    ok(kes("--cert", root_cert, "--key", root_key, "key", "list", **as_stranger))
    # KES_SERVER decides the endpoint unless --server is given.
    bogus = {"KES_SERVER": "https://127.0.0.1:9"}
    assert kes("status", **bogus).exit_code == 1
    ok(kes("--server", kes_server.url, "status", **bogus))
    ok(kes("--server", kes_server.url.removeprefix("https://"), "status", **bogus))


# --------------------------------------------------------------------- traces


def _first_line(fd: int, poke: Callable[[], None], timeout_s: float = 20.0) -> str:
    """Make requests until a line arrives on ``fd``; return it without its newline.

    The subscription starts asynchronously, so requests are repeated until
    one shows up. ``select`` on the raw descriptor keeps the test free of
    reader threads, which could not be stopped while blocked.
    """
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in buffer:
        if time.monotonic() > deadline:
            raise AssertionError(f"no complete line arrived (got {buffer!r})")
        poke()
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"stream ended (got {buffer!r})")
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode()


def _trace(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*kes_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        bufsize=0,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(name="poke")
def _poke(kes_server: RunningServer) -> Iterator[Callable[[], None]]:
    """A request that fails with 404, so it also passes jq's filter."""
    with Client(
        kes_server.url, cert=kes_server.root_cert, key=kes_server.root_key, ca=kes_server.ca_file
    ) as client:

        def poke() -> None:
            try:
                client.generate_key("no-such-key-for-trace")
            except KeyNotFound:
                pass

        yield poke


@pytest.mark.timeout(60)
def test_log_trace_json_and_ctrl_c(
    env: dict[str, str], kes_server: RunningServer, poke: Callable[[], None]
) -> None:
    proc = _trace(["log", "trace", "--json"], subprocess_env(env, kes_server))
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = _first_line(proc.stdout.fileno(), poke)
        event = json.loads(line)
        assert line == json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        assert {"time", "request", "response"} <= set(event)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert b"Traceback" not in proc.stderr.read()
    finally:
        _stop(proc)


@pytest.mark.timeout(60)
def test_log_trace_fails_when_the_server_goes_away(tmp_path: Path) -> None:
    """Losing the server is not a normal end: exit 1 and an error line, unlike Ctrl-C."""
    with start_server(tmp_path / "srv", store="mem") as server:
        env = {
            **os.environ,
            "KES_SERVER": server.url,
            "KES_CLIENT_CERT": str(server.root_cert),
            "KES_CLIENT_KEY": str(server.root_key),
        }
        proc = _trace(["--ca", str(server.ca_file), "log", "trace", "--json"], env)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            with Client(
                server.url, cert=server.root_cert, key=server.root_key, ca=server.ca_file
            ) as client:

                def poke() -> None:
                    client.status()

                _first_line(proc.stdout.fileno(), poke)
            server.stop()
            assert proc.wait(timeout=20) == 1
            error = proc.stderr.read().decode()
            assert error.startswith("Error: ") and len(error.splitlines()) == 1, error
        finally:
            _stop(proc)


@pytest.mark.timeout(60)
def test_log_trace_ends_quietly_when_the_pipe_closes(
    env: dict[str, str], kes_server: RunningServer, poke: Callable[[], None]
) -> None:
    """`kes log trace --json | head -n 1`: the reader leaving is a normal end."""
    proc = _trace(["log", "trace", "--json"], subprocess_env(env, kes_server))
    assert proc.stdout is not None and proc.stderr is not None
    try:
        _first_line(proc.stdout.fileno(), poke)
        proc.stdout.close()  # what `head -n 1` does after its line
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            poke()  # the next event's write discovers the closed pipe
            time.sleep(0.2)
        assert proc.wait(timeout=5) == 0
        assert proc.stderr.read() == b""
    finally:
        _stop(proc)


@pytest.mark.timeout(60)
def test_log_trace_human_and_error_log(
    env: dict[str, str],
    kes_server: RunningServer,
    poke: Callable[[], None],
    root_client: Client,
) -> None:
    proc = _trace(["log"], subprocess_env(env, kes_server))
    assert proc.stdout is not None
    try:
        line = _first_line(proc.stdout.fileno(), poke)
        assert "/v1/key/generate/no-such-key-for-trace" in line or "/v1/log/audit" in line
        assert "\x1b[" not in line  # no colours into a pipe
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)
    with root_client.trace_audit() as audit:
        error_log = _trace(["log", "trace", "--error"], subprocess_env(env, kes_server))
        # The error log is quiet; its subscription shows up in the audit log.
        next(event for event in audit if event.path == "/v1/log/error/trace")
    assert error_log.stderr is not None
    try:
        error_log.send_signal(signal.SIGINT)
        assert error_log.wait(timeout=10) == 0
        assert error_log.stderr.read() == b""
    finally:
        _stop(error_log)


@pytest.mark.timeout(60)
def test_jq_pipeline_is_live(
    env: dict[str, str], kes_server: RunningServer, poke: Callable[[], None]
) -> None:
    """`kes log trace --json | jq -c 'select(.response.code != 200)'`, as typed in a terminal."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed")
    kes = " ".join(shlex.quote(part) for part in kes_command())
    pipeline = f"{kes} log trace --json | {jq} -c 'select(.response.code != 200)'"
    primary, replica = pty.openpty()  # jq writes to a terminal, as for a user
    proc = subprocess.Popen(
        ["bash", "-c", pipeline],
        stdin=subprocess.DEVNULL,
        stdout=replica,
        stderr=subprocess.DEVNULL,
        env=subprocess_env(env, kes_server),
        start_new_session=True,  # its own process group: the test stops all of it
    )
    os.close(replica)
    try:
        buffer = b""
        deadline = time.monotonic() + 30
        while b"\n" not in buffer and time.monotonic() < deadline:
            poke()
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                buffer += os.read(primary, 65536)
        # jq colours its output on a terminal, as the user would see it.
        line = ANSI.sub("", buffer.split(b"\n", 1)[0].decode()).strip()
        event = json.loads(line)
        assert event["response"]["code"] == 404
        assert event["request"]["path"] == "/v1/key/generate/no-such-key-for-trace"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        os.close(primary)
