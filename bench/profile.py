"""Where the server's time goes: py-spy samples -> flame graph SVG and hot-spot tables.

py-spy attaches to the running server from outside (ptrace), so the server
runs unmodified and at full speed between samples. It records in py-spy's
"raw" (collapsed stack) format; this module renders the flame graph itself
so one recording gives both the SVG and the numbers for docs/performance.md
(py-spy's own SVG output cannot be turned back into numbers).

If py-spy cannot attach (no ptrace permission in a container), ``record``
returns None and the report says so; the fallback is to run the server under
``python -m cProfile`` by hand (see docs/performance.md).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AREAS", "CATEGORIES", "Profile", "flamegraph_svg", "load_collapsed", "pyspy", "start"]

#: Areas of the code by file fragment, checked in this order. Each sample is charged
#: to the area of its innermost frame that matches one, so the shares add up to 100%
#: (C work such as OpenSSL or the send() syscall is charged to the Python frame that
#: called it: ``SSLObject.write`` is encryption, ``_SelectorSocketTransport.write`` is
#: the syscall).
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS records (ssl, kes-server's TLS layer)", ("(ssl.py)", "kes_server/transport/tlsconn.py")),
    ("metrics", ("prometheus_client/", "kes_server/metrics.py")),
    ("audit events (logbus)", ("kes_server/logbus.py",)),
    (
        "crypto + JSON body (seal, HMAC, AES-GCM, base64, json)",
        (
            "kes_server/core/crypto.py",
            "kes_server/core/b64.py",
            "kes_server/api/wire.py",
            "(hmac.py)",
            "cryptography/",
            "(base64.py)",
            "json/",
        ),
    ),
    (
        "HTTP/1.1 (llhttp via httptools, kes-server's session)",
        ("httptools/", "kes_server/transport/http1.py"),
    ),
    (
        "HTTP/2 (h2, hpack, hyperframe, kes-server's session)",
        ("h2/", "hpack/", "hyperframe/", "kes_server/transport/http2.py"),
    ),
    (
        "asyncio tasks, futures",
        ("asyncio/tasks.py", "asyncio/futures.py", "asyncio/timeouts.py", "asyncio/locks.py"),
    ),
    (
        "event loop + socket syscalls",
        (
            "asyncio/selector_events.py",
            "asyncio/base_events.py",
            "asyncio/events.py",
            "selectors",
            "asyncio/runners.py",
            "uvloop",
        ),
    ),
    ("kes-server dispatch (routing, identity, policy, deadlines, keys)", ("kes_server/",)),
)

#: Kept under its old name for callers that only want the labels.
CATEGORIES = AREAS


def pyspy() -> str | None:
    """The py-spy binary next to this interpreter, or on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def start(
    pid: int, seconds: float, out: Path, *, rate: int = 250, subprocesses: bool = False
) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (collapsed stacks); None if no py-spy."""
    exe = pyspy()
    if exe is None:
        return None
    argv = [exe, "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
    argv += ["-r", str(rate), "-f", "raw", "--nolineno", "-o", str(out)]
    if subprocesses:
        argv.append("--subprocesses")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


#: Leaf frames that are a thread blocked in the kernel, not work. py-spy's idle
#: detection misses some of them in forked ``--workers`` children (the parent's
#: ``os.wait`` helper thread, an event loop waiting in epoll), which would otherwise
#: show up as a fifth of the "CPU".
IDLE_LEAVES = ("select (selectors.py)", "_worker (concurrent/futures/thread.py)")


def load_collapsed(path: Path) -> Counter[tuple[str, ...]]:
    """``frame;frame;frame count`` lines -> stack (root first) -> samples, idle stacks dropped."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = tuple(f for f in stack.split(";") if not f.startswith("process "))
            if frames and any(idle in frames[-1] for idle in IDLE_LEAVES):
                continue
            stacks[frames] += int(count)
    return stacks


def _area(frames: tuple[str, ...]) -> str:
    """The area of the innermost frame that belongs to one (see ``AREAS``)."""
    for frame in reversed(frames):
        for label, needles in AREAS:
            if any(needle in frame for needle in needles):
                return label
    return "other (interpreter start-up, stdlib)"


def _short(frame: str) -> str:
    """``func (path/to/file.py)`` -> ``func (file.py)`` keeping the package for context."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = where.split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name


@dataclass
class Profile:
    """Hot spots of one recording, as shares of all samples."""

    samples: int
    self_top: list[tuple[str, float]]
    inclusive_top: list[tuple[str, float]]
    categories: list[tuple[str, float]]

    @classmethod
    def of(cls, stacks: Counter[tuple[str, ...]], top: int = 15) -> Profile:
        total = sum(stacks.values()) or 1
        own: Counter[str] = Counter()
        incl: Counter[str] = Counter()
        cats: Counter[str] = Counter()
        for frames, n in stacks.items():
            if frames:
                own[_short(frames[-1])] += n
            for f in {_short(f) for f in frames}:
                incl[f] += n
            cats[_area(frames)] += n
        return cls(
            samples=total,
            self_top=[(f, n / total) for f, n in own.most_common(top)],
            # Frames on (nearly) every stack are the entry points (runpy, click, the event
            # loop's run_forever): true but useless, so leave them out.
            inclusive_top=[(f, n / total) for f, n in incl.most_common() if n / total < 0.95][
                : top + 10
            ],
            categories=[(label, n / total) for label, n in cats.most_common()],
        )


# --------------------------------------------------------------------------- flame graph


@dataclass
class _Node:
    name: str
    value: int
    children: dict[str, _Node]


def _tree(stacks: Counter[tuple[str, ...]]) -> _Node:
    root = _Node("all", 0, {})
    for frames, n in stacks.items():
        root.value += n
        node = root
        for f in frames:
            child = node.children.get(f)
            if child is None:
                child = node.children[f] = _Node(f, 0, {})
            child.value += n
            node = child
    return root


def _common_prefix(stacks: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The frames all stacks start with (never a whole stack: something must remain)."""
    if not stacks:
        return ()
    prefix = min(stacks, key=len)
    for frames in stacks:
        n = 0
        while n < len(prefix) and frames[n] == prefix[n]:
            n += 1
        prefix = prefix[:n]
    return prefix[: max(0, min(len(f) for f in stacks) - 1)]


def _colour(name: str) -> str:
    h = zlib.crc32(name.encode())
    if "kes_server" in name:
        return f"rgb({80 + h % 60},{150 + h % 80},{200 + h % 50})"  # ours: blue
    return f"rgb({205 + h % 50},{(h >> 8) % 180 + 40},{(h >> 16) % 55})"  # the rest: warm


def flamegraph_svg(stacks: Counter[tuple[str, ...]], title: str, width: int = 1200) -> str:
    """A self-contained flame graph (root at the bottom; hover a frame for its share).

    The trunk every sample shares (runpy, click, ``asyncio.run``) is cut off so the
    picture starts where the stacks diverge; the title names its last frame.
    """
    trunk = _common_prefix(list(stacks))
    if trunk:
        stacks = Counter({frames[len(trunk) :]: n for frames, n in stacks.items()})
        title += f" — from {_short(trunk[-1])} up"
    root = _tree(stacks)
    row, pad = 16, 30

    def depth(node: _Node) -> int:
        return 1 + max((depth(c) for c in node.children.values()), default=0)

    height = depth(root) * row + pad + 10
    scale = (width - 20) / max(1, root.value)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#f8f8f8"/>',
        f'<text x="10" y="18" font-size="14">{html.escape(title)} '
        f"({root.value} samples; ours in blue)</text>",
    ]

    def draw(node: _Node, x: float, level: int) -> None:
        w = node.value * scale
        if w < 0.5:
            return
        y = height - (level + 1) * row - 5
        share = 100.0 * node.value / max(1, root.value)
        label = html.escape(f"{_short(node.name)} {share:.1f}%")
        out.append(
            f"<g><title>{html.escape(node.name)} — {node.value} samples, {share:.2f}%</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
            f'fill="{_colour(node.name)}"/>'
        )
        chars = int(w / 6.6)
        if chars >= 4:
            text = label if len(label) <= chars else label[: chars - 2] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + row - 4}">{text}</text>')
        out.append("</g>")
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, cx, level + 1)
            cx += child.value * scale

    draw(root, 10.0, 0)
    out.append("</svg>")
    return "\n".join(out)
