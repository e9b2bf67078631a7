"""Click parameter types for values written the KES (Go) way."""

from __future__ import annotations

import re

import click

__all__ = ["DURATION", "Duration", "parse_duration_s"]

_UNITS_S = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,  # not Go, but what people type for certificate lifetimes
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration_s(text: str) -> float:
    """Parse a Go duration (``720h``, ``1h30m``, ``500ms``) into seconds.

    Flags such as ``--rate 3s`` and ``-t 720h`` are copied from upstream's
    documentation, so they must accept exactly that syntax.
    """
    value = text.strip()
    if value in ("0", ""):
        return 0.0
    position = 0
    total = 0.0
    while position < len(value):
        match = _PART.match(value, position)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS_S[match.group(2)]
        position = match.end()
    return total


class Duration(click.ParamType[float, object]):
    """A Go-style duration, converted to seconds (float)."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration_s(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()
