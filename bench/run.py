"""``make bench``: every scenario in one run, then docs/performance.md from the results.

All ratios in the doc come from one run on one machine, because absolute
numbers on a shared 2-core box move by 2x from run to run while same-run
ratios hold. Every measured server runs on one core (core 0) and the load
generator on another (core 1), so a row is one core's worth of server. The
order is fixed: the bare baseline on asyncio and on uvloop (the Python
ceilings, and the load generator's own ceiling), the real KES v0.17.6 (the
competitor), then kes-server in its configurations, then the profiles. A
scenario that cannot run (no real KES binary, no nginx, no etcd store, no TUI
audit screen) is recorded with the reason and the report says so; one failing
scenario never stops the others.

Usage: ``python -m bench.run [--duration S] [--quick] [--only GROUP,...]
[--kes-args '--loop asyncio']``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import functools
import json
import os
import platform
import shlex
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import loadgen, loops, procstat, profile, servers
from bench.loadgen import LoadSpec, WorkloadData

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.json"
DOC = REPO / "docs" / "performance.md"
GROUPS = ("baseline", "uvloop", "upstream", "kes", "workers", "nginx", "etcd", "kms", "tui")


class Bench:
    """Runs scenarios and collects their results (or why they were skipped)."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.certs = servers.make_certs(work / "certs")
        self.pin = servers.pinning()
        #: kes-server's extra command-line arguments (``--kes-args``) and the loop it ran.
        self.kes_args: list[str] = shlex.split(args.kes_args)
        self.kes_loop = ""
        self.results: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        #: Flame graphs and plots live next to the doc (docs/profiles for the real one).
        self.profiles_dir: Path = args.doc.resolve().parent / "profiles"

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def skip(self, sid: str, label: str, reason: str) -> None:
        self.log(f"{sid}: not measured: {reason}")
        self.results[sid] = {"id": sid, "label": label, "skipped": reason}

    def measure(
        self,
        sid: str,
        label: str,
        target: loadgen.Target,
        workload: str,
        cpu: Mapping[str, Sequence[int]],
        data: WorkloadData,
        *,
        best_of: int = 1,
        **spec: Any,
    ) -> dict[str, Any] | None:
        """One load run (or the least disturbed of ``best_of``); stores and returns it.

        ``best_of`` is for the rows the targets compare: on a box shared with other
        jobs, the run with the lowest server CPU per request is the one that was
        disturbed least (cache and scheduler interference only ever add CPU), so
        it is kept; every run's req/s is recorded under ``repeats``.
        """
        fields: dict[str, Any] = {
            "connections": self.args.connections,
            "duration": self.args.duration,
            "warmup": self.args.warmup,
            "cpus": self.pin.load,
        }
        fields.update(spec)
        load = LoadSpec(target=target, workload=workload, data=data, **fields)
        runs: list[dict[str, Any]] = []
        try:
            for _ in range(max(1, best_of if not self.args.quick else 1)):
                runs.append(loadgen.run_load(load, cpu).to_dict())
        except Exception as exc:  # noqa: BLE001 - record and go on with the next scenario
            if not runs:
                self.skip(sid, label, f"failed: {type(exc).__name__}: {exc}")
                return None
        result = min(runs, key=lambda r: r["server_cpu_us"].get("server", 0.0) or 1e18)
        if len(runs) > 1:
            result["repeats"] = [
                {"rps": r["rps"], "server_cpu_us": r["server_cpu_us"]} for r in runs
            ]
        result.update(id=sid, label=label)
        self.results[sid] = result
        us = ", ".join(f"{k} {v:.0f} µs/req" for k, v in result["server_cpu_us"].items())
        self.log(
            f"{sid}: {result['rps']:.0f} req/s, p50 {result['latency_ms']['p50']:.2f} ms, "
            f"p99 {result['latency_ms']['p99']:.2f} ms, {us}, errors {result['errors']}"
        )
        return result

    def _spec(
        self, target: loadgen.Target, workload: str, data: WorkloadData, connections: int = 0
    ) -> LoadSpec:
        """Load for a profile: the warm-up is short because py-spy is already sampling."""
        return LoadSpec(
            target,
            workload,
            connections=connections or self.args.connections,
            duration=self.args.duration,
            warmup=0.3,
            data=data,
            cpus=self.pin.load,
        )

    def other_workloads(
        self,
        prefix: str,
        where: str,
        target: loadgen.Target,
        cpu: Mapping[str, Sequence[int]],
        data: WorkloadData,
    ) -> None:
        """decrypt, encrypt, create/delete and list, as in the in-memory kes rows."""
        for workload, label in (
            ("decrypt", "decrypt"),
            ("encrypt", "encrypt"),
            ("create-delete", "create, delete (alternating)"),
            ("list", "list (102 keys, NDJSON)"),
        ):
            self.measure(f"{prefix}.{workload}", f"{label}, {where}", target, workload, cpu, data)

    def _with_traces(self, spec: LoadSpec) -> None:
        seconds = spec.warmup + spec.duration + 3
        with loadgen.run_trace_subscribers(spec.target, 8, seconds, self.pin.load) as events:
            loadgen.run_load(spec)
            events()

    def prepare(self, target: loadgen.Target, lists: int = 100) -> WorkloadData:
        return asyncio.run(loadgen.prepare(target, lists=lists))

    def record_profile(
        self, name: str, title: str, pid: int, run: Callable[[], object], subprocesses: bool = False
    ) -> None:
        """Sample ``pid`` with py-spy while ``run()`` puts load on it."""
        if self.args.no_profile:
            return
        raw = self.work / f"{name}.collapsed"
        proc = profile.start(pid, self.args.duration, raw, subprocesses=subprocesses)
        if proc is None:
            self.profiles[name] = {"title": title, "error": "py-spy is not installed"}
            run()
            return
        time.sleep(0.3)
        run()
        try:
            _out, err = proc.communicate(timeout=30)
        except Exception:  # noqa: BLE001
            proc.kill()
            _out, err = proc.communicate()
        if proc.returncode != 0 or not raw.exists():
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["unknown"]
            self.profiles[name] = {"title": title, "error": f"py-spy failed: {reason[0]}"}
            self.log(f"profile {name}: {self.profiles[name]['error']}")
            return
        stacks = profile.load_collapsed(raw)
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        (self.profiles_dir / f"{name}.svg").write_text(
            profile.flamegraph_svg(stacks, title), encoding="utf-8"
        )
        (self.profiles_dir / f"{name}.collapsed.txt").write_text(
            raw.read_text(errors="replace"), encoding="utf-8"
        )
        prof = profile.Profile.of(stacks)
        self.profiles[name] = {
            "title": title,
            "svg": f"profiles/{name}.svg",
            "collapsed": f"profiles/{name}.collapsed.txt",
            "samples": prof.samples,
            "self_top": prof.self_top,
            "inclusive_top": prof.inclusive_top,
            "categories": prof.categories,
        }
        self.log(f"profile {name}: {prof.samples} samples -> {self.profiles_dir / name}.svg")

    # ------------------------------------------------------------------ groups

    def compared_rows(
        self, prefix: str, target: loadgen.Target, data: WorkloadData, pid: int
    ) -> dict[str, Any] | None:
        """The rows every server under test gets: what issue 12's targets compare.

        generate and decrypt over HTTP/1.1 keep-alive (the load generator offers
        only ``http/1.1`` in ALPN, so a server that prefers h2 cannot pick it),
        generate over HTTP/2, and a new mTLS connection per request. Returns
        the generate row (the peak the open-loop rows are scaled to).
        """
        cpu = {"server": [pid]}
        peak = self.measure(
            f"{prefix}.generate", "generate", target, "generate", cpu, data, best_of=2
        )
        self.measure(f"{prefix}.decrypt", "decrypt", target, "decrypt", cpu, data, best_of=2)
        self.measure(
            f"{prefix}.generate.h2",
            "generate over HTTP/2",
            target,
            "generate",
            cpu,
            data,
            http2=True,
            best_of=2,
        )
        self.measure(
            f"{prefix}.handshake",
            "new connection + generate",
            target,
            "handshake",
            cpu,
            data,
            connections=self.args.handshake_connections,
            best_of=2,
        )
        return peak

    def baseline(self) -> None:
        """The Python ceiling on asyncio, and the load generator's ceiling against it."""
        with servers.baseline_server(self.certs, self.work, cpus=self.pin.server) as srv:
            data = self.prepare(srv.target, lists=0)
            self.measure(
                "baseline.version",
                "GET /version (constant)",
                srv.target,
                "version",
                {"server": [srv.pid]},
                data,
            )
            self.compared_rows("baseline", srv.target, data, srv.pid)

    def uvloop(self) -> None:
        """The same bare server on uvloop: the ceiling for a kes-server on uvloop."""
        label = "bare baseline on uvloop"
        if loops.best() != "uvloop":
            self.skip("uvloop.generate", label, "uvloop is not installed (the bench extra)")
            return
        with servers.baseline_server(
            self.certs, self.work, loop="uvloop", cpus=self.pin.server
        ) as srv:
            data = self.prepare(srv.target, lists=0)
            self.compared_rows("uvloop", srv.target, data, srv.pid)

    def upstream(self) -> None:
        """The real KES v0.17.6 (Go), GOMAXPROCS=1 on the server's core: the competitor."""
        label = "real KES v0.17.6"
        try:
            servers.upstream_binary()
        except RuntimeError as exc:
            self.skip("upstream.generate", label, str(exc))
            return
        with servers.real_kes(self.certs, self.work, cpus=self.pin.server) as srv:
            data = self.prepare(srv.target, lists=0)
            self.measure(
                "upstream.version",
                "GET /version",
                srv.target,
                "version",
                {"server": [srv.pid]},
                data,
            )
            self.compared_rows("upstream", srv.target, data, srv.pid)

    def kes(self) -> None:
        """kes-server, one worker, in-memory store: every workload, h2, traces, open loop."""
        with servers.kes_server(
            self.certs, self.work, args=self.kes_args, cpus=self.pin.server
        ) as srv:
            self.kes_loop = _kes_loop(self.kes_args, srv.pid)
            cpu = {"server": [srv.pid]}
            t, d = srv.target, self.prepare(srv.target)
            peak = self.compared_rows("kes", t, d, srv.pid)
            self.measure("kes.encrypt", "encrypt", t, "encrypt", cpu, d)
            self.measure(
                "kes.create-delete", "create, delete (alternating)", t, "create-delete", cpu, d
            )
            self.measure("kes.list", "list (102 keys, NDJSON)", t, "list", cpu, d)
            self.measure("kes.version", "GET /version", t, "version", cpu, d)
            repeats = 1 if self.args.quick else 2
            seconds = repeats * (self.args.warmup + self.args.duration + 2) + 2
            with loadgen.run_trace_subscribers(t, 8, seconds, self.pin.load) as events:
                res = self.measure(
                    "kes.generate.trace8",
                    "generate, 8 audit-trace subscribers",
                    t,
                    "generate",
                    cpu,
                    d,
                    best_of=repeats,
                )
                got = events()
            if res is not None:
                res["trace_events"] = got
            if peak is not None and peak["rps"] > 0:
                for share in (25, 50):
                    res = self.measure(
                        f"kes.generate.open{share}",
                        f"generate, open loop at {share}% of peak",
                        t,
                        "generate",
                        cpu,
                        d,
                        rate=share / 100 * peak["rps"],
                    )
                    if res is not None:
                        res["peak_rps"] = peak["rps"]
            self.record_profile(
                "generate",
                "kes-server under generate load (1 worker)",
                srv.pid,
                lambda: loadgen.run_load(self._spec(t, "generate", d)),
            )
            self.record_profile(
                "generate-trace8",
                "kes-server under generate load with 8 audit-trace subscribers",
                srv.pid,
                functools.partial(self._with_traces, self._spec(t, "generate", d)),
            )
            self.record_profile(
                "handshake",
                "kes-server accepting a new mTLS connection per generate request",
                srv.pid,
                functools.partial(
                    loadgen.run_load,
                    self._spec(t, "handshake", d, connections=self.args.handshake_connections),
                ),
            )
            self.record_profile(
                "list",
                "kes-server under list load (102 keys, NDJSON stream)",
                srv.pid,
                functools.partial(loadgen.run_load, self._spec(t, "list", d)),
            )
            self.record_profile(
                "create-delete",
                "kes-server under create/delete load (1 worker)",
                srv.pid,
                lambda: loadgen.run_load(self._spec(t, "create-delete", d)),
            )

    def workers(self) -> None:
        """``--workers 1`` vs ``--workers N`` on the fs store (workers need a shared store).

        Neither the server nor the load generator is pinned here: the point is
        how far N processes spread over the box's cores.
        """
        n = os.cpu_count() or 2
        for count in (1, n):
            sid = f"workers.{count}"
            try:
                with servers.kes_server(
                    self.certs,
                    self.work,
                    name=f"kes-w{count}",
                    store="fs",
                    workers=count,
                    args=self.kes_args,
                ) as srv:
                    d = self.prepare(srv.target, lists=0)
                    conns = max(self.args.connections, 8 * count)
                    self.measure(
                        sid,
                        f"generate, fs store, --workers {count}",
                        srv.target,
                        "generate",
                        {"server": [srv.pid]},
                        d,
                        connections=conns,
                        cpus=(),
                    )
                    if count > 1:
                        self.record_profile(
                            f"workers-{count}",
                            f"kes-server --workers {count} under generate load (all processes)",
                            srv.pid,
                            functools.partial(
                                loadgen.run_load,
                                dataclasses.replace(
                                    self._spec(srv.target, "generate", d, connections=conns),
                                    cpus=(),
                                ),
                            ),
                            subprocesses=True,
                        )
            except RuntimeError as exc:
                self.skip(sid, f"generate, --workers {count}", _first_line(exc))

    def nginx(self) -> None:
        """generate through nginx (docs/examples/nginx.conf via tests/support/nginx.py)."""
        label = "generate through nginx"
        try:
            from tests.support import nginx as nginx_support

            nginx_support.nginx_binary()
        except (ImportError, RuntimeError) as exc:
            self.skip("nginx.generate", label, f"nginx launcher unavailable: {exc}")
            return
        from kes_server.core.certs import new_identity
        from kes_server.core.identity import identity_of_pem

        pkey, pcert = new_identity("nginx-proxy", key_type="ecdsa")
        (self.work / "proxy.key").write_bytes(pkey)
        (self.work / "proxy.cert").write_bytes(pcert)
        config = {
            "tls": {
                "cert": str(self.certs.server_cert),
                "key": str(self.certs.server_key),
                "proxy": {"identities": [identity_of_pem(pcert)]},
            }
        }
        with servers.kes_server(
            self.certs,
            self.work,
            name="kes-nginx",
            config=config,
            args=self.kes_args,
            cpus=self.pin.server,
        ) as srv:
            port = servers.free_port()
            try:
                proxy_cm = nginx_support.start_nginx(
                    host="127.0.0.1",
                    port=port,
                    upstreams=[f"127.0.0.1:{srv.target.port}"],
                    server_cert=self.certs.server_cert,
                    server_key=self.certs.server_key,
                    client_cert=self.work / "proxy.cert",
                    client_key=self.work / "proxy.key",
                    upstream_ca=self.certs.server_cert,
                )
                with proxy_cm as proxy:
                    assert proxy.process is not None
                    t = self.certs.target(port)
                    d = self.prepare(t)
                    cpu = {"server": [srv.pid], "nginx": [proxy.process.pid]}
                    self.measure("nginx.generate", label, t, "generate", cpu, d)
                    self.other_workloads("nginx", "through nginx", t, cpu, d)
                    self.measure(
                        "nginx.generate.h2",
                        "generate through nginx, HTTP/2",
                        t,
                        "generate",
                        cpu,
                        d,
                        http2=True,
                    )
            except (RuntimeError, ValueError, OSError) as exc:
                self.skip("nginx.generate", label, _first_line(exc))

    def etcd(self) -> None:
        """generate with the etcd store (warm cache) vs the in-memory store, same run."""
        label = "generate, etcd store (3 members, same box), warm cache"
        try:
            from tests.support import etcd as etcd_support

            etcd_support.etcd_binary()
        except (ImportError, RuntimeError) as exc:
            self.skip("etcd.generate", label, f"etcd launcher unavailable: {exc}")
            return
        with etcd_support.start_etcd_cluster(self.work / "etcd") as cluster:
            config = {"keystore": {"etcd": {"endpoints": cluster.endpoints}}}
            try:
                with servers.kes_server(
                    self.certs,
                    self.work,
                    name="kes-etcd",
                    config=config,
                    args=self.kes_args,
                    cpus=self.pin.server,
                ) as srv:
                    d = self.prepare(srv.target)
                    member_pids = [m.process.pid for m in cluster.members if m.process is not None]
                    cpu = {"server": [srv.pid], "etcd": member_pids}
                    self.measure("etcd.generate", label, srv.target, "generate", cpu, d, best_of=2)
                    self.other_workloads("etcd", "etcd store", srv.target, cpu, d)
            except RuntimeError as exc:
                self.skip("etcd.generate", label, _server_reason(exc))
                return
        # The in-memory reference for the ratio, measured right after (same conditions).
        with servers.kes_server(
            self.certs, self.work, name="kes-mem-ref", args=self.kes_args, cpus=self.pin.server
        ) as srv:
            d = self.prepare(srv.target, lists=0)
            self.measure(
                "etcd.memref",
                "generate, in-memory store (reference)",
                srv.target,
                "generate",
                {"server": [srv.pid]},
                d,
                best_of=2,
            )

    def kms(self) -> None:
        """Vault and AWS: warm generate vs in-memory, and what a cache miss costs (bench/kms.py)."""
        from bench import kms

        launchers = {"vault": kms.vault_section, "aws": kms.aws_section}
        for prefix, store_label in kms.STORES:
            label = f"generate, {store_label}, warm cache"
            try:
                with launchers[prefix](self.work / prefix) as section:
                    keystore = {prefix: section}
                    with servers.kes_server(
                        self.certs,
                        self.work,
                        name=f"kes-{prefix}",
                        config={"keystore": keystore},
                        args=self.kes_args,
                        cpus=self.pin.server,
                    ) as srv:
                        d = self.prepare(srv.target, lists=0)
                        cpu = {"server": [srv.pid]}
                        self.measure(
                            f"{prefix}.generate", label, srv.target, "generate", cpu, d, best_of=2
                        )
                        self.measure(
                            f"{prefix}.create-delete",
                            f"create, delete (alternating), {store_label}: every call reaches it",
                            srv.target,
                            "create-delete",
                            cpu,
                            d,
                        )
                    ops = kms.store_ops(keystore)
                    self.results[f"{prefix}.ops"] = {
                        "id": f"{prefix}.ops",
                        "label": f"{store_label}: one store operation on a fresh key",
                        "ops": ops,
                    }
                    self.log(f"{prefix}.ops: {ops}")
            except (ImportError, RuntimeError, OSError) as exc:
                self.skip(f"{prefix}.generate", label, f"{prefix} launcher unavailable: {exc}")
                continue
            with servers.kes_server(
                self.certs,
                self.work,
                name=f"kes-{prefix}-ref",
                args=self.kes_args,
                cpus=self.pin.server,
            ) as srv:
                d = self.prepare(srv.target, lists=0)
                self.measure(
                    f"{prefix}.memref",
                    "generate, in-memory store (reference)",
                    srv.target,
                    "generate",
                    {"server": [srv.pid]},
                    d,
                    best_of=2,
                )

    def tui(self) -> None:
        from bench import tui

        result = tui.run(seconds=self.args.tui_seconds, rate=1000)
        result.setdefault("id", "tui.audit")
        result.setdefault("label", "TUI audit screen, 1,000 events/s")
        self.results["tui.audit"] = result
        self.log(f"tui.audit: {result.get('skipped') or result}")


def _wait_for_quiet(limit_s: float, threshold: float = 0.25) -> float:
    """Wait (up to ``limit_s``) until other processes leave the box mostly idle.

    A developer's machine or CI box may be running tests next to us; starting
    when it is quiet makes the latency rows mean something. Returns the busy
    share seen last, which the report prints.
    """
    deadline = time.monotonic() + limit_s
    while True:
        before = procstat.machine()
        time.sleep(1.0)
        after = procstat.machine()
        busy = (after.busy - before.busy) / max(1, after.total - before.total)
        if busy < threshold or time.monotonic() >= deadline:
            if busy >= threshold:
                print(f"box still {busy:.0%} busy after {limit_s:.0f} s; measuring anyway")
            return busy
        print(f"waiting for the box to calm down ({busy:.0%} busy)", flush=True)


def _kes_loop(args: Sequence[str], pid: int) -> str:
    """kes-server's event loop: what ``--loop`` asked for, else what the process has loaded."""
    for i, arg in enumerate(args):
        if arg == "--loop" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--loop="):
            return arg.split("=", 1)[1]
    return loops.of_process(pid)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _server_reason(exc: BaseException) -> str:
    """The server's own last log line: why it refused to start."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _upstream_version() -> str:
    """``kes --version`` of the real KES binary, or why there is none."""
    try:
        binary = servers.upstream_binary()
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"not available: {_first_line(exc)}"
    return f"{out.stdout.strip() or out.stderr.strip()} ({binary})"


def _meta(bench: Bench, argv: Sequence[str]) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    args = bench.args

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    model = ""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh,
    ):
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench" + (f" ARGS={shlex.quote(' '.join(argv))}" if argv else ""),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "kernel": platform.release(),
        "versions": {
            name: installed(name) for name in ("cryptography", "uvloop", "httptools", "h2", "hpack")
        },
        "pinning": bench.pin.describe(),
        "loadgen_loop": loops.best(),
        "kes_server": {"args": bench.kes_args, "loop": bench.kes_loop or "not run"},
        "upstream": _upstream_version(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "handshake_connections": args.handshake_connections,
        },
    }


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    if keep:
        path = Path(tempfile.mkdtemp(prefix="kes-bench."))
        print(f"work directory: {path}")
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="kes-bench.") as tmp:
            yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "-d", "--duration", type=float, default=5.0, help="seconds measured per scenario"
    )
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("--handshake-connections", type=int, default=8)
    p.add_argument("--tui-seconds", type=float, default=30.0)
    p.add_argument("--quick", action="store_true", help="2 s per scenario, 5 s TUI (smoke test)")
    p.add_argument("--only", default="", help=f"comma-separated groups: {','.join(GROUPS)}")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument(
        "--quiet-wait", type=float, default=30.0, help="max seconds to wait for an idle box"
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.add_argument(
        "--kes-args",
        default="",
        help="extra kes-server arguments for every kes-server row, e.g. '--loop asyncio'",
    )
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.tui_seconds = 2.0, 0.5, 5.0
    groups = [g for g in (args.only.split(",") if args.only else GROUPS) if g]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        p.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    background = _wait_for_quiet(args.quiet_wait)
    with _workdir(args.keep) as work:
        bench = Bench(args, work)
        for group in groups:
            bench.log(f"== {group}")
            try:
                getattr(bench, group)()
            except Exception as exc:  # noqa: BLE001 - one broken group must not lose the rest
                traceback.print_exc()
                bench.skip(f"{group}.error", group, f"group failed: {_first_line(exc)}")
    meta = _meta(bench, argv)
    meta["background_busy"] = background
    doc = {
        "meta": meta,
        "elapsed_s": time.monotonic() - started,
        "results": bench.results,
        "profiles": bench.profiles,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    from bench import report

    report.write(doc, args.doc, bench.profiles_dir)
    bench.log(f"wrote {args.results} and {args.doc} in {doc['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
