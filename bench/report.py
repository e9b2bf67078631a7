"""docs/performance.md and its plots, generated from bench/results/latest.json.

Generated rather than hand-written so the document can never disagree with
the numbers: every figure and every target verdict is computed here from one
run. ``python -m bench.report`` regenerates the doc from the stored JSON
without measuring again (e.g. after editing the wording below).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Target", "main", "targets", "write"]

REPO = Path(__file__).resolve().parent.parent

Result = dict[str, Any]


def _get(results: dict[str, Result], sid: str) -> Result | None:
    r = results.get(sid)
    return r if r is not None and "skipped" not in r and r.get("requests") else None


def _why(results: dict[str, Result], *sids: str) -> str:
    for sid in sids:
        r = results.get(sid)
        if r is None:
            return f"`{sid}` was not run"
        if "skipped" in r:
            return f"`{sid}` not measured: {r['skipped']}"
        if not r.get("requests"):
            return f"`{sid}` completed no request ({'; '.join(r.get('error_samples', []))})"
    return ""


def _cpu(r: Result) -> float:
    return float(r["server_cpu_us"].get("server", 0.0))


@dataclass(frozen=True)
class Target:
    """One of issue 12's targets, with its verdict from this run."""

    name: str
    goal: str
    measured: str
    status: str  # "met", "NOT met", "not measured"
    note: str = ""


#: The rows compared with the real KES: (workload row suffix, label, least ours/KES per core).
VERSUS_KES = (
    ("generate", "generate, HTTP/1.1", 0.5),
    ("decrypt", "decrypt, HTTP/1.1", 0.5),
    ("generate.h2", "generate, HTTP/2", 0.3),
)


def baseline_prefix(meta: dict[str, Any]) -> str:
    """The bare baseline on kes-server's own event loop (``uvloop.`` or ``baseline.``)."""
    loop = meta.get("kes_server", {}).get("loop", "asyncio")
    return "uvloop." if loop == "uvloop" else "baseline."


def targets(results: dict[str, Result], meta: dict[str, Any] | None = None) -> list[Target]:
    """Every target's ratio from this run, or why it could not be computed.

    Throughput targets are judged per core: every server in a compared pair ran
    alone on one core, so requests per core-second is 1 / (CPU per request),
    and the ratio of those does not depend on how much of its core a server
    got while other processes shared the box. The raw req/s ratio is shown too.
    """
    out: list[Target] = []
    base = baseline_prefix(meta or {})
    loop = "uvloop" if base == "uvloop." else "asyncio"

    def per_core(name: str, goal: str, a: str, b: str, floor: float, unit: str = "req") -> None:
        ra, rb = _get(results, a), _get(results, b)
        if ra is None or rb is None:
            out.append(Target(name, goal, "-", "not measured", _why(results, a, b)))
            return
        at_equal_cpu = _cpu(rb) / max(1e-9, _cpu(ra))
        raw = ra["rps"] / max(1e-9, rb["rps"])
        out.append(
            Target(
                name,
                goal,
                f"**{at_equal_cpu:.2f}** per core ({_cpu(ra):.0f} vs {_cpu(rb):.0f} µs/{unit}); "
                f"raw {raw:.2f} ({ra['rps']:,.0f} vs {rb['rps']:,.0f} {unit}/s)",
                "met" if at_equal_cpu >= floor else "NOT met",
            )
        )

    for suffix, label, floor in VERSUS_KES:
        per_core(
            f"{label}: kes-server / real KES",
            f">= {floor}x per core",
            f"kes.{suffix}",
            f"upstream.{suffix}",
            floor,
        )
    for wl in ("generate", "decrypt"):
        ra, rb = _get(results, f"kes.{wl}"), _get(results, f"{base}{wl}")
        name = f"{wl}: server CPU per request vs the bare baseline on {loop}"
        if ra is None or rb is None:
            why = _why(results, f"kes.{wl}", f"{base}{wl}")
            out.append(Target(name, "<= 1.5x", "-", "not measured", why))
            continue
        v = _cpu(ra) / max(1e-9, _cpu(rb))
        out.append(
            Target(
                name,
                "<= 1.5x",
                f"{v:.2f}x ({_cpu(ra):.0f} vs {_cpu(rb):.0f} µs)",
                "met" if v <= 1.5 else "NOT met",
            )
        )
    per_core(
        "8 audit-trace subscribers: generate throughput cost",
        "<= 10% (ratio >= 0.90)",
        "kes.generate.trace8",
        "kes.generate",
        0.9,
    )
    per_core(
        f"new mTLS connections/s (full handshake) vs the bare baseline on {loop}",
        ">= 80% (ratio >= 0.80)",
        "kes.handshake",
        f"{base}handshake",
        0.8,
        unit="conn",
    )
    per_core(
        "etcd store, warm cache: generate vs in-memory",
        "within 10% (ratio >= 0.90)",
        "etcd.generate",
        "etcd.memref",
        0.9,
    )
    for store in ("vault", "aws"):
        per_core(
            f"{'Vault' if store == 'vault' else 'AWS'} store, warm cache: generate vs in-memory",
            "within 10% (ratio >= 0.90)",
            f"{store}.generate",
            f"{store}.memref",
            0.9,
        )
    open50 = _get(results, "kes.generate.open50")
    if open50 is None:
        out.append(
            Target(
                "p99 latency at 50% of peak",
                "<= 5 ms",
                "-",
                "not measured",
                _why(results, "kes.generate.open50"),
            )
        )
    else:
        p99 = open50["latency_ms"]["p99"]
        out.append(
            Target(
                "p99 latency at 50% of peak (generate, open loop)",
                "<= 5 ms",
                f"{p99:.2f} ms at {open50['rps']:.0f} req/s (peak {open50.get('peak_rps', 0):.0f})",
                "met" if p99 <= 5.0 else "NOT met",
            )
        )
    tui = results.get("tui.audit")
    if tui is None or "skipped" in tui:
        reason = tui["skipped"] if tui else "`tui.audit` was not run"
        out.append(
            Target(
                "TUI audit screen at 1,000 events/s", "no event lost", "-", "not measured", reason
            )
        )
    else:
        lost = int(tui.get("lost", -1))
        out.append(
            Target(
                "TUI audit screen at 1,000 events/s",
                "no event lost",
                f"{tui.get('delivered', 0)} events, {lost} lost, "
                f"app CPU {tui.get('cpu_cores', 0):.2f} cores",
                "met" if lost == 0 else "NOT met",
            )
        )
    return out


# --------------------------------------------------------------------------- tables


def _fmt_cpu(r: Result) -> str:
    return " + ".join(
        f"{v:.0f}" + ("" if k == "server" else f" ({k})") for k, v in r["server_cpu_us"].items()
    )


def _fmt_cores(r: Result) -> str:
    return " + ".join(
        f"{v:.2f}" + ("" if k == "server" else f" ({k})") for k, v in r["server_cores"].items()
    )


_HEADER = (
    "| scenario | conns | req/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | server cores "
    "| loadgen cores | box busy | errors |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _row(r: Result) -> str:
    lat = r["latency_ms"]
    conns = f"{r['connections']}" + (" h2" if r.get("http2") else "")
    if r.get("rate_target"):
        conns += f" @{r['rate_target']:.0f}/s"
    return (
        f"| {r['label']} | {conns} | {r['rps']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | "
        f"{lat['p99.9']:.2f} | {_fmt_cpu(r)} | {_fmt_cores(r)} | {r['loadgen_cores']:.2f} | "
        f"{r['machine_busy']:.0%} | {r['errors']} |"
    )


_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("upstream", "The real KES v0.17.6 (Go, `GOMAXPROCS=1`, one core)", "upstream."),
    ("baseline", "Bare asyncio + ssl baseline (`bench/baseline_server.py`)", "baseline."),
    ("uvloop", "Bare baseline on uvloop (`baseline_server.py --loop uvloop`)", "uvloop."),
    ("kes", "kes-server, 1 worker, in-memory store", "kes."),
    ("workers", "`--workers` (fs store; server and load generator not pinned)", "workers."),
    ("nginx", "Through nginx (docs/examples/nginx.conf)", "nginx."),
    ("etcd", "etcd key store", "etcd."),
    ("vault", "Vault key store (a real OpenBao on the same box)", "vault."),
    ("aws", "AWS Secrets Manager key store (moto on the same box)", "aws."),
)


def _ops_table(rows: list[Result]) -> list[str]:
    """Cold store operations (bench/kms.py): p50/p99 per operation."""
    lines: list[str] = []
    for r in rows:
        lines += [
            "",
            f"{r['label']} (`{r['id']}`), straight through the key store interface:",
            "",
            "| operation | p50 ms | p99 ms |",
            "|---|---:|---:|",
        ]
        for op, t in r["ops"].items():
            lines.append(f"| {op} | {t['p50_ms']:.2f} | {t['p99_ms']:.2f} |")
    return lines


def _tables(results: dict[str, Result]) -> list[str]:
    lines: list[str] = []
    for _group, title, prefix in _SECTIONS:
        ops = [r for sid, r in results.items() if sid.startswith(prefix) and "ops" in r]
        rows = [r for sid, r in results.items() if sid.startswith(prefix) and "ops" not in r]
        measured = [_row(r) for r in rows if "skipped" not in r]
        skipped = [
            f"- **{r['label']}** (`{r['id']}`): not measured: {r['skipped']}"
            for r in rows
            if "skipped" in r
        ]
        if not rows:
            continue
        lines += ["", f"### {title}", ""]
        if measured:
            lines += [_HEADER, *measured, ""]
        lines += skipped
        lines += _ops_table(ops)
    return lines


# --------------------------------------------------------------------------- plots


def _plots(results: dict[str, Result], out: Path) -> list[str]:
    """Three PNGs; returns their names (empty when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rows = [r for r in results.values() if "skipped" not in r and r.get("requests") and "rps" in r]
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    labels = [f"{r['id']}" for r in rows]
    colours = [
        "#4c72b0"
        if r["id"].startswith(("kes.", "workers."))
        else "#dd8452"
        if r["id"].startswith(("baseline.", "uvloop."))
        else "#c44e52"
        if r["id"].startswith("upstream.")
        else "#55a868"
        for r in rows
    ]
    names = []

    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    ax.barh(labels, [r["rps"] for r in rows], color=colours)
    ax.invert_yaxis()
    ax.set_xlabel(
        "requests/s (red: real KES, orange: bare baselines, blue: kes-server, green: nginx/etcd)"
    )
    ax.set_title("Throughput, mTLS on loopback")
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=100)
    plt.close(fig)
    names.append("throughput.png")

    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    ax.barh(labels, [sum(r["server_cpu_us"].values()) for r in rows], color=colours)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("server CPU µs per request (from /proc; log scale)")
    ax.set_title("Server CPU per request")
    fig.tight_layout()
    fig.savefig(out / "cpu.png", dpi=100)
    plt.close(fig)
    names.append("cpu.png")

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    height = 0.27
    for i, (q, c) in enumerate((("p50", "#8fbbd9"), ("p99", "#4c72b0"), ("p99.9", "#1f3a60"))):
        ax.barh(
            [y + (i - 1) * height for y in range(len(rows))],
            [max(1e-3, r["latency_ms"][q]) for r in rows],
            height=height,
            color=c,
            label=q,
        )
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("latency ms (log scale)")
    ax.legend(loc="lower right")
    ax.set_title("Latency percentiles")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    plt.close(fig)
    names.append("latency.png")
    return names


# --------------------------------------------------------------------------- document


def _profile_tables(prof: dict[str, Any], doc_dir: Path) -> dict[str, Any]:
    """Recompute the tables from the stored stacks when they are there (the source of truth)."""
    stacks_path = doc_dir / prof.get("collapsed", "-")
    if not stacks_path.is_file():
        return prof
    from bench import profile

    fresh = profile.Profile.of(profile.load_collapsed(stacks_path))
    return {
        **prof,
        "samples": fresh.samples,
        "self_top": fresh.self_top,
        "inclusive_top": fresh.inclusive_top,
        "categories": fresh.categories,
    }


def _profile_section(profiles: dict[str, dict[str, Any]], doc_dir: Path) -> list[str]:
    lines = ["", "## Where the time goes", ""]
    if not profiles:
        return [*lines, "No profile was recorded in this run (`--no-profile`)."]
    lines += [
        "Sampled with py-spy (from outside the process, 250 Hz) while the load generator kept "
        "the server busy. Each sample is charged to the area of its innermost frame that "
        "belongs to one, so areas add up to 100%; C code is charged to the Python frame that "
        "called it (`SSLObject.write` is OpenSSL encrypting a record, "
        "`_SelectorSocketTransport.write` is the `send()` syscall). The flame graphs are SVGs "
        "(open one in a browser and hover for each frame's share); the collapsed stacks next to "
        "them feed any flame graph tool.",
    ]
    for stored in profiles.values():
        lines += ["", f"### {stored['title']}", ""]
        if "error" in stored:
            lines += [
                f"Not recorded: {stored['error']}. Fallback: run the server under "
                "`python -m cProfile -o server.prof -m kes_server ...` and read it with `pstats`.",
            ]
            continue
        prof = _profile_tables(stored, doc_dir)
        lines += [
            f"Flame graph: [{prof['svg']}]({prof['svg']}) ({prof['samples']} samples; "
            f"stacks: [{prof['collapsed']}]({prof['collapsed']})).",
            "",
            "| area (exclusive) | share of samples |",
            "|---|---:|",
        ]
        lines += [
            f"| {label} | {share:.1%} |" for label, share in prof["categories"] if share >= 0.005
        ]
        lines += ["", "| function (self time) | self |", "|---|---:|"]
        lines += [f"| `{f}` | {share:.1%} |" for f, share in prof["self_top"][:12]]
        lines += ["", "| function (inclusive) | total |", "|---|---:|"]
        lines += [f"| `{f}` | {share:.1%} |" for f, share in prof["inclusive_top"][:15]]
    return lines


def _headline(results: dict[str, Result], meta: dict[str, Any]) -> list[str]:
    """The first thing the doc says: kes-server's requests per core against the real KES."""
    base = baseline_prefix(meta)
    loop = "uvloop" if base == "uvloop." else "asyncio"
    lines = [
        "## kes-server vs the real KES, per core",
        "",
        "Requests per second that one core serves (1 / server CPU per request; every server "
        "below was pinned to the same single core). The real KES is v0.17.6 built from source, "
        "`GOMAXPROCS=1`; the bare baseline is the Python ceiling on kes-server's event loop "
        f"(`{loop}` in this run).",
        "",
        "| workload | real KES | kes-server | **ours / KES** | goal | bare baseline "
        f"({loop}) | ours / baseline |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]

    def cell(r: Result | None) -> str:
        return f"{1e6 / max(1e-9, _cpu(r)):,.0f}" if r is not None else "-"

    for suffix, label, floor in VERSUS_KES:
        kes, up, bare = (_get(results, p + suffix) for p in ("kes.", "upstream.", base))
        vs_kes = f"**{_cpu(up) / max(1e-9, _cpu(kes)):.2f}x**" if kes and up else "-"
        vs_bare = f"{_cpu(bare) / max(1e-9, _cpu(kes)):.2f}x" if kes and bare else "-"
        lines.append(
            f"| {label} | {cell(up)} | {cell(kes)} | {vs_kes} | >= {floor}x | {cell(bare)} "
            f"| {vs_bare} |"
        )
    up = results.get("upstream.generate")
    if up is None or "skipped" in up:
        why = up["skipped"] if up else "the `upstream` group was not run"
        lines += [
            "",
            f"**The real KES was not measured in this run:** {why}. Build it offline with "
            "`../shared/infra/kes-upstream/build.sh <git dir of a minio/kes snapshot>` "
            "(it installs into `~/.cache/kes-upstream/bin/kes`), or point `KES_UPSTREAM_BIN` "
            "at a v0.17.6 `kes` binary. Until then the bare baseline is the reference.",
        ]
    return lines


def _ceiling(results: dict[str, Result], meta: dict[str, Any]) -> list[str]:
    """How much load the load generator can drive from its one core, against whom."""
    lines = ["", "## The load generator's own ceiling", ""]
    probe = _get(results, "upstream.version") or _get(results, "baseline.version")
    if probe is None:
        return [*lines, "Not measured: " + _why(results, "upstream.version", "baseline.version")]
    per_core = 1e6 / probe["loadgen_cpu_us"] if probe["loadgen_cpu_us"] else 0.0
    who = "the real KES" if probe["id"].startswith("upstream.") else "the bare baseline"
    loop = meta.get("loadgen_loop", "asyncio")
    lines.append(
        "`bench/loadgen.py` (raw HTTP/1.1 and hand-written HTTP/2 frames over asyncio + ssl on "
        f"{loop}, pre-built requests) against {who}'s `GET /version`: "
        f"**{probe['rps']:,.0f} req/s**, costing the load generator "
        f"**{probe['loadgen_cpu_us']:.0f} µs of CPU per request**, i.e. about "
        f"**{per_core:,.0f} req/s per core** it can drive over HTTP/1.1."
    )
    rows = [
        r
        for sid in ("upstream.generate", "upstream.decrypt", "upstream.generate.h2", "kes.generate")
        if (r := _get(results, sid)) is not None
    ]
    if rows:
        lines += [
            "",
            "| row | req/s | load generator cores | load generator µs/req | its ceiling per core "
            "| bound by |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in rows:
            cores = r["loadgen_cores"]
            lines.append(
                f"| `{r['id']}` | {r['rps']:,.0f} | {cores:.2f} | {r['loadgen_cpu_us']:.0f} | "
                f"{1e6 / max(1e-9, r['loadgen_cpu_us']):,.0f} | "
                f"{'**the load generator**' if cores >= 0.9 else 'the server'} |"
            )
        lines += [
            "",
            "A row is bound by the load generator when it kept its core busy (>= 0.90 cores); "
            "the per-core ratios above use server CPU per request, which stays valid either way, "
            "but the raw req/s of such a row understates the server.",
        ]
    return lines


def _kes_run(kes: dict[str, Any]) -> str:
    """How kes-server was started in this run (its loop is read from the running process)."""
    loop = kes.get("loop", "asyncio")
    if loop == "not run":
        return "kes-server was not measured in this run"
    args = f"`{' '.join(kes['args'])}`" if kes.get("args") else "no extra arguments"
    return f"kes-server ran on {loop} with {args}"


_INTRO = (
    "Everything runs on loopback with real mutual TLS (TLS 1.3, ECDSA P-256 certificates, the "
    "client presents a certificate on every connection) and HTTP/1.1 keep-alive unless a row "
    "says h2 (the load generator offers only `http/1.1` in ALPN for those rows, so a server "
    "that prefers h2, like the real KES, cannot pick it). Pinning: {pinning}; every measured "
    "server (the real KES with `GOMAXPROCS=1`, kes-server, both bare baselines) gets the same "
    "core, so a row is one core's worth of server (the `--workers` rows are not pinned). "
    "{kes_run}; the load generator ran on {loadgen_loop}. "
    "Each row keeps `conns` connections busy for {duration} s after a {warmup} s warm-up "
    "(closed loop: the next request as soon as the answer arrives; `@N/s` rows are open loop, "
    "with latency counted from when a request was due). Server CPU comes from "
    "`/proc/<pid>/stat` (utime+stime of the server and its children) over the measured window, "
    "divided by the requests completed in it, so it is the server's own cost whatever the load "
    "generator or other processes on the box did; `box busy` is the share of all cores busy "
    "(before the run, other processes kept {background:.0%} busy). Absolute req/s on a shared "
    "2-core box vary ~2x between runs: compare rows of one run, as the targets above do. Rows "
    "that a target compares are the better of two runs (lowest server CPU per request: "
    "interference only ever adds CPU); `repeats` in latest.json has both."
)


def write(doc: dict[str, Any], path: Path, plots_dir: Path) -> None:
    """Render ``doc`` (the latest.json structure) to ``path``; plots go to ``plots_dir``."""
    results: dict[str, Result] = doc["results"]
    meta = doc["meta"]
    plots = _plots(results, plots_dir)
    rel = Path(os.path.relpath(plots_dir.resolve(), path.resolve().parent))
    settings = meta.get("settings", {})
    kes = meta.get("kes_server", {})
    installed = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v != "?")
    lines = [
        "# Performance",
        "",
        "<!-- Generated by bench/report.py from bench/results/latest.json: do not edit. -->",
        "",
        f"Measured {meta['date']} with **`{meta['command']}`** in {doc.get('elapsed_s', 0):.0f} s "
        f"on {meta['cpus']} × {meta.get('cpu_model') or 'CPU'} (Linux {meta['kernel']}), "
        f"Python {meta['python']}, {meta['openssl']}, {installed}; real KES: "
        f"{meta.get('upstream', 'not recorded')}.",
    ]
    if "--quick" in meta["command"]:
        lines += [
            "",
            "> **Smoke run** (`--quick`: 2 s per row, one run per row, on a box shared with "
            "other jobs). It shows that every row works; its numbers are not for conclusions.",
        ]
    lines += ["", *_headline(results, meta)]
    lines += [
        "",
        "## Targets (issue 12), ratios from this run",
        "",
        "| target | goal | measured | status |",
        "|---|---|---|---|",
    ]
    for t in targets(results, meta):
        note = f" ({t.note})" if t.note else ""
        lines.append(f"| {t.name} | {t.goal} | {t.measured}{note} | **{t.status}** |")
    lines += [
        "",
        "## How it was measured",
        "",
        _INTRO.format(
            duration=settings.get("duration_s"),
            warmup=settings.get("warmup_s"),
            background=meta.get("background_busy", 0.0),
            pinning=meta.get("pinning", "not recorded (before pinning was added)"),
            kes_run=_kes_run(kes),
            loadgen_loop=meta.get("loadgen_loop", "asyncio"),
        ),
    ]
    lines += _ceiling(results, meta)
    lines += ["", "## Results"]
    lines += _tables(results)
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({rel / name})" for name in plots]
    lines += _profile_section(doc.get("profiles", {}), path.resolve().parent)
    analysis = REPO / "bench" / "analysis.md"
    if analysis.exists():
        lines += ["", analysis.read_text(encoding="utf-8").strip()]
    tui = results.get("tui.audit")
    lines += ["", "## TUI audit screen throughput", ""]
    if tui is None:
        lines.append("Not run.")
    elif "skipped" in tui:
        lines.append(f"Not measured: {tui['skipped']}")
    else:
        lines += [
            "`bench/tui.py` runs `KesApp` headless (`App.run_test`, 160×48, audit screen shown) "
            "in its own process and feeds it audit events the way the SDK's stream reader does "
            "(one JSON line decoded per event, handed to `KesApp.ingest`) in 10 ms batches.",
            "",
            "| screen | rate | seconds | events fed | received | buffered | shown | dropped "
            "| lost | app CPU (cores) | µs/event |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {tui.get('screen')} | {tui.get('rate')}/s | {tui.get('seconds')} | "
            f"{tui.get('delivered')} | {tui.get('received')} | {tui.get('buffered')} | "
            f"{tui.get('shown')} | {tui.get('dropped')} | {tui.get('lost')} | "
            f"{tui.get('cpu_cores')} | {tui.get('cpu_us_per_event')} |",
        ]
    lines += [
        "",
        "## Reproducing",
        "",
        "```",
        "make bench                                   # everything, writes this file (< 10 min)",
        "make bench ARGS='--only kes -d 8 --doc /tmp/p/performance.md --results /tmp/p/r.json'",
        "                                             # one group, longer, written elsewhere",
        "make bench ARGS=\"--kes-args='--loop asyncio'\"  # kes-server with extra arguments",
        "KES_UPSTREAM_BIN=/path/to/kes make bench     # the real KES from elsewhere",
        ".venv/bin/python -m bench.report             # re-render this file from latest.json",
        ".venv/bin/python -m bench.loadgen --help     # the load generator against any server",
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    source = Path(args[0]) if args else REPO / "bench" / "results" / "latest.json"
    doc = json.loads(source.read_text(encoding="utf-8"))
    write(doc, REPO / "docs" / "performance.md", REPO / "docs" / "profiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
