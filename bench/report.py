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
    """One of issue 9's targets, with its verdict from this run."""

    name: str
    goal: str
    measured: str
    status: str  # "met", "NOT met", "not measured"
    note: str = ""


def targets(results: dict[str, Result]) -> list[Target]:
    """Every target's ratio from this run, or why it could not be computed."""
    out: list[Target] = []

    def ratio_target(
        name: str, goal: str, a: str, b: str, value: str, fmt: str, ok: Any, note: str = ""
    ) -> None:
        ra, rb = _get(results, a), _get(results, b)
        if ra is None or rb is None:
            out.append(Target(name, goal, "-", "not measured", _why(results, a, b)))
            return
        v = float(ra[value] if value == "rps" else _cpu(ra)) / max(
            1e-9, float(rb[value] if value == "rps" else _cpu(rb))
        )
        out.append(
            Target(name, goal, fmt.format(v=v, a=ra, b=rb), "met" if ok(v) else "NOT met", note)
        )

    for wl in ("generate", "decrypt"):
        ratio_target(
            f"{wl}: server CPU per request vs bare asyncio",
            "<= 2x",
            f"kes.{wl}",
            f"baseline.{wl}",
            "cpu",
            "{v:.2f}x ({a[server_cpu_us][server]:.0f} vs {b[server_cpu_us][server]:.0f} µs)",
            lambda v: v <= 2.0,
        )
    w1 = _get(results, "workers.1")
    wn = [r for sid, r in results.items() if sid.startswith("workers.") and sid != "workers.1"]
    if w1 is not None and wn and _get(results, wn[0]["id"]) is not None:
        n = int(wn[0]["id"].split(".")[1])
        v = wn[0]["rps"] / w1["rps"]
        out.append(
            Target(
                f"--workers {n}: req/s scales with cores",
                f">= {0.8 * n:.1f}x of --workers 1 (80% of linear)",
                f"{v:.2f}x ({wn[0]['rps']:.0f} vs {w1['rps']:.0f} req/s; server used "
                f"{wn[0]['server_cores']['server']:.2f} vs "
                f"{w1['server_cores']['server']:.2f} cores)",
                "met" if v >= 0.8 * n else "NOT met",
                "the load generator runs on the same cores",
            )
        )
    else:
        sids = [r["id"] for r in wn] or ["workers.2"]
        out.append(
            Target(
                "--workers N: req/s scales with cores",
                "80% of linear",
                "-",
                "not measured",
                _why(results, "workers.1", *sids),
            )
        )

    def throughput_target(name: str, goal: str, a: str, b: str, unit: str, floor: float) -> None:
        """Judged on the CPU-per-request ratio: the throughput ratio at equal CPU.

        A single-worker server is CPU-bound, so its req/s is (cores it got) / (CPU per
        request). On a box shared with the load generator and other jobs the cores it
        got differ from row to row; the CPU per request does not. The raw req/s ratio
        is shown too.
        """
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
                f"{at_equal_cpu:.2f} at equal CPU ({_cpu(ra):.0f} vs {_cpu(rb):.0f} µs/{unit}); "
                f"raw {raw:.2f} ({ra['rps']:.0f} vs {rb['rps']:.0f} {unit}/s)",
                "met" if at_equal_cpu >= floor else "NOT met",
            )
        )

    throughput_target(
        "8 audit-trace subscribers: generate throughput cost",
        "<= 10% (ratio >= 0.90)",
        "kes.generate.trace8",
        "kes.generate",
        "req",
        0.9,
    )
    throughput_target(
        "etcd store, warm cache: generate vs in-memory",
        "within 10% (ratio >= 0.90)",
        "etcd.generate",
        "etcd.memref",
        "req",
        0.9,
    )
    throughput_target(
        "new mTLS connections/s (full handshake) vs bare asyncio",
        ">= 80% (ratio >= 0.80)",
        "kes.handshake",
        "baseline.handshake",
        "conn",
        0.8,
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
    ("baseline", "Bare asyncio + ssl baseline (`bench/baseline_server.py`)", "baseline."),
    ("kes", "kes-server, 1 worker, in-memory store", "kes."),
    ("quart", "kes-server with the fast path off (every request through Quart)", "quart."),
    ("workers", "`--workers` (fs store)", "workers."),
    ("nginx", "Through nginx (docs/examples/nginx.conf)", "nginx."),
    ("etcd", "etcd key store", "etcd."),
)


def _tables(results: dict[str, Result]) -> list[str]:
    lines: list[str] = []
    for _group, title, prefix in _SECTIONS:
        rows = [r for sid, r in results.items() if sid.startswith(prefix)]
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
        if r["id"].startswith(("kes.", "quart.", "workers."))
        else "#dd8452"
        if r["id"].startswith("baseline.")
        else "#55a868"
        for r in rows
    ]
    names = []

    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    ax.barh(labels, [r["rps"] for r in rows], color=colours)
    ax.invert_yaxis()
    ax.set_xlabel("requests/s (orange: bare asyncio baseline, blue: kes-server, green: nginx/etcd)")
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


def _ceiling(results: dict[str, Result], cpus: object) -> list[str]:
    lines = ["", "## The load generator's own ceiling", ""]
    base = _get(results, "baseline.version") or _get(results, "baseline.generate")
    kes = _get(results, "kes.generate")
    if base is None:
        return [*lines, "Not measured: " + _why(results, "baseline.version")]
    per_core = 1e6 / base["loadgen_cpu_us"] if base["loadgen_cpu_us"] else 0.0
    text = (
        "`bench/loadgen.py` (asyncio + ssl, raw HTTP/1.1, pre-built requests) against the bare "
        f"baseline's constant `GET /version`: **{base['rps']:,.0f} req/s** with one load process, "
        f"costing the load generator **{base['loadgen_cpu_us']:.0f} µs of CPU per request**, i.e. "
        f"about **{per_core:,.0f} req/s per core** it can drive. Server and load generator share "
        f"the box's {cpus} cores, so that row is limited by the box, not by either side alone."
    )
    p2 = _get(results, "baseline.version.p2")
    if p2 is not None:
        text += f" With two load processes: {p2['rps']:,.0f} req/s."
    lines.append(text)
    if kes is not None:
        share = kes["rps"] / per_core if per_core else 0.0
        lines += [
            "",
            f"Against kes-server (generate) the load generator used **{kes['loadgen_cores']:.2f} "
            f"cores** while the server used **{kes['server_cores']['server']:.2f}**: kes-server's "
            f"{kes['rps']:,.0f} req/s is {share:.0%} of what the load generator can drive per "
            "core, so the server, not the load generator, limits the kes-server rows.",
        ]
    return lines


_INTRO = (
    "Everything runs on loopback with real mutual TLS (TLS 1.3, ECDSA P-256 certificates, the "
    "client presents a certificate on every connection) and HTTP/1.1 keep-alive unless a row "
    "says h2. Each row keeps `conns` connections busy for {duration} s after a {warmup} s warm-up "
    "(closed loop: the next request as soon as the answer arrives; `@N/s` rows are open loop, "
    "with latency counted from when a request was due). Server CPU comes from "
    "`/proc/<pid>/stat` (utime+stime of the server and its children) over the measured window, "
    "divided by the requests completed in it, so it is the server's own cost whatever the load "
    "generator or other processes on the box did; `box busy` is the share of all cores busy "
    "(before the run, other processes kept {background:.0%} busy). Absolute req/s on a shared "
    "2-core box vary ~2x between runs: compare rows of one run, as the targets below do. Rows "
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
    versions = meta["versions"]
    lines = [
        "# Performance",
        "",
        "<!-- Generated by bench/report.py from bench/results/latest.json: do not edit. -->",
        "",
        f"Measured {meta['date']} with **`{meta['command']}`** in {doc.get('elapsed_s', 0):.0f} s "
        f"on {meta['cpus']} × {meta.get('cpu_model') or 'CPU'} (Linux {meta['kernel']}), "
        f"Python {meta['python']}, {meta['openssl']}, Quart {versions['quart']}, "
        f"hypercorn {versions['hypercorn']}.",
        "",
        _INTRO.format(
            duration=settings.get("duration_s"),
            warmup=settings.get("warmup_s"),
            background=meta.get("background_busy", 0.0),
        ),
        "",
        "## Targets (issue 9), ratios from this run",
        "",
        "| target | goal | measured | status |",
        "|---|---|---|---|",
    ]
    for t in targets(results):
        note = f" ({t.note})" if t.note else ""
        lines.append(f"| {t.name} | {t.goal} | {t.measured}{note} | **{t.status}** |")
    lines += _ceiling(results, meta.get("cpus"))
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
