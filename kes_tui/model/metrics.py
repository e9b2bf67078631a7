"""Reading ``/v1/metrics``: Prometheus text in, rates and latency percentiles out.

KES exposes counters and one latency histogram, not rates. The status screen
scrapes every few seconds and derives the request rate from the difference
between two scrapes, and latency percentiles from the difference of the
histogram buckets (Prometheus's ``histogram_quantile`` idea), so the numbers
describe the last interval rather than the server's whole life.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

__all__ = ["MetricsHistory", "Sample", "format_duration", "parse_metrics", "quantile"]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LE = re.compile(r'le="([^"]+)"')

REQUEST_COUNTERS = (
    "kes_http_request_success",
    "kes_http_request_error",
    "kes_http_request_failure",
)
LATENCY = "kes_http_response_time"


@dataclass(frozen=True)
class Sample:
    """One scrape: plain values by name, and the latency histogram's cumulative buckets."""

    at: float
    values: dict[str, float] = field(default_factory=dict)
    buckets: tuple[tuple[float, float], ...] = ()

    @property
    def requests(self) -> float:
        """Counted requests so far (success + 4xx + 5xx, as the spec's invariant says)."""
        return sum(self.values.get(name, 0.0) for name in REQUEST_COUNTERS)


def parse_metrics(text: str, at: float) -> Sample:
    """Parse the exposition text; unknown and labelled families other than ``le`` are skipped."""
    values: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        name, labels, raw = m.groups()
        try:
            value = float(raw)
        except ValueError:
            continue
        if name == f"{LATENCY}_bucket" and labels:
            le = _LE.search(labels)
            if le is not None:
                buckets.append((float(le.group(1)), value))
        elif not labels:
            values[name] = value
    buckets.sort()
    return Sample(at=at, values=values, buckets=tuple(buckets))


def quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """The ``q`` quantile (seconds) from cumulative buckets, interpolated within a bucket.

    Returns ``None`` without observations. A quantile in the ``+Inf`` bucket
    reports the highest finite bound, as Prometheus does.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def format_duration(seconds: float | None) -> str:
    """``-`` for unknown, else ms below a second, else seconds."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


class MetricsHistory:
    """The last scrapes, and what they say about the recent past."""

    def __init__(self, keep: int = 120) -> None:
        self.samples: deque[Sample] = deque(maxlen=keep)
        #: Requests per second between consecutive scrapes (for the sparkline).
        self.rates: deque[float] = deque(maxlen=keep)

    def add(self, sample: Sample) -> None:
        if self.samples:
            prev = self.samples[-1]
            elapsed = sample.at - prev.at
            if elapsed > 0:
                self.rates.append(max(0.0, (sample.requests - prev.requests) / elapsed))
        self.samples.append(sample)

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def recent_buckets(self, span: int = 10) -> tuple[tuple[float, float], ...]:
        """Bucket counts observed over the last ``span`` scrapes (all time if that is empty)."""
        if not self.samples:
            return ()
        latest = self.samples[-1]
        base = self.samples[max(0, len(self.samples) - 1 - span)]
        if base is latest or len(base.buckets) != len(latest.buckets):
            return latest.buckets
        diff = tuple(
            (bound, count - old)
            for (bound, count), (_, old) in zip(latest.buckets, base.buckets, strict=True)
        )
        return diff if diff[-1][1] > 0 else latest.buckets

    def percentiles(self, qs: tuple[float, ...] = (0.5, 0.9, 0.99)) -> dict[float, float | None]:
        """Recent latency percentiles in seconds."""
        buckets = self.recent_buckets()
        return {q: quantile(q, buckets) for q in qs}
