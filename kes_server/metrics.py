"""Prometheus metrics with the KES v0.17 families, in their exact wire form.

KES clients (and upstream's integration test) read ``/v1/metrics`` as the Go
Prometheus text format and look for families such as
``kes_http_request_success`` of type counter holding exactly one unlabelled
sample of that very name.

The values live in plain Python numbers: the server is one event loop per
process, and prometheus-client's own metric objects take a lock on every
update, which on the request path cost more than the audit event. At scrape
time a prometheus-client ``Collector`` turns the numbers into metric families
(the library's way of exposing values kept elsewhere), and ``render()`` writes
them with Go's names (prometheus-client's own writer would rename counters to
``*_total``, which KES clients would not find).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0)
STORE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


class Counter:
    """A monotonically increasing number."""

    __slots__ = ("doc", "name", "value")

    def __init__(self, name: str, doc: str) -> None:
        self.name, self.doc, self.value = name, doc, 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def family(self) -> Metric:
        return CounterMetricFamily(self.name, self.doc, value=self.value)


class Gauge:
    """A number that goes up and down, or is read from a function at scrape time."""

    __slots__ = ("doc", "function", "name", "value")

    def __init__(self, name: str, doc: str, function: Callable[[], float] | None = None) -> None:
        self.name, self.doc, self.value, self.function = name, doc, 0, function

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def family(self) -> Metric:
        value = self.function() if self.function is not None else self.value
        return GaugeMetricFamily(self.name, self.doc, value=value)


class Histogram:
    """Observations counted per bucket (cumulated at scrape time, as Prometheus wants)."""

    __slots__ = ("bounds", "counts", "doc", "name", "total")

    def __init__(self, name: str, doc: str, bounds: tuple[float, ...]) -> None:
        self.name, self.doc, self.bounds = name, doc, bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self) -> Metric:
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            buckets.append((_go_float(bound), running))
        return HistogramMetricFamily(self.name, self.doc, buckets=buckets, sum_value=self.total)


def _go_float(value: float) -> str:
    """A sample value as Go's text format writes it (``+Inf``, ``NaN``, ``3``, ``0.25``)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Families(Collector):
    """Hands the current values to prometheus-client at scrape time."""

    def __init__(self, metrics: list[Counter | Gauge | Histogram]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for metric in self.metrics:
            yield metric.family()


class Metrics:
    """Every metric the server exposes; one instance per server process."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.request_success = Counter(
            "kes_http_request_success", "Number of requests answered with status 200."
        )
        self.request_error = Counter(
            "kes_http_request_error", "Number of requests answered with a 4xx status."
        )
        self.request_failure = Counter(
            "kes_http_request_failure", "Number of requests answered with a 5xx status."
        )
        self.request_active = Gauge("kes_http_request_active", "Number of requests in flight.")
        self.response_time = Histogram(
            "kes_http_response_time", "Response latency in seconds.", LATENCY_BUCKETS
        )
        self.log_error_events = Counter("kes_log_error_events", "Number of error log events.")
        self.log_audit_events = Counter("kes_log_audit_events", "Number of audit log events.")
        self.up_time = Gauge(
            "kes_system_up_time",
            "Seconds since the server started.",
            lambda: time.monotonic() - self.started,
        )
        # pykes additions, all unlabelled so every family holds one metric.
        self.store_latency = Histogram(
            "kes_keystore_latency", "Key store operation latency in seconds.", STORE_BUCKETS
        )
        self.store_errors = Counter("kes_keystore_errors", "Number of failed key store operations.")
        self.cache_hits = Counter("kes_cache_hits", "Key cache hits.")
        self.cache_misses = Counter("kes_cache_misses", "Key cache misses.")
        self.trace_subscribers = Gauge(
            "kes_log_trace_subscribers", "Live audit and error trace subscribers."
        )
        self.trace_dropped = Counter(
            "kes_log_trace_dropped", "Events dropped for slow trace subscribers."
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            _Families(
                [
                    self.request_success,
                    self.request_error,
                    self.request_failure,
                    self.request_active,
                    self.response_time,
                    self.log_error_events,
                    self.log_audit_events,
                    self.up_time,
                    self.store_latency,
                    self.store_errors,
                    self.cache_hits,
                    self.cache_misses,
                    self.trace_subscribers,
                    self.trace_dropped,
                ]
            )
        )

    def observe(self, status: int, seconds: float) -> None:
        """Count one finished request (not /v1/metrics itself)."""
        if status == 200:
            self.request_success.value += 1
        elif 400 <= status < 500:
            self.request_error.value += 1
        elif status >= 500:
            self.request_failure.value += 1
        self.response_time.observe(seconds)

    def cache_event(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).value += 1

    def render(self) -> bytes:
        """The text exposition format (0.0.4) with Go-compatible family names."""
        out: list[str] = []
        for family in self.registry.collect():
            name, kind = family.name, family.type
            out.append(f"# HELP {name} {family.documentation}\n")
            out.append(f"# TYPE {name} {kind}\n")
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                sample_name = name if kind == "counter" else sample.name
                labels = ""
                if sample.labels:
                    inner = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    labels = "{" + inner + "}"
                out.append(f"{sample_name}{labels} {_go_float(sample.value)}\n")
        return "".join(out).encode()
