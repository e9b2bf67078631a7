"""``kes status`` and ``kes metric``: is the server up, and how busy is it."""

from __future__ import annotations

import time

import click

from kes_client.cli._output import (
    echo_json,
    format_duration_ns,
    is_tty,
    render_pairs,
)
from kes_client.cli._params import DURATION
from kes_client.cli._settings import connection_options, get_client, json_option

__all__ = ["metric", "parse_prometheus", "status"]


@click.command("status")
@connection_options
@json_option
def status(as_json: bool) -> None:
    """Show the server's version, uptime and key-store state.

    \b
    Example:
      kes status
    """
    client = get_client()
    info = client.status()
    if as_json:
        kms: dict[str, object] = {}
        if info.kms_state:
            kms["state"] = info.kms_state
        if info.kms_latency_ns:
            kms["latency"] = info.kms_latency_ns
        echo_json({"version": info.version, "uptime": info.uptime_ns, "kms": kms})
        return
    state = info.kms_state or "unknown"
    colour = "green" if state == "available" else "yellow" if state == "reachable" else "red"
    pairs = [
        ("Endpoint", client.server),
        ("Version", info.version),
        ("Uptime", format_duration_ns(info.uptime_ns)),
        ("Key store", click.style(state, fg=colour)),
    ]
    if info.kms_latency_ns:
        pairs.append(("Store latency", format_duration_ns(info.kms_latency_ns)))
    click.echo(render_pairs(pairs))


def parse_prometheus(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition, keyed by name (with labels, if any).

    Just enough for KES's unlabelled families; comments and malformed lines
    are skipped rather than fatal, since this only feeds a summary.
    """
    samples: dict[str, float] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line and "}" in line:
            end = line.rindex("}") + 1
            name, rest = line[:end], line[end:].split()
        else:
            parts = line.split()
            name, rest = parts[0], parts[1:]
        if not rest:
            continue
        try:
            samples[name] = float(rest[0])
        except ValueError:
            continue
    return samples


def _sample(samples: dict[str, float], name: str) -> float:
    """A sample whether or not the exporter added the ``_total`` counter suffix."""
    return samples.get(name, samples.get(name + "_total", 0.0))


def _summary(samples: dict[str, float]) -> dict[str, int | float]:
    """What ``kes metric`` reports: counts as integers, the mean latency in seconds."""
    success = _sample(samples, "kes_http_request_success")
    error = _sample(samples, "kes_http_request_error")
    failure = _sample(samples, "kes_http_request_failure")
    count = samples.get("kes_http_response_time_count", 0.0)
    total_s = samples.get("kes_http_response_time_sum", 0.0)
    return {
        "requests": round(success + error + failure),
        "success": round(success),
        "error": round(error),
        "failure": round(failure),
        "active": round(_sample(samples, "kes_http_request_active")),
        "latency_avg_s": total_s / count if count else 0.0,
        "audit_events": round(_sample(samples, "kes_log_audit_events")),
        "error_events": round(_sample(samples, "kes_log_error_events")),
        "uptime_s": round(_sample(samples, "kes_system_up_time")),
    }


def _render(summary: dict[str, int | float], rate: float | None) -> str:
    total = summary["requests"]
    ok_share = f" ({summary['success'] / total:.0%})" if total else ""
    pairs = [
        (
            "Requests",
            f"{total:.0f} total · {summary['success']:.0f} OK{ok_share} · "
            f"{summary['error']:.0f} 4xx · {summary['failure']:.0f} 5xx · "
            f"{summary['active']:.0f} active",
        ),
        (
            "Latency",
            f"mean {format_duration_ns(int(summary['latency_avg_s'] * 1e9))} since start",
        ),
        (
            "Log events",
            f"{summary['audit_events']:.0f} audit · {summary['error_events']:.0f} error",
        ),
        ("Uptime", format_duration_ns(int(summary["uptime_s"]) * 1_000_000_000)),
    ]
    if rate is not None:
        pairs.insert(1, ("Throughput", f"{rate:.1f} req/s"))
    return render_pairs(pairs)


@click.command("metric")
@connection_options
@json_option
@click.option(
    "--rate",
    type=DURATION,
    default=None,
    help="Scrape again every DURATION (e.g. 3s) until Ctrl-C.",
)
@click.option("--raw", is_flag=True, help="Print the Prometheus exposition text as is.")
def metric(as_json: bool, rate: float | None, raw: bool) -> None:
    """Summarise the server metrics: requests, mean latency, events.

    \b
    Examples:
      kes metric
      kes metric --rate 3s
    """
    client = get_client()
    previous: tuple[float, float] | None = None
    try:
        while True:
            text = client.metrics()
            if raw:
                click.echo(text.rstrip("\n"))
            else:
                summary = _summary(parse_prometheus(text))
                now = time.monotonic()
                per_s: float | None = None
                if previous is not None and now > previous[0]:
                    per_s = (summary["requests"] - previous[1]) / (now - previous[0])
                previous = (now, summary["requests"])
                if as_json:
                    echo_json(summary)
                else:
                    if rate and is_tty():
                        click.clear()
                    click.echo(_render(summary, per_s))
            if not rate:
                return
            if not is_tty() and not as_json:
                click.echo()
            time.sleep(rate)
    except KeyboardInterrupt:
        return
