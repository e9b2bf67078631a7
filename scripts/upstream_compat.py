"""How close is kes-server to the real KES v0.17.6? Ask upstream's own tools.

Run by hand (CI has no upstream binary); docs/compatibility.md explains it.
It starts a kes-server and the real KES side by side, both with upstream's
root identity (``identity/root.cert``, the one upstream's integration tests
use) as admin, both with ``--auth off`` and an in-memory store, and runs:

integration  upstream's ``integration_test.go`` (built into ``kes.test``) against
             each server; the real KES is the control that proves the harness.
cli          the upstream ``kes`` command line (keys, policies, identities,
             ``log trace``) against each server, outputs compared.
probe        the same raw HTTP/1.1 requests (good input and bad: names, JSON,
             methods, paths, sizes, a policy-denied identity) sent to both;
             status, content type and body (random fields masked) compared.

Every difference is printed as a Markdown table. Nothing is asserted: the
exit code is 0 when the run completed, whatever it found.

Usage: ``.venv/bin/python scripts/upstream_compat.py [--only integration,cli,probe]
[--kes-args='--loop asyncio'] [--all]``. The upstream binaries are looked up in
``$KES_UPSTREAM_DIR`` (default ``~/.cache/kes-upstream``, where
``../shared/infra/kes-upstream/build.sh`` puts them).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import servers  # noqa: E402
from kes_server.core.certs import new_identity  # noqa: E402
from kes_server.core.identity import identity_of_pem  # noqa: E402
from tests.support import rawhttp  # noqa: E402

SERVERS = ("real KES", "kes-server")
PARTS = ("integration", "cli", "probe")

#: The tests of integration_test.go at v0.17.6 (the file's other tests are unit tests).
INTEGRATION_TESTS = (
    "TestVersion",
    "TestCreateKey",
    "TestDeleteKey",
    "TestImportKey",
    "TestGenerateKey",
    "TestEncryptKey",
    "TestDecryptKey",
    "TestListKeys",
    "TestReadWritePolicy",
    "TestAssignIdentity",
    "TestForgetIdentity",
    "TestMetrics",
)


@dataclass(frozen=True)
class Upstream:
    """The prebuilt upstream pieces: server/CLI, test binary, the tests' root identity."""

    kes: Path
    kes_test: Path
    root_cert: Path
    root_key: Path

    @classmethod
    def find(cls) -> Upstream:
        home = Path(os.environ.get("KES_UPSTREAM_DIR") or "~/.cache/kes-upstream").expanduser()
        found = cls(
            home / "bin" / "kes",
            home / "bin" / "kes.test",
            home / "identity" / "root.cert",
            home / "identity" / "root.key",
        )
        missing = [str(p) for p in dataclasses.astuple(found) if not Path(p).is_file()]
        if missing:
            raise SystemExit(
                f"missing {', '.join(missing)}: build the real KES v0.17.6 with "
                "../shared/infra/kes-upstream/build.sh (see its README), or set KES_UPSTREAM_DIR"
            )
        return found


@dataclass
class Side:
    """One server under comparison and how to reach it."""

    name: str
    running: servers.Running

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.running.target.port}"


@contextlib.contextmanager
def start_both(up: Upstream, work: Path, kes_args: Sequence[str]) -> Iterator[list[Side]]:
    """The real KES and kes-server, same server certificate, upstream's root as admin."""
    certs = dataclasses.replace(
        servers.make_certs(work / "certs"),
        client_cert=up.root_cert,
        client_key=up.root_key,
        client_identity=identity_of_pem(up.root_cert.read_bytes()),
    )
    os.environ[servers.UPSTREAM_ENV] = str(up.kes)
    with (
        servers.real_kes(certs, work) as real,
        servers.kes_server(certs, work, name="kes-compat", args=kes_args) as ours,
    ):
        yield [Side(SERVERS[0], real), Side(SERVERS[1], ours)]


# --------------------------------------------------------------------------- integration


def run_integration(up: Upstream, side: Side, work: Path) -> dict[str, tuple[str, str]]:
    """``kes.test -integration`` against one server: test name -> (PASS/FAIL/SKIP, why)."""
    argv = [
        str(up.kes_test),
        "-test.v",
        "-test.count=1",
        "-test.run",
        f"^({'|'.join(INTEGRATION_TESTS)})$",
        "-integration",
        "-k",
        f"-endpoint={side.url}",
        f"-key={up.root_key}",
        f"-cert={up.root_cert}",
    ]
    out = subprocess.run(
        argv, cwd=work, capture_output=True, text=True, timeout=600, check=False
    ).stdout
    results: dict[str, tuple[str, str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("=== RUN"):
            current = []
        elif m := re.match(r"\s*--- (PASS|FAIL|SKIP): (\S+)", line):
            results[m.group(2)] = (m.group(1), " ".join(current)[:300])
        elif line.startswith("    ") and ".go:" in line:
            current.append(line.strip())
    return results


def report_integration(results: dict[str, dict[str, tuple[str, str]]]) -> list[str]:
    lines = [
        "## Upstream integration tests (integration_test.go, v0.17.6)",
        "",
        f"| test | {' | '.join(SERVERS)} | kes-server's failure |",
        "|---|---|---|---|",
    ]
    for name in INTEGRATION_TESTS:
        cells = [results[s].get(name, ("not run", ""))[0] for s in SERVERS]
        why = results[SERVERS[1]].get(name, ("", ""))[1] if cells[1] == "FAIL" else ""
        lines.append(f"| {name} | {' | '.join(cells)} | {_cell(why)} |")
    return lines


# --------------------------------------------------------------------------- cli

_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_URL = re.compile(r"https://127\.0\.0\.1:\d+")
_DURATION = re.compile(r"\b\d+(\.\d+)?(ns|µs|us|ms|s)\b")
#: Response fields whose values are random per call (masked before comparing).
RANDOM_FIELDS = {"plaintext", "ciphertext", "time", "duration", "uptime", "latency"}


def _mask_json(value: Any, random_fields: set[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: "<random>" if k.lower() in random_fields else _mask_json(v, random_fields)
            for k, v in sorted(value.items())
        }
    if isinstance(value, list):
        return [_mask_json(v, random_fields) for v in value]
    return value


def _shape(value: Any) -> Any:
    """Only the structure of a JSON value: keys, and the type of each leaf."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _sorted_lists(value: Any) -> Any:
    """Lists in a canonical order (for listings, whose order the server does not promise)."""
    if isinstance(value, dict):
        return {k: _sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_sorted_lists(v) for v in value), key=lambda v: json.dumps(v))
    return value


def normalize(
    text: str,
    random_fields: set[str] = RANDOM_FIELDS,
    *,
    shape: bool = False,
    unordered: bool = False,
) -> str:
    """Mask what differs on every call (keys, times, ports) so outputs compare.

    ``shape`` compares JSON by structure only (counters, metrics); ``unordered``
    sorts JSON arrays and lines (listings come in no promised order).
    """
    lines = []
    for line in text.strip().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            line = _URL.sub("<server>", line)
            line = _TIME.sub("<time>", line)
            line = _B64.sub("<b64>", line)
            lines.append(_DURATION.sub("<duration>", line).rstrip())
            continue
        doc = _shape(doc) if shape else _mask_json(doc, random_fields)
        lines.append(json.dumps(_sorted_lists(doc) if unordered else doc, sort_keys=True))
    return "\n".join(sorted(lines) if unordered else lines)


@dataclass
class CliResult:
    command: str
    code: int
    output: str  # stdout + stderr, normalized
    raw: str = ""


@dataclass
class Cli:
    """The upstream ``kes`` CLI pointed at one server as upstream's root."""

    up: Upstream
    side: Side
    work: Path
    results: list[CliResult] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KES_SERVER": self.side.url,
            "KES_CLIENT_CERT": str(self.up.root_cert),
            "KES_CLIENT_KEY": str(self.up.root_key),
        }

    def run(self, *args: str, label: str = "", stdin: str | None = None) -> CliResult:
        argv = [str(self.up.kes), *args[:2], "-k", *args[2:]]
        proc = subprocess.run(
            argv,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=self.work,
        )
        raw = proc.stdout + proc.stderr
        shown = normalize(raw.replace(str(self.work), "<work>"), unordered="list" in args[1:2])
        result = CliResult(label or "kes " + shlex.join(args), proc.returncode, shown, raw)
        self.results.append(result)
        return result

    def trace(
        self,
        seconds: float,
        *args: str,
        during: Callable[[], object] | None = None,
        shape: bool = False,
    ) -> None:
        """``kes log trace`` for ``seconds`` (stopped with SIGINT), optionally causing events."""
        argv = [str(self.up.kes), "log", "trace", "-k", "--json", *args]
        proc = subprocess.Popen(
            argv,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.work,
        )
        time.sleep(0.5)
        if during is not None:
            during()
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        command = "kes log trace --json " + shlex.join(args)
        self.results.append(
            CliResult(command.strip(), proc.returncode, normalize(out, shape=shape), out)
        )


def cli_session(up: Upstream, side: Side, work: Path, other_identity: str) -> list[CliResult]:
    """The same CLI session against one server (each server starts empty)."""
    cli = Cli(up, side, work)
    policy = work / "compat-policy.json"
    policy.write_text(json.dumps({"allow": ["/v1/key/generate/compat-*"], "deny": []}))
    bad_policy = work / "compat-bad-policy.json"
    bad_policy.write_text('{"allow": ["[a-"]}')
    ctx = base64.b64encode(b"bucket/object").decode()
    cli.run("key", "create", "compat-a")
    cli.run("key", "create", "compat-a", label="kes key create compat-a (again)")
    cli.run("key", "create", "compat-imported", base64.b64encode(bytes(32)).decode())
    cli.run("key", "create", "bad*name")
    cli.run("key", "list")
    cli.run("key", "list", "--json", "compat-*")
    for context in ((), (ctx,)):
        derived = cli.run("key", "derive", "compat-a", *context)
        try:
            doc = json.loads(derived.raw)
        except ValueError:
            continue
        plain = cli.run(
            "key",
            "decrypt",
            "compat-a",
            doc["ciphertext"],
            *context,
            label="kes key decrypt compat-a <ciphertext from derive>"
            + (" <ctx>" if context else ""),
        )
        same = doc["plaintext"] in plain.raw
        plain.output += "\n(round trip " + ("ok" if same else "MISMATCH") + ")"
        if not context:
            cli.run(
                "key",
                "decrypt",
                "compat-a",
                doc["ciphertext"],
                ctx,
                label="kes key decrypt compat-a <ciphertext> <wrong context>",
            )
    cli.run("key", "decrypt", "compat-missing", base64.b64encode(b"x" * 40).decode())
    cli.run("policy", "add", "compat-pol", str(policy), label="kes policy add compat-pol <file>")
    cli.run("policy", "add", "compat-bad", str(bad_policy), label="kes policy add <bad pattern>")
    cli.run("policy", "show", "compat-pol")
    cli.run("policy", "list")
    cli.run("policy", "list", "compat*")
    cli.run(
        "identity", "assign", other_identity, "compat-pol", label="kes identity assign <id> ..."
    )
    cli.run("identity", "list")
    cli.run("identity", "forget", other_identity, label="kes identity forget <id>")
    cli.run("policy", "delete", "compat-pol")
    cli.run("policy", "show", "compat-pol", label="kes policy show compat-pol (deleted)")
    cli.run("key", "delete", "compat-a")
    cli.run("key", "delete", "compat-a", label="kes key delete compat-a (again)")
    cli.trace(1.0, during=lambda: cli.run("key", "create", "compat-traced"))
    cli.trace(1.0, "--type=error")
    cli.trace(1.5, "--type=metric", "--rate=1s", shape=True)
    return cli.results


def report_cli(results: dict[str, list[CliResult]], show_all: bool) -> list[str]:
    ours = {r.command: r for r in results[SERVERS[1]]}
    rows, same = [], 0
    for real in results[SERVERS[0]]:
        mine = ours.get(real.command)
        if mine is not None and mine.code == real.code and mine.output == real.output:
            same += 1
            if not show_all:
                continue
        rows.append(
            f"| `{real.command}` | {real.code}: {_cell(real.output, 400)} | "
            + (f"{mine.code}: {_cell(mine.output, 400)} |" if mine else "not run |")
        )
    return [
        "## Upstream `kes` CLI (v0.17.6)",
        "",
        f"{same} of {len(results[SERVERS[0]])} commands gave the same exit code and output "
        "(random values, times and ports masked).",
        "",
        "| command | real KES (exit: output) | kes-server (exit: output) |",
        "|---|---|---|",
        *rows,
    ]


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class Probe:
    """One raw request; ``who`` is ``root``, ``other`` (bound to a policy) or ``nobody``."""

    name: str
    method: str
    path: str
    body: bytes = b""
    who: str = "root"
    stream: bool = False  # read only the head (a live stream never ends)
    compare_body: bool = True


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def probes(other_identity: str, foreign_ciphertext: bytes) -> list[Probe]:
    """The probe list: each server runs it in this order from an empty store."""
    zero = base64.b64encode(bytes(32)).decode()
    ctx = base64.b64encode(b"ctx").decode()
    big = base64.b64encode(bytes(1 << 20)).decode()
    half = base64.b64encode(bytes(400 << 10)).decode()
    p = Probe
    return [
        p("version", "GET", "/version", compare_body=False),
        p("version with a query", "GET", "/version?x=1", compare_body=False),
        p("version, trailing slash", "GET", "/version/"),
        p("version, POST", "POST", "/version"),
        p("status", "GET", "/v1/status", compare_body=False),
        p("metrics", "GET", "/v1/metrics", compare_body=False),
        p("root path", "GET", "/"),
        p("unknown path", "GET", "/nope"),
        p("unknown API", "GET", "/v1/key/bulk/decrypt/k"),
        p("create, no name", "POST", "/v1/key/create/"),
        p("create", "POST", "/v1/key/create/probe-a"),
        p("create again", "POST", "/v1/key/create/probe-a"),
        p("create, GET", "GET", "/v1/key/create/probe-b"),
        p("create, name with *", "POST", "/v1/key/create/bad*name"),
        p("create, name with %2F", "POST", "/v1/key/create/a%2Fb"),
        p("create, extra segment", "POST", "/v1/key/create/a/b"),
        p("create, dot-dot", "POST", "/v1/key/create/../x"),
        p("create, 300-char name", "POST", "/v1/key/create/" + "n" * 300),
        p("create with a body", "POST", "/v1/key/create/probe-c", b'{"x":1}'),
        p("import", "POST", "/v1/key/import/probe-imp", _json({"bytes": zero})),
        p("import again", "POST", "/v1/key/import/probe-imp", _json({"bytes": zero})),
        p("import, 16 bytes", "POST", "/v1/key/import/probe-i16", _json({"bytes": zero[:24]})),
        p("import, not base64", "POST", "/v1/key/import/probe-ib", _json({"bytes": "!!"})),
        p("import, bad JSON", "POST", "/v1/key/import/probe-ij", b"{"),
        p("import, empty body", "POST", "/v1/key/import/probe-ie"),
        p("generate", "POST", "/v1/key/generate/probe-a", _json({"context": ctx})),
        p("generate, no context", "POST", "/v1/key/generate/probe-a", b"{}"),
        p("generate, empty body", "POST", "/v1/key/generate/probe-a"),
        p("generate, bad JSON", "POST", "/v1/key/generate/probe-a", b"{"),
        p("generate, JSON array", "POST", "/v1/key/generate/probe-a", b"[]"),
        p("generate, context not base64", "POST", "/v1/key/generate/probe-a", b'{"context":"%"}'),
        p("generate, context a number", "POST", "/v1/key/generate/probe-a", b'{"context":1}'),
        p("generate, missing key", "POST", "/v1/key/generate/probe-none", b"{}"),
        p("generate, 1 MiB context", "POST", "/v1/key/generate/probe-a", _json({"context": big})),
        p("generate, PUT", "PUT", "/v1/key/generate/probe-a", b"{}"),
        p(
            "encrypt",
            "POST",
            "/v1/key/encrypt/probe-a",
            _json({"plaintext": base64.b64encode(b"hi").decode()}),
        ),
        p("encrypt, no plaintext", "POST", "/v1/key/encrypt/probe-a", b"{}"),
        p(
            "encrypt, 400+400 KiB",
            "POST",
            "/v1/key/encrypt/probe-a",
            _json({"plaintext": half, "context": half}),
        ),
        p(
            "decrypt a ciphertext made by the real KES",
            "POST",
            "/v1/key/decrypt/xsrv-zero",
            _json({"ciphertext": base64.b64encode(foreign_ciphertext).decode(), "context": ctx}),
        ),
        p(
            "decrypt it with the wrong context",
            "POST",
            "/v1/key/decrypt/xsrv-zero",
            _json({"ciphertext": base64.b64encode(foreign_ciphertext).decode()}),
        ),
        p("decrypt garbage", "POST", "/v1/key/decrypt/probe-a", _json({"ciphertext": "AAAA"})),
        p(
            "decrypt JSON of an unknown AEAD",
            "POST",
            "/v1/key/decrypt/probe-a",
            _json(
                {
                    "ciphertext": base64.b64encode(
                        _json({"aead": "NOPE", "iv": "", "nonce": "", "bytes": ""})
                    ).decode()
                }
            ),
        ),
        p("decrypt, no ciphertext", "POST", "/v1/key/decrypt/probe-a", b"{}"),
        p("list", "GET", "/v1/key/list/*"),
        p("list with a pattern", "GET", "/v1/key/list/probe-*"),
        p("list, keys both servers have", "GET", "/v1/key/list/xsrv-*"),
        p("list, bad pattern", "GET", "/v1/key/list/[a-"),
        p("list, no pattern", "GET", "/v1/key/list/"),
        p("list, DELETE", "DELETE", "/v1/key/list/*"),
        p(
            "policy write",
            "POST",
            "/v1/policy/write/probe-pol",
            _json({"allow": ["/v1/key/generate/probe-*"], "deny": []}),
        ),
        p("policy write, bad pattern", "POST", "/v1/policy/write/probe-bad", b'{"allow":["[a-"]}'),
        p("policy write, bad JSON", "POST", "/v1/policy/write/probe-bad", b"{"),
        p("policy write, null lists", "POST", "/v1/policy/write/probe-null", b"{}"),
        p("policy read", "GET", "/v1/policy/read/probe-pol"),
        p("policy read, missing", "GET", "/v1/policy/read/probe-none"),
        p("policy list", "GET", "/v1/policy/list/*"),
        p("identity assign", "POST", f"/v1/identity/assign/probe-pol/{other_identity}"),
        p("identity assign, bad id", "POST", "/v1/identity/assign/probe-pol/not-hex"),
        p("identity assign, missing policy", "POST", f"/v1/identity/assign/none/{other_identity}"),
        p("identity list", "GET", "/v1/identity/list/*"),
        p("as other: generate (allowed)", "POST", "/v1/key/generate/probe-a", b"{}", "other"),
        p("as other: create (denied)", "POST", "/v1/key/create/probe-d", who="other"),
        p("as other: list (denied)", "GET", "/v1/key/list/*", who="other"),
        p("as other: version", "GET", "/version", who="other", compare_body=False),
        p("as nobody: generate (no policy)", "POST", "/v1/key/generate/probe-a", b"{}", "nobody"),
        p("as nobody: unknown path", "GET", "/nope", who="nobody"),
        p("audit trace", "GET", "/v1/log/audit/trace", stream=True),
        p("audit trace, POST", "POST", "/v1/log/audit/trace"),
        p("error trace", "GET", "/v1/log/error/trace", stream=True),
        p("audit trace as other (denied)", "GET", "/v1/log/audit/trace", who="other"),
        p("identity forget", "DELETE", f"/v1/identity/forget/{other_identity}"),
        p("identity forget again", "DELETE", f"/v1/identity/forget/{other_identity}"),
        p("policy delete", "DELETE", "/v1/policy/delete/probe-pol"),
        p("policy delete, missing", "DELETE", "/v1/policy/delete/probe-pol"),
        p("delete", "DELETE", "/v1/key/delete/probe-a"),
        p("delete again", "DELETE", "/v1/key/delete/probe-a"),
        p("delete, POST", "POST", "/v1/key/delete/probe-imp"),
    ]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str
    trailers: str = ""

    def cell(self) -> str:
        trailers = f" trailers `{self.trailers}`" if self.trailers else ""
        return f"{self.status} `{self.content_type or '-'}`{trailers} {_cell(self.body)}"


def _contexts(work: Path, up: Upstream, certs_dir: Path) -> dict[str, ssl.SSLContext]:
    """TLS client contexts for root, ``other`` and ``nobody`` (no verification: probes)."""
    out = {}
    for who in ("root", "other", "nobody"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if who == "root":
            ctx.load_cert_chain(str(up.root_cert), str(up.root_key))
        else:
            ctx.load_cert_chain(str(certs_dir / f"{who}.cert"), str(certs_dir / f"{who}.key"))
        out[who] = ctx
    return out


def ask(side: Side, ctx: ssl.SSLContext, probe: Probe) -> Answer:
    port = side.running.target.port
    try:
        if probe.stream:
            with rawhttp.open_tls(port, ctx, timeout=5) as sock:
                sock.sendall(
                    f"{probe.method} {probe.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
                )
                r = rawhttp.read_response(sock, head=True)
        else:
            r = rawhttp.raw_request(
                port, ctx, probe.method.encode(), probe.path.encode(), probe.body, timeout=10
            )
    except (OSError, ssl.SSLError) as exc:
        return Answer(0, "", f"{type(exc).__name__}: {exc}")
    ctype = r.headers.get("content-type", "")
    if not probe.compare_body or probe.stream:
        body = "(not compared)"
    else:
        body = normalize(r.body.decode("utf-8", errors="replace"), unordered="/list/" in probe.path)
    trailers = ", ".join(f"{k}: {v}" for k, v in sorted(r.trailers.items()))
    return Answer(r.status, ctype, body, trailers)


def run_probe(up: Upstream, sides: list[Side], work: Path, other_identity: str) -> list[str]:
    ctxs = _contexts(work, up, work / "probe-certs")
    # A ciphertext the real KES made under an imported all-zero key, decrypted by both.
    zero = _json({"bytes": base64.b64encode(bytes(32)).decode()})
    for side in sides:
        rawhttp.raw_request(
            side.running.target.port, ctxs["root"], b"POST", b"/v1/key/import/xsrv-zero", zero
        )
    sealed = rawhttp.raw_request(
        sides[0].running.target.port,
        ctxs["root"],
        b"POST",
        b"/v1/key/encrypt/xsrv-zero",
        _json(
            {
                "plaintext": base64.b64encode(b"made by the real KES").decode(),
                "context": base64.b64encode(b"ctx").decode(),
            }
        ),
    )
    foreign = base64.b64decode(json.loads(sealed.body)["ciphertext"])
    rows, same = [], 0
    plan = probes(other_identity, foreign)
    for probe in plan:
        answers = [ask(side, ctxs[probe.who], probe) for side in sides]
        if answers[0] == answers[1]:
            same += 1
            continue
        body = f" body {len(probe.body)} B" if probe.body else ""
        who = "" if probe.who == "root" else f" as {probe.who}"
        rows.append(
            f"| {probe.name} | `{probe.method} {_cell(probe.path, 60)}`{body}{who} | "
            f"{answers[0].cell()} | {answers[1].cell()} |"
        )
    return [
        "## Differential probe (raw HTTP/1.1, same requests to both)",
        "",
        f"{same} of {len(plan)} requests got the same status, content type and body "
        "(random values masked; bodies of version, status, metrics and streams not compared).",
        "",
        "| probe | request | real KES | kes-server |",
        "|---|---|---|---|",
        *rows,
    ]


# --------------------------------------------------------------------------- main


def _cell(text: str, limit: int = 160) -> str:
    flat = " ⏎ ".join(line for line in text.splitlines() if line.strip())
    flat = flat.replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _identities(directory: Path) -> str:
    """Client certificates for the probe's ``other`` and ``nobody``; returns other's identity."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = {}
    for who in ("other", "nobody"):
        key, cert = new_identity(f"compat-{who}", key_type="ecdsa")
        (directory / f"{who}.key").write_bytes(key)
        (directory / f"{who}.cert").write_bytes(cert)
        ids[who] = identity_of_pem(cert)
    return ids["other"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="scripts/upstream_compat.py", description=__doc__.split("\n")[0]
    )
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated: {','.join(PARTS)}")
    p.add_argument("--kes-args", default="", help="extra kes-server arguments")
    p.add_argument("--all", action="store_true", help="list matching rows too")
    p.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    args = p.parse_args(argv)
    parts = [x for x in args.only.split(",") if x]
    if unknown := set(parts) - set(PARTS):
        p.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    up = Upstream.find()
    work = Path(tempfile.mkdtemp(prefix="kes-compat."))
    out: list[str] = [
        "# kes-server vs the real KES v0.17.6",
        "",
        f"`{up.kes}` against kes-server "
        f"({shlex.join(['python', '-m', 'kes_server', *shlex.split(args.kes_args)])}), "
        f"both `--auth off`, in-memory keys, upstream's root identity as admin.",
    ]
    try:
        other = _identities(work / "probe-certs")
        for part in parts:
            # Each part gets fresh servers, so none sees the others' keys and policies.
            with start_both(up, work / part, shlex.split(args.kes_args)) as sides:
                print(f"== {part}", file=sys.stderr, flush=True)
                if part == "integration":
                    out += [
                        "",
                        *report_integration({s.name: run_integration(up, s, work) for s in sides}),
                    ]
                elif part == "cli":
                    out += [
                        "",
                        *report_cli(
                            {s.name: cli_session(up, s, work / part, other) for s in sides},
                            args.all,
                        ),
                    ]
                else:
                    out += ["", *run_probe(up, sides, work, other)]
    finally:
        if args.keep:
            print(f"work directory: {work}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
