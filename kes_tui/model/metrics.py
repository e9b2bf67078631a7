"""Reading ``/v1/metrics``: Prometheus text in, rates and honest latency figures out.

KES exposes counters and one latency histogram, not rates. The status screen
scrapes every few seconds and derives the request rate from the difference
between two scrapes, so the numbers describe the last interval rather than
the server's whole life.

The histogram's buckets are coarse (the first one is 0-10 ms, and a healthy
server answers in well under a millisecond), so interpolating inside a bucket
would invent numbers: p50 "5 ms" at any load. What the histogram supports is
the bucket a quantile falls in (``< 10 ms``) and the mean (sum / count). Exact
percentiles come from the audit stream instead, where every event carries its
own latency (:func:`latency_percentiles`).
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "BucketRange",
    "MetricsHistory",
    "Sample",
    "format_duration",
    "latency_percentiles",
    "parse_metrics",
    "quantile_bucket",
]

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


@dataclass(frozen=True)
class BucketRange:
    """Where a quantile lies according to a histogram: between two bucket bounds (seconds)."""

    low: float
    high: float

    def describe(self) -> str:
        """``< 10 ms``, ``10 ms - 50 ms`` or ``> 10 s``: no precision the buckets do not have."""
        if math.isinf(self.high):
            return f"> {format_duration(self.low)}"
        if self.low <= 0:
            return f"< {format_duration(self.high)}"
        return f"{format_duration(self.low)} - {format_duration(self.high)}"


def quantile_bucket(q: float, buckets: tuple[tuple[float, float], ...]) -> BucketRange | None:
    """The bucket holding the ``q`` quantile of cumulative ``buckets``; ``None`` when empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    low = 0.0
    for bound, count in buckets:
        if count >= rank and count > 0:
            return BucketRange(low, bound)
        low = bound
    return BucketRange(low, math.inf)


def latency_percentiles(
    latencies_ns: Sequence[int], qs: tuple[float, ...] = (0.5, 0.9, 0.99)
) -> dict[float, int]:
    """Exact (nearest-rank) percentiles of measured latencies; empty input gives ``{}``."""
    if not latencies_ns:
        return {}
    ordered = sorted(latencies_ns)
    last = len(ordered) - 1
    return {q: ordered[min(last, max(0, math.ceil(q * len(ordered)) - 1))] for q in qs}


def format_duration(seconds: float | None) -> str:
    """``-`` for unknown; µs below a millisecond, ms below a second, else seconds.

    Trailing zeros go (``10 ms``, not ``10.0 ms``) so bucket bounds read as written.
    """
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


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

    def _recent(self, span: int) -> tuple[Sample, Sample] | None:
        """(base, latest): the scrapes ``span`` apart, or the latest twice if only one."""
        if not self.samples:
            return None
        latest = self.samples[-1]
        return self.samples[max(0, len(self.samples) - 1 - span)], latest

    def recent_buckets(self, span: int = 10) -> tuple[tuple[float, float], ...]:
        """Bucket counts observed over the last ``span`` scrapes (all time if that is empty)."""
        pair = self._recent(span)
        if pair is None:
            return ()
        base, latest = pair
        if base is latest or len(base.buckets) != len(latest.buckets):
            return latest.buckets
        diff = tuple(
            (bound, count - old)
            for (bound, count), (_, old) in zip(latest.buckets, base.buckets, strict=True)
        )
        return diff if diff[-1][1] > 0 else latest.buckets

    def percentile_buckets(
        self, qs: tuple[float, ...] = (0.5, 0.99)
    ) -> dict[float, BucketRange | None]:
        """Which bucket each recent latency percentile falls in."""
        buckets = self.recent_buckets()
        return {q: quantile_bucket(q, buckets) for q in qs}

    def mean_latency(self, span: int = 10) -> float | None:
        """Mean response time (seconds) over the last ``span`` scrapes, from sum / count.

        Falls back to the all-time mean when no request was timed in that span.
        """
        pair = self._recent(span)
        if pair is None:
            return None
        base, latest = pair
        total, count = f"{LATENCY}_sum", f"{LATENCY}_count"
        n = latest.values.get(count, 0.0) - base.values.get(count, 0.0)
        if base is not latest and n > 0:
            return (latest.values.get(total, 0.0) - base.values.get(total, 0.0)) / n
        n = latest.values.get(count, 0.0)
        return latest.values.get(total, 0.0) / n if n > 0 else None
