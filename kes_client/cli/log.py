"""``kes log``: follow the server's audit or error log live.

Traces run until the server goes away or the user stops them. Ctrl-C and a
closed pipe (``kes log trace --json | head -1``) are the normal ways to stop,
so both end with exit status 0 and no traceback. The server going away is
not: the trace ends with ``Error: ...`` and status 1, so a supervising loop
or script can tell "done" from "lost". Every event is flushed as soon as it
is printed so a downstream ``jq`` sees it at once.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

import click

from kes_client._client import EventStream
from kes_client._errors import TransportError
from kes_client._models import AuditEvent, ErrorEvent
from kes_client.cli._output import echo_json, format_duration_ns, is_tty, status_colour
from kes_client.cli._settings import AliasGroup, connection_options, get_client, json_option

__all__ = ["log", "trace"]


def _short_time(value: str) -> str:
    """``15:50:28`` in local time from an RFC 3339 timestamp; anything unparsable as it came."""
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return value


def _short_identity(identity: str) -> str:
    return identity[:12] + "…" if len(identity) > 13 else (identity or "-")


def _audit_line(event: AuditEvent) -> str:
    status = click.style(f"{event.status:<4}", fg=status_colour(event.status))
    latency = format_duration_ns(event.response_time)
    return (
        f"{_short_time(event.time):<8}  {status}  {_short_identity(event.identity):<13}  "
        f"{event.path}  {click.style(latency, dim=True)}"
    )


def _silence_stdout() -> None:
    """After EPIPE, route stdout to /dev/null so the exit-time flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _follow(kind: str, as_json: bool) -> None:
    client = get_client()
    stream: EventStream[AuditEvent] | EventStream[ErrorEvent]
    stream = client.trace_audit() if kind == "audit" else client.trace_error()
    try:
        with stream:
            if not as_json and is_tty() and kind == "audit":
                click.secho(f"{'Time':<8}  {'Code':<4}  {'Identity':<13}  Path  Latency", bold=True)
            for event in stream:
                if as_json:
                    echo_json(dict(event.raw))
                    continue
                if isinstance(event, AuditEvent):
                    click.echo(_audit_line(event))
                else:
                    click.echo(click.style(event.message, fg="red"))
                sys.stdout.flush()
        raise TransportError(
            f"{client.server} ended the {kind} trace (the server stopped or restarted)"
        )
    except KeyboardInterrupt:
        if is_tty():
            click.echo()
    except BrokenPipeError:
        _silence_stdout()


def _trace_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--type",
        "type_",
        type=click.Choice(["audit", "error"]),
        help="Which log to follow (v0.17 spelling of --audit/--error).",
    )(func)
    func = click.option("--error", "kind", flag_value="error", help="Follow the error log.")(func)
    func = click.option(
        "--audit",
        "kind",
        flag_value="audit",
        default=True,
        help="Follow the audit log (default).",
    )(func)
    return json_option(connection_options(func))


@click.group(cls=AliasGroup, invoke_without_command=True)
@_trace_options
@click.pass_context
def log(ctx: click.Context, kind: str, type_: str | None, as_json: bool) -> None:
    """Follow the server's audit or error log (same as 'kes log trace')."""
    if ctx.invoked_subcommand is None:
        _follow(type_ or kind, as_json)


@log.command("trace")
@_trace_options
def trace(kind: str, type_: str | None, as_json: bool) -> None:
    """Print audit (default) or error events as they happen, until Ctrl-C.

    With --json each event is one compact JSON line, flushed immediately.

    \b
    Examples:
      kes log trace
      kes log trace --json | jq -c 'select(.response.code != 200)'
      kes log trace --error
    """
    _follow(type_ or kind, as_json)
