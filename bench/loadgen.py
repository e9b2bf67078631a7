"""A hand-written mTLS load generator: C keep-alive connections busy for D seconds.

Why not wrk, h2load or hey: none of them can present a client certificate, and
every KES request needs one (docs/performance.md). Why not httpx: its pool
spends more CPU per request than the server under test once 16+ requests are
in flight (shared/design/findings.md), so it would measure itself.

So this is asyncio + ssl with raw streams (on uvloop when installed, see
``bench.loops``): request bytes are built once, the HTTP/1.1 response parser
only looks for the status, ``Content-Length`` or chunked framing, and HTTP/2
is a few hand-written frames (``bench.h2wire``). Load runs in one or more
forked processes (``processes``), pinned to ``cpus`` when given so the server
under test can have a core of its own; the parent process only keeps time and
samples /proc for the server's CPU, so its own work does not disturb either.

Closed loop (default): every connection sends its next request as soon as the
previous one is answered. Open loop (``rate``): requests are due at a fixed
rate and latency is counted from when a request was *due*, not sent, so a
backed-up server cannot hide its queueing delay (no coordinated omission).

Only requests that complete inside the measurement window (after ``warmup``)
count; the server's CPU is sampled at the window's edges.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import h2wire, loops, procstat

__all__ = [
    "WORKLOADS",
    "LoadResult",
    "LoadSpec",
    "Request",
    "Target",
    "WorkloadData",
    "percentile",
    "request_once",
    "run_load",
    "run_trace_subscribers",
]

#: The workloads; ``handshake`` opens a new connection (full TLS handshake) per generate.
WORKLOADS = ("version", "generate", "encrypt", "decrypt", "create-delete", "list", "handshake")


@dataclass(frozen=True)
class Target:
    """Where to connect and as whom (the client certificate is the identity)."""

    host: str
    port: int
    ca: str
    cert: str
    key: str
    server_name: str = "localhost"

    def context(self, http2: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["h2"] if http2 else ["http/1.1"])
        return ctx


@dataclass(frozen=True)
class Request:
    """One request, with its HTTP/1.1 bytes built in advance."""

    method: str
    path: str
    body: bytes
    h1: bytes
    h2: bytes  # the HTTP/2 header block (HPACK literals, valid on any connection)

    @classmethod
    def make(cls, method: str, path: str, body: bytes = b"") -> Request:
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
        fields = [(":method", method), (":scheme", "https"), (":authority", "localhost")]
        fields.append((":path", path))
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            fields += [("content-type", "application/json"), ("content-length", str(len(body)))]
        return cls(method, path, body, head.encode() + b"\r\n" + body, h2wire.literal_block(fields))


@dataclass(frozen=True)
class WorkloadData:
    """What the workloads need from the setup step: key names and a valid ciphertext."""

    key: str = "bench"
    context: bytes = b"bucket/object"
    ciphertext: bytes = b""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def request_source(workload: str, data: WorkloadData) -> Callable[[int, int], Request]:
    """``(connection id, sequence number) -> Request`` for a workload.

    Constant requests are built once; only create/delete builds per request,
    because each needs a fresh key name.
    """
    ctx = _b64(data.context)
    fixed: Request | None = None
    if workload == "version":
        fixed = Request.make("GET", "/version")
    elif workload in ("generate", "handshake"):
        body = json.dumps({"context": ctx}).encode()
        fixed = Request.make("POST", f"/v1/key/generate/{data.key}", body)
    elif workload == "encrypt":
        body = json.dumps({"plaintext": _b64(bytes(32)), "context": ctx}).encode()
        fixed = Request.make("POST", f"/v1/key/encrypt/{data.key}", body)
    elif workload == "decrypt":
        if not data.ciphertext:
            raise ValueError("decrypt needs a ciphertext from the setup step")
        body = json.dumps({"ciphertext": _b64(data.ciphertext), "context": ctx}).encode()
        fixed = Request.make("POST", f"/v1/key/decrypt/{data.key}", body)
    elif workload == "list":
        fixed = Request.make("GET", "/v1/key/list/*")
    elif workload == "create-delete":
        pid = os.getpid()

        def create_delete(conn: int, seq: int) -> Request:
            name = f"cd-{pid}-{conn}-{seq // 2}"
            if seq % 2 == 0:
                return Request.make("POST", f"/v1/key/create/{name}")
            return Request.make("DELETE", f"/v1/key/delete/{name}")

        return create_delete
    else:
        raise ValueError(f"unknown workload {workload!r}; one of {', '.join(WORKLOADS)}")
    request = fixed
    return lambda _conn, _seq: request


# --------------------------------------------------------------------------- HTTP/1.1


class ProtocolError(Exception):
    """The server answered something this minimal client cannot parse."""


class H1Connection:
    """One keep-alive HTTP/1.1 connection over TLS."""

    def __init__(self, target: Target, ctx: ssl.SSLContext) -> None:
        self.target = target
        self.ctx = ctx
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.target.host,
            self.target.port,
            ssl=self.ctx,
            server_hostname=self.target.server_name,
        )

    async def request(self, req: Request) -> tuple[int, int]:
        """Send one request; ``(status, body bytes)``. Reconnects if the server closed."""
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(req.h1)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        size = 0
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            size = int(lower[at + 17 : end])
            if size:
                await self.reader.readexactly(size)
        elif b"\r\ntransfer-encoding: chunked" in lower:
            size = await self._chunked()
        elif status >= 200 and status not in (204, 304) and req.method != "HEAD":
            raise ProtocolError("response without Content-Length or chunked framing")
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, size

    async def _chunked(self) -> int:
        assert self.reader is not None
        total = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            n = int(line.split(b";", 1)[0], 16)
            if n == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return total
            await self.reader.readexactly(n + 2)
            total += n

    def close(self, *, abort: bool = False) -> None:
        """Close (TLS close_notify first), or ``abort`` at once (the end of a run)."""
        if self.writer is not None:
            _close(self.writer, abort)
        self.reader = self.writer = None


# --------------------------------------------------------------------------- HTTP/2

#: Receive windows this client announces: large enough that a server never waits for us.
_H2_WINDOW = 1 << 30


class H2Connection:
    """One HTTP/2 connection; several requests (streams) may be in flight on it.

    Frames are written and read by hand (``bench.h2wire``): each request is a
    pre-built HEADERS block and its DATA, each response is read only as far
    as its status and its end, so the client's cost per request stays a small
    fraction of what the fastest server spends.
    """

    def __init__(self, target: Target, ctx: ssl.SSLContext) -> None:
        self.target = target
        self.ctx = ctx
        self.writer: asyncio.StreamWriter | None = None
        self._streams: dict[int, _H2Stream] = {}
        self._next_stream = 1
        self._send_window = 65535  # the server's connection window for our DATA
        self._window_open = asyncio.Event()
        self._unacked = 0  # DATA bytes received since the last WINDOW_UPDATE we sent
        self._reader_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection(
            self.target.host,
            self.target.port,
            ssl=self.ctx,
            server_hostname=self.target.server_name,
        )
        proto = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if proto != "h2":
            writer.close()
            raise ProtocolError(f"server did not negotiate h2 (ALPN {proto!r})")
        writer.write(
            h2wire.PREFACE
            + h2wire.settings(
                (
                    (h2wire.SETTINGS_HEADER_TABLE_SIZE, 0),
                    (h2wire.SETTINGS_ENABLE_PUSH, 0),
                    (h2wire.SETTINGS_INITIAL_WINDOW_SIZE, _H2_WINDOW),
                )
            )
            + h2wire.window_update(0, _H2_WINDOW - 65535)
        )
        self.writer = writer
        self._next_stream = 1
        self._send_window = 65535
        self._window_open.set()
        self._reader_task = asyncio.create_task(self._read(reader, writer))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = h2wire.FrameReader()
        streams = self._streams
        error: Exception = ProtocolError("connection closed")
        block: list[bytes] = []  # a header block split over CONTINUATION frames
        try:
            while data := await reader.read(65536):
                out = b""
                for kind, flags, sid, payload in frames.feed(data):
                    if kind == h2wire.DATA:
                        entry = streams.get(sid)
                        if entry is not None:
                            entry.size += len(payload)
                        self._unacked += len(payload)
                        if flags & h2wire.END_STREAM:
                            self._finish(sid)
                    elif kind in (h2wire.HEADERS, h2wire.CONTINUATION):
                        block.append(
                            h2wire.header_block(flags, payload)
                            if kind == h2wire.HEADERS
                            else payload
                        )
                        if flags & h2wire.END_HEADERS:
                            entry = streams.get(sid)
                            if entry is not None and not entry.status:
                                entry.status = h2wire.response_status(b"".join(block))
                            block.clear()
                        if kind == h2wire.HEADERS and flags & h2wire.END_STREAM:
                            self._finish(sid)
                    elif kind == h2wire.SETTINGS and not flags & h2wire.ACK:
                        out += h2wire.settings(ack=True)
                    elif kind == h2wire.WINDOW_UPDATE and sid == 0:
                        self._send_window += int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                        self._window_open.set()
                    elif kind == h2wire.PING and not flags & h2wire.ACK:
                        out += h2wire.frame(h2wire.PING, h2wire.ACK, 0, payload)
                    elif kind == h2wire.RST_STREAM:
                        entry = streams.pop(sid, None)
                        if entry is not None and not entry.future.done():
                            entry.future.set_exception(ProtocolError("stream reset"))
                    elif kind == h2wire.GOAWAY:
                        error = ProtocolError("GOAWAY")
                if self._unacked >= _H2_WINDOW // 2:
                    out += h2wire.window_update(0, self._unacked)
                    self._unacked = 0
                if out:
                    writer.write(out)
        except (OSError, ssl.SSLError, ValueError) as exc:
            error = exc
        finally:
            for entry in streams.values():
                if not entry.future.done():
                    entry.future.set_exception(error)
            streams.clear()
            if self.writer is writer:
                self.writer = None
            writer.close()

    def _finish(self, sid: int) -> None:
        entry = self._streams.pop(sid, None)
        if entry is not None and not entry.future.done():
            entry.future.set_result((entry.status, entry.size))

    async def request(self, req: Request) -> tuple[int, int]:
        if self.writer is None:
            await self.open()
        writer = self.writer
        assert writer is not None
        sid = self._next_stream
        self._next_stream += 2
        entry = _H2Stream(asyncio.get_running_loop().create_future())
        self._streams[sid] = entry
        if not req.body:
            flags = h2wire.END_HEADERS | h2wire.END_STREAM
            writer.write(h2wire.frame(h2wire.HEADERS, flags, sid, req.h2))
            return await entry.future
        while self._send_window < len(req.body):
            self._window_open.clear()
            await self._window_open.wait()
            if self.writer is not writer:
                return await entry.future  # the connection failed meanwhile
        self._send_window -= len(req.body)
        writer.write(
            h2wire.frame(h2wire.HEADERS, h2wire.END_HEADERS, sid, req.h2)
            + h2wire.data_frames(sid, req.body)
        )
        return await entry.future

    def close(self, *, abort: bool = False) -> None:
        """Close (TLS close_notify first), or ``abort`` at once (the end of a run)."""
        if self.writer is not None:
            _close(self.writer, abort)
        if self._reader_task is not None:
            self._reader_task.cancel()
        self.writer = None


@dataclass(slots=True)
class _H2Stream:
    """A request in flight: where to deliver the answer, and what was seen of it."""

    future: asyncio.Future[tuple[int, int]]
    status: int = 0
    size: int = 0


Connection = H1Connection | H2Connection


def _close(writer: asyncio.StreamWriter, abort: bool) -> None:
    """An aborted connection is gone before the event loop closes; a TLS shutdown may not be
    (it waits for the server's close_notify), and a loop closed over live transports fails."""
    if abort:
        writer.transport.abort()
    else:
        writer.close()


async def request_once(
    target: Target, method: str, path: str, body: bytes = b"", *, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One request on a fresh connection, with the body: for setup and readiness checks."""
    req = Request.make(method, path, body)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            target.host, target.port, ssl=target.context(), server_hostname=target.server_name
        ),
        timeout,
    )
    try:
        writer.write(req.h1.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head[9:12])
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while rest:
            line, _, rest = rest.partition(b"\r\n")
            n = int(line.split(b";", 1)[0], 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2 :]
        rest = out
    return status, rest


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class LoadSpec:
    """One measurement: workload, concurrency, duration, and how the load is shaped."""

    target: Target
    workload: str
    connections: int = 16
    duration: float = 6.0
    warmup: float = 1.0
    processes: int = 1
    http2: bool = False
    streams: int = 1  # HTTP/2: requests in flight per connection
    rate: float | None = None  # open loop: requests/s over all processes
    data: WorkloadData = field(default_factory=WorkloadData)
    cpus: tuple[int, ...] = ()  # cores the load processes are pinned to (none: any)


@dataclass
class _ProcResult:
    requests: int = 0
    errors: int = 0
    late: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    latencies: bytes = b""  # array('d') of seconds


async def _load_process(spec: LoadSpec, index: int, t_start: float, t_end: float) -> _ProcResult:
    """The event loop of one load process: its share of connections until ``t_end``."""
    conns = spec.connections // spec.processes + (
        1 if index < spec.connections % spec.processes else 0
    )
    ctx = spec.target.context(http2=spec.http2)
    source = request_source(spec.workload, spec.data)
    result = _ProcResult()
    lat = array.array("d")
    statuses: dict[int, int] = {}
    clock = time.monotonic

    def record(due: float, status: int) -> None:
        now = clock()
        if t_start <= now < t_end:
            result.requests += 1
            statuses[status] = statuses.get(status, 0) + 1
            lat.append(now - due)

    def failed(exc: BaseException) -> None:
        if clock() >= t_start:
            result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(f"{type(exc).__name__}: {exc}")

    queue: asyncio.Queue[float] | None = None
    if spec.rate:
        queue = asyncio.Queue()

    async def next_due() -> float:
        if queue is None:
            return clock()
        return await queue.get()

    async def worker(conn_id: int, conn: Connection | None) -> None:
        seq = 0
        while clock() < t_end:
            due = await next_due()
            req = source(conn_id, seq)
            seq += 1
            try:
                if conn is None:  # handshake: a new connection per request
                    fresh = H1Connection(spec.target, ctx)
                    try:
                        status, _ = await fresh.request(req)
                    finally:
                        fresh.close()
                else:
                    status, _ = await conn.request(req)
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ProtocolError) as exc:
                failed(exc)
                if conn is not None:
                    conn.close()
                await asyncio.sleep(0.01)
                continue
            record(due, status)

    async def ticker() -> None:
        assert queue is not None and spec.rate
        interval = spec.processes / spec.rate
        due = clock()
        while due < t_end:
            now = clock()
            while due <= now:
                queue.put_nowait(due)
                due += interval
            await asyncio.sleep(min(0.001, max(0.0, due - clock())))

    conns_list: list[Connection | None] = []
    tasks = []
    for c in range(conns):
        conn: Connection | None = None
        if spec.workload != "handshake":
            conn = H2Connection(spec.target, ctx) if spec.http2 else H1Connection(spec.target, ctx)
            try:
                await conn.open()
            except (OSError, ssl.SSLError, ProtocolError) as exc:
                failed(exc)
        conns_list.append(conn)
        for s in range(spec.streams if spec.http2 else 1):
            tasks.append(asyncio.create_task(worker(c * 1000 + s, conn)))
    if queue is not None:
        tasks.append(asyncio.create_task(ticker()))
    await asyncio.sleep(max(0.0, t_end - clock()))
    # Let in-flight requests finish briefly, then stop whatever is stuck.
    _done, pending = await asyncio.wait(tasks, timeout=2.0)
    for task in pending:
        task.cancel()
    if queue is not None:
        result.late = queue.qsize()
    for conn in conns_list:
        if conn is not None:
            conn.close(abort=True)
    await asyncio.sleep(0)  # let the aborted transports report connection_lost
    result.statuses = statuses
    result.latencies = lat.tobytes()
    return result


def _child(
    spec: LoadSpec,
    index: int,
    t_start: float,
    t_end: float,
    out: multiprocessing.connection.Connection,
) -> None:
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    result = loops.run(_load_process(spec, index, t_start, t_end), loops.best())
    out.send(result)
    out.close()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """What one measurement found; ``to_dict`` is what goes into results/latest.json."""

    workload: str
    connections: int
    processes: int
    http2: bool
    rate_target: float | None
    duration: float
    requests: int
    errors: int
    statuses: dict[str, int]
    error_samples: list[str]
    rps: float
    latency_ms: dict[str, float]
    #: CPU seconds per second (1.0 = one core busy) and CPU microseconds per request,
    #: per named group of server processes (e.g. "kes", "nginx").
    server_cores: dict[str, float]
    server_cpu_us: dict[str, float]
    loadgen_cores: float
    loadgen_cpu_us: float
    machine_busy: float  # share of all cores busy during the window, 0..1
    late: int = 0  # open loop: requests still queued at the end (server fell behind)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_load(spec: LoadSpec, servers: Mapping[str, Sequence[int]] | None = None) -> LoadResult:
    """Run one measurement in ``spec.processes`` forked processes; sample CPU meanwhile.

    ``servers`` names groups of process ids whose CPU (with their descendants)
    is charged to the requests, e.g. ``{"kes": [pid]}``.
    """
    servers = servers or {}
    mp = multiprocessing.get_context("fork")
    setup = 0.3 + 0.02 * spec.connections  # time to connect before the warm-up counts
    t_start = time.monotonic() + setup + spec.warmup
    t_end = t_start + spec.duration
    procs, pipes = [], []
    for i in range(spec.processes):
        recv_end, send_end = mp.Pipe(duplex=False)
        p = mp.Process(target=_child, args=(spec, i, t_start, t_end, send_end), daemon=True)
        p.start()
        send_end.close()
        procs.append(p)
        pipes.append(recv_end)
    time.sleep(max(0.0, t_start - time.monotonic()))
    s0 = {name: procstat.sample(pids) for name, pids in servers.items()}
    l0 = sum(procstat.cpu_seconds(p.pid or 0) for p in procs)
    m0 = procstat.machine()
    w0 = time.monotonic()
    time.sleep(max(0.0, t_end - time.monotonic()))
    s1 = {name: procstat.sample(s0[name].pids) for name in servers}
    l1 = sum(procstat.cpu_seconds(p.pid or 0) for p in procs)
    m1 = procstat.machine()
    window = time.monotonic() - w0
    results: list[_ProcResult] = []
    for p, pipe in zip(procs, pipes, strict=True):
        if pipe.poll(15.0):
            results.append(pipe.recv())
        p.join(5.0)
        if p.is_alive():
            p.kill()
    lat = array.array("d")
    statuses: dict[str, int] = {}
    samples: list[str] = []
    for r in results:
        chunk = array.array("d")
        chunk.frombytes(r.latencies)
        lat.extend(chunk)
        for code, n in r.statuses.items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
        samples.extend(r.error_samples)
    ordered = sorted(lat)
    requests = sum(r.requests for r in results)
    per_req = 1e6 / requests if requests else 0.0
    busy = (m1.busy - m0.busy) / max(1, m1.total - m0.total)
    return LoadResult(
        workload=spec.workload,
        connections=spec.connections,
        processes=spec.processes,
        http2=spec.http2,
        rate_target=spec.rate,
        duration=window,
        requests=requests,
        errors=sum(r.errors for r in results) + (spec.processes - len(results)),
        statuses=statuses,
        error_samples=samples[:5],
        rps=requests / window,
        latency_ms={
            "p50": percentile(ordered, 50) * 1e3,
            "p90": percentile(ordered, 90) * 1e3,
            "p99": percentile(ordered, 99) * 1e3,
            "p99.9": percentile(ordered, 99.9) * 1e3,
            "max": (ordered[-1] if ordered else 0.0) * 1e3,
        },
        server_cores={n: (s1[n].seconds - s0[n].seconds) / window for n in servers},
        server_cpu_us={n: (s1[n].seconds - s0[n].seconds) * per_req for n in servers},
        loadgen_cores=(l1 - l0) / window,
        loadgen_cpu_us=(l1 - l0) * per_req,
        machine_busy=busy,
        late=sum(r.late for r in results),
    )


# --------------------------------------------------------------------------- traces


async def _subscribers(target: Target, n: int, t_end: float) -> int:
    """``n`` live audit-trace streams read until ``t_end``; returns the event lines seen."""
    seen = 0

    async def one() -> None:
        nonlocal seen
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=target.context(), server_hostname=target.server_name
        )
        writer.write(Request.make("GET", "/v1/log/audit/trace").h1)
        try:
            await reader.readuntil(b"\r\n\r\n")
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                seen += data.count(b"}\n")  # each event is one JSON line
        finally:
            writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await asyncio.sleep(max(0.0, t_end - time.monotonic()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return seen


def _subscriber_child(
    target: Target,
    n: int,
    t_end: float,
    cpus: tuple[int, ...],
    out: multiprocessing.connection.Connection,
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    out.send(loops.run(_subscribers(target, n, t_end), loops.best()))
    out.close()


@contextlib.contextmanager
def run_trace_subscribers(
    target: Target, n: int, seconds: float, cpus: tuple[int, ...] = ()
) -> Iterator[Callable[[], int]]:
    """Keep ``n`` audit-trace subscribers reading in their own process for ``seconds``.

    Yields a function that returns the number of event lines they received
    (call it after the block's work is done). ``cpus`` pins that process
    (the bench puts it with the load generator, off the server's core).
    """
    mp = multiprocessing.get_context("fork")
    recv_end, send_end = mp.Pipe(duplex=False)
    proc = mp.Process(
        target=_subscriber_child,
        args=(target, n, time.monotonic() + seconds, cpus, send_end),
        daemon=True,
    )
    proc.start()
    send_end.close()
    time.sleep(0.5)  # let the streams connect before the load starts
    got: list[int] = []

    def events() -> int:
        if not got and recv_end.poll(seconds + 10):
            got.append(recv_end.recv())
        return got[0] if got else -1

    try:
        yield events
    finally:
        events()
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Run one measurement against a running server and print the result as JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--addr", default="127.0.0.1:7373", help="HOST:PORT")
    p.add_argument("--ca", required=True, help="CA (or self-signed server cert) to trust")
    p.add_argument("--cert", required=True, help="client certificate")
    p.add_argument("--key", required=True, help="client private key")
    p.add_argument("--server-name", default="localhost")
    p.add_argument("--workload", choices=WORKLOADS, default="generate")
    p.add_argument("--key-name", default="bench", help="master key to use (created if missing)")
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("-d", "--duration", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("-p", "--processes", type=int, default=1)
    p.add_argument("--http2", action="store_true")
    p.add_argument("--streams", type=int, default=1, help="HTTP/2 streams per connection")
    p.add_argument("--rate", type=float, default=None, help="open loop: requests/s")
    p.add_argument("--server-pid", type=int, action="append", default=[])
    args = p.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    target = Target(host, int(port), args.ca, args.cert, args.key, args.server_name)
    data = asyncio.run(prepare(target, args.key_name, lists=0))
    spec = LoadSpec(
        target=target,
        workload=args.workload,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        processes=args.processes,
        http2=args.http2,
        streams=args.streams,
        rate=args.rate,
        data=data,
    )
    result = run_load(spec, {"server": args.server_pid} if args.server_pid else None)
    json.dump(result.to_dict(), sys.stdout, indent=2)
    print()
    return 0 if result.requests else 1


async def prepare(target: Target, key: str = "bench", *, lists: int = 100) -> WorkloadData:
    """Create the master key, ``lists`` extra keys for the list workload, and a ciphertext."""
    await request_once(target, "POST", f"/v1/key/create/{key}")  # 400 if it exists: fine
    for i in range(lists):
        await request_once(target, "POST", f"/v1/key/create/list-{i:03d}")
    data = WorkloadData(key=key)
    body = json.dumps({"context": _b64(data.context)}).encode()
    status, reply = await request_once(target, "POST", f"/v1/key/generate/{key}", body)
    if status != 200:
        raise RuntimeError(f"setup: generate answered {status}: {reply[:200]!r}")
    ciphertext = base64.b64decode(json.loads(reply)["ciphertext"])
    return WorkloadData(key=key, context=data.context, ciphertext=ciphertext)


if __name__ == "__main__":
    sys.exit(main())
