"""``KesApp``: the console. Owns the connection, the trace streams and the buffers.

One App-level exclusive worker per trace stream reads events and appends
them to a pending list; a 10 Hz timer moves pending events into the
buffers and publishes one ``TraceBatch`` per stream, so a burst of a
thousand events costs one repaint, not a thousand. A lost stream
reconnects with exponential backoff and says so in the header.

Screens never talk to each other; they read the app through the
``Console`` protocol (``kes_tui.messages``) and subscribe to its signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.signal import Signal
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState

from kes_client import APIError, AsyncClient, KESError, NotAllowed, TransportError
from kes_tui.contexts import Context
from kes_tui.messages import StreamKind, TraceBatch
from kes_tui.model import (
    DEFAULT_CAPACITY,
    AuditRow,
    Directory,
    ErrorRow,
    EventStore,
    HeaderInfo,
    History,
    OwnRequests,
    RateMeter,
    StreamState,
    audit_gap,
    audit_row,
    backoff_s,
    denied_backoff_s,
    error_gap,
    error_row,
    gap_text,
)
from kes_tui.screens import (
    NARROW_COLUMNS,
    AuditScreen,
    ContextScreen,
    ErrorScreen,
    HelpScreen,
    IdentitiesScreen,
    KeysScreen,
    PoliciesScreen,
    StatusScreen,
    TraceScreen,
)
from kes_tui.widgets import SCREENS

__all__ = ["KesApp"]

#: Repaint period for trace batches: at most ten repaints a second.
FLUSH_INTERVAL_S = 0.1
#: How often identities and policies are reloaded without a visible change. Changes
#: made through this server show up on the audit trace and reload at once; this
#: catches changes the trace cannot show (another server on the same store).
DIRECTORY_INTERVAL_S = 300.0
#: Successful calls to these paths change the key list: the Keys screen reloads.
_KEY_PATHS = ("/v1/key/create/", "/v1/key/import/", "/v1/key/delete/")
#: Successful calls to these paths change bindings or policies: reload the directory.
_DIRECTORY_PATHS = (
    "/v1/policy/write/",
    "/v1/policy/delete/",
    "/v1/policy/assign/",
    "/v1/identity/assign/",
    "/v1/identity/forget/",
    "/v1/identity/delete/",
)


class ConsoleCommands(Provider):
    """Command palette (``ctrl+p``) entries: screens, filter presets, reloads."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.app
        assert isinstance(app, KesApp)
        commands: list[tuple[str, Callable[[], Any], str]] = [
            (f"Go to {title}", partial(app.switch_mode, mode), f"Show the {title} screen")
            for mode, title in SCREENS
        ]
        presets = (
            ("Audit: denied requests", "status:403"),
            ("Audit: failed requests (4xx and 5xx)", "status:>=400"),
            ("Audit: hide status and metrics polling", "!path:/v1/status !path:/v1/metrics"),
            ("Audit: clear filter", ""),
        )
        commands += [
            (title, partial(app.call_later, app.filter_audit, text), f"filter: {text or '-'}")
            for title, text in presets
        ]
        commands += [
            ("Reconnect and reload", app.action_reconnect, "Retry a failed connection, reload"),
            ("Help: list every key", app.action_help, "Open the key reference"),
        ]
        commands += [
            (f"Context: {c.name}", partial(app.switch_context, c.name), f"Switch to {c.server}")
            for c in app.contexts
            if c.name != app.header.context
        ]
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class KesApp(App[None]):
    """The KES terminal console.

    | Key | Action |
    | :- | :- |
    | `1`..`6` | Audit, Errors, Keys, Policies, Identities, Status. |
    | `]` / `[` | Next / previous screen. |
    | `?` | Help: every key. |
    | `ctrl+p` | Command palette. |
    | `ctrl+r` | Reconnect (after a failure) and reload identities and policies. |
    | `ctrl+o` | Switch to another context (server). |
    | `q` | Quit. |
    """

    TITLE = "kes-tui"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, str | Callable[..., Any]]] = {
        "audit": AuditScreen,
        "errors": ErrorScreen,
        "keys": KeysScreen,
        "policies": PoliciesScreen,
        "identities": IdentitiesScreen,
        "status": StatusScreen,
    }
    DEFAULT_MODE = "audit"
    #: Screens get ``-narrow`` below 100 columns: panels stack, the detail pane
    #: takes the whole width, the header drops its least useful parts.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_COLUMNS, "-wide")]
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(n), f"switch_mode('{mode}')", title, show=False)
            for n, (mode, title) in enumerate(SCREENS, start=1)
        ),
        Binding("right_square_bracket", "cycle(1)", "Next screen", show=False),
        Binding("left_square_bracket", "cycle(-1)", "Previous screen", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("ctrl+r", "reconnect", "Reconnect and reload", show=False),
        Binding("ctrl+o", "contexts", "Switch context", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        client: AsyncClient | None = None,
        *,
        endpoint: str = "",
        identity: str = "",
        read_only: bool = False,
        capacity: int = DEFAULT_CAPACITY,
        connect: bool = True,
        clock: Callable[[], float] = time.monotonic,
        history: tuple[History, str] | None = None,
        contexts: Sequence[Context] = (),
        context: str = "",
        contexts_source: str = "",
    ) -> None:
        """``client=None`` or ``connect=False`` runs without a server (tests, screenshots).

        ``clock`` drives the events/s meter; snapshot tests pass a frozen one.
        ``history`` is a log file's events and its name (``--audit-file``), shown first.
        ``contexts`` are the servers ``ctrl+o`` offers; ``context`` names the one in use.
        """
        super().__init__()
        self._history = history
        self.contexts = tuple(contexts)
        self.contexts_source = contexts_source
        self.client = client
        self.read_only = read_only
        self.connect = connect and client is not None
        self.audit: EventStore[AuditRow] = EventStore(capacity)
        self.audit.hide_own = True
        self.errors: EventStore[ErrorRow] = EventStore(capacity)
        self.directory = Directory(self_identity=identity)
        #: False until identities and policies were read once (screens say "loading").
        self.directory_loaded = False
        #: The console's own requests, recognised on the audit trace (see ``model.own``).
        self.own = OwnRequests()
        if client is not None:
            client.on_request = self.own.sent
        offline = StreamState("offline")
        self.header = HeaderInfo(
            endpoint=endpoint or (client.server if client is not None else ""),
            identity=identity,
            read_only=read_only,
            audit=offline,
            errors=offline,
            context=context,
        )
        self.trace_signal: Signal[TraceBatch] = Signal(self, "trace")
        self.header_signal: Signal[HeaderInfo] = Signal(self, "header")
        self.directory_signal: Signal[Directory] = Signal(self, "directory")
        #: Published when the audit trace shows a key created, imported or deleted.
        self.keys_signal: Signal[int] = Signal(self, "keys")
        #: Published after the console switched to another context (server).
        self.context_signal: Signal[str] = Signal(self, "context")
        self._pending: dict[StreamKind, list[Mapping[str, Any]]] = {"audit": [], "errors": []}
        self._names: dict[str, str] = {}
        self._rate = RateMeter(clock=clock)
        self._directory_stale = False
        self._keys_changed = 0

    # ------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        self.set_interval(FLUSH_INTERVAL_S, self.flush)
        if self._history is not None:
            self.load_history(*self._history)
        if not self.connect:
            return
        self.set_interval(DIRECTORY_INTERVAL_S, self.refresh_directory)
        self._start_server_work()

    def _start_server_work(self) -> None:
        """Who we are, identities and policies, and both traces."""
        self.load_server_info()
        self.refresh_directory()
        for kind in ("audit", "errors"):
            self.follow(kind)

    async def on_unmount(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    # ------------------------------------------------------------ header
    def set_header(self, **changes: Any) -> None:
        """Replace header fields and publish the new header to every screen."""
        updated = replace(self.header, **changes)
        if updated != self.header:
            self.header = updated
            self.header_signal.publish(updated)

    @work(exclusive=True, group="server-info", exit_on_error=False, description="server info")
    async def load_server_info(self) -> None:
        """Version and who we are (``self_identity`` may be prohibited: keep the local hash)."""
        client = self.client
        if client is None:
            return
        try:
            self.set_header(version=await client.version())
        except TransportError as exc:
            self.connection_failed(exc)
            return
        self.connection_ok()
        try:
            me = await client.self_identity()
        except (NotAllowed, TransportError):
            return
        if me.admin:
            self.directory = replace(self.directory, self_identity=me.identity, admin=True)
            self.set_header(identity=me.identity, identity_label=f"root {me.identity[:8]}")
            self._names = self.directory.names()
            self.directory_signal.publish(self.directory)
        elif me.identity:
            label = f"{me.policy} {me.identity[:8]}" if me.policy else me.identity[:12]
            self.set_header(identity=me.identity, identity_label=label)

    # ------------------------------------------------------------ streams
    def follow(self, kind: StreamKind) -> Worker[None]:
        """Start (or restart) the reader of one trace stream."""
        return self.run_worker(
            self._follow(kind),
            group=f"{kind}-trace",
            exclusive=True,
            exit_on_error=False,
            description=f"{kind} trace",
        )

    def _set_stream(self, kind: StreamKind, state: StreamState) -> None:
        self.set_header(**{kind: state})

    async def _follow(self, kind: StreamKind) -> None:
        """Read one trace: reconnect with backoff, give up when no retry can help.

        Each change is reported once: the header shows the state, a lost
        connection gets one notification, a reconnect leaves a marker in the
        trace (the server does not replay what was missed), and a failure
        that retrying cannot fix (TLS trust, credentials) stops the loop.
        """
        client = self.client
        if client is None:
            return
        attempt = denied = 0
        lost_at = ""  # when a live stream was lost, until it is back
        pending = self._pending
        while True:
            live = False
            self._set_stream(kind, StreamState("connecting"))
            try:
                stream = client.trace_audit() if kind == "audit" else client.trace_error()
                async with stream:
                    live = True
                    self._set_stream(kind, StreamState("live"))
                    self.connection_ok()
                    if lost_at:
                        self._add_marker(kind, gap_text(lost_at, time.strftime("%H:%M:%S")))
                        self.notify(f"{kind} trace reconnected", title="Connection")
                        self.load_server_info()
                    attempt = denied = 0
                    lost_at = ""
                    async for event in stream:
                        pending[kind].append(event.raw)
                problem = "the server closed the stream"
            except NotAllowed as exc:
                denied += 1
                delay = denied_backoff_s(denied)
                self._set_stream(kind, StreamState("denied", str(exc), time.monotonic() + delay))
                if denied == 1:
                    self.notify(
                        f"Your policy does not allow the {kind} trace ({exc}); the screen "
                        "stays empty. Asking again later (ctrl+r: now).",
                        title="Permission denied",
                        severity="warning",
                        timeout=8,
                    )
                await asyncio.sleep(delay)
                continue
            except TransportError as exc:
                self.connection_failed(exc)
                if not exc.retryable:
                    self._set_stream(kind, StreamState("failed", exc.reason))
                    return
                problem = str(exc)
            except APIError as exc:
                problem = str(exc)
            if live:
                lost_at = time.strftime("%H:%M:%S")
                self.notify(
                    f"{kind} trace lost: {problem}. Reconnecting…",
                    title="Connection",
                    severity="warning",
                )
            attempt += 1
            delay = backoff_s(attempt)
            self._set_stream(kind, StreamState("reconnecting", problem, time.monotonic() + delay))
            await asyncio.sleep(delay)

    def _add_marker(self, kind: StreamKind, text: str) -> None:
        """Put a note into a trace, after every event received so far."""
        self.flush()
        when = time.strftime("%H:%M:%S")
        if kind == "audit":
            self.audit.extend([audit_gap(self.audit.next_seq, when, text)])
        else:
            self.errors.extend([error_gap(self.errors.next_seq, when, text)])
        self.trace_signal.publish(TraceBatch(kind, 1, 1))

    # ------------------------------------------------------------ connection
    def connection_failed(self, error: TransportError) -> None:
        """Show why the server cannot be reached, and the fix, until it can be again."""
        self.set_header(problem=error.reason, hint=error.hint, fatal=not error.retryable)

    def connection_ok(self) -> None:
        """The server answered: clear a connection problem shown earlier."""
        if self.header.problem:
            self.set_header(problem="", hint="", fatal=False)

    def action_reconnect(self) -> None:
        """Start over: failed or denied traces, server info, identities and policies."""
        if self.client is None:
            return
        self.connection_ok()
        for kind in ("audit", "errors"):
            state = self.header.audit if kind == "audit" else self.header.errors
            if state.phase in ("failed", "denied", "reconnecting"):
                self.follow(kind)
        self.load_server_info()
        self.refresh_directory()

    def load_history(self, history: History, source: str) -> None:
        """Put events from a log file before the live ones (``--audit-file``).

        They are rows like any other (filters, details, latency) but never
        the console's own, and a marker says where the file ends.
        """
        note = "⋯ {:,} events from " + source + " above; live events follow"
        if history.audit:
            start, names = self.audit.received, self._names
            self.audit.extend(
                audit_row(start + i, raw, names) for i, raw in enumerate(history.audit)
            )
            self._add_marker("audit", note.format(len(history.audit)))
        if history.errors:
            start = self.errors.received
            self.errors.extend(error_row(start + i, raw) for i, raw in enumerate(history.errors))
            self._add_marker("errors", note.format(len(history.errors)))

    def ingest(self, kind: StreamKind, events: Iterable[Mapping[str, Any]]) -> None:
        """Queue decoded events as if they came from the stream (tests, screenshots)."""
        self._pending[kind].extend(events)

    def flush(self) -> None:
        """Move queued events into the buffers and tell the screens (runs at 10 Hz)."""
        for kind in ("audit", "errors"):
            queued = self._pending[kind]
            if not queued:
                continue
            self._pending[kind] = []
            if kind == "audit":
                rows = self._audit_rows(queued)
                added = self.audit.extend(rows)
                self._rate.add(len(rows))
                changes = [r.path for r in rows if r.status == 200 and not r.own]
                if any(path.startswith(_DIRECTORY_PATHS) for path in changes):
                    self._directory_stale = True
                if any(path.startswith(_KEY_PATHS) for path in changes):
                    self._keys_changed += 1
                    self.keys_signal.publish(self._keys_changed)
            else:
                start = self.errors.received
                added = self.errors.extend(
                    error_row(start + i, raw) for i, raw in enumerate(queued)
                )
            self.trace_signal.publish(TraceBatch(kind, len(queued), added))
        if self._directory_stale and self.connect:
            self._directory_stale = False
            self.refresh_directory()
        self.set_header(
            rate=round(self._rate.rate), dropped=self.audit.dropped + self.errors.dropped
        )

    def _audit_rows(self, events: list[Mapping[str, Any]]) -> list[AuditRow]:
        """Rows for queued audit events, the console's own requests marked as such."""
        start, names, me, own = self.audit.received, self._names, self.header.identity, self.own
        rows = []
        for i, raw in enumerate(events):
            row = audit_row(start + i, raw, names)
            if me and row.identity == me and own.claim(row.path):
                row.own = True
            rows.append(row)
        return rows

    # ------------------------------------------------------------ directory
    def refresh_directory(self) -> None:
        """Reload identities and policies in the background."""
        if self.client is not None:
            self._load_directory()

    @work(exclusive=True, group="directory", exit_on_error=False, description="load policies")
    async def _load_directory(self) -> None:
        client = self.client
        if client is None:
            return
        problems: list[str] = []
        identities: dict[str, str] = {}
        policies: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}
        try:
            for info in await client.list_identities("*"):
                identities[info.identity] = info.policy
        except NotAllowed:
            problems.append("listing identities is prohibited by your policy")
        except TransportError:
            return
        try:
            names = [info.name for info in await client.list_policies("*")]
        except NotAllowed:
            problems.append("listing policies is prohibited by your policy")
            names = []
        except TransportError:
            return
        results = await asyncio.gather(
            *(client.read_policy(name) for name in names), return_exceptions=True
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, TransportError):
                    return
                policies[name] = None
            else:
                policies[name] = (result.allow, result.deny)
        self.directory = replace(
            self.directory, identities=identities, policies=policies, problems=tuple(problems)
        )
        self.directory_loaded = True
        self._names = self.directory.names()
        self.directory_signal.publish(self.directory)

    def set_directory(self, directory: Directory) -> None:
        """Install a directory snapshot (tests, screenshots)."""
        self.directory = directory
        self.directory_loaded = True
        self._names = directory.names()
        self.directory_signal.publish(directory)

    # ------------------------------------------------------------ errors
    def report_error(self, error: BaseException, action: str) -> None:
        """One wording for failures everywhere; a 403 is a notice, not a crash."""
        if isinstance(error, NotAllowed):
            self.notify(
                f"{action}: prohibited by your policy ({error})",
                title="Permission denied",
                severity="error",
            )
        elif isinstance(error, KESError):
            self.notify(str(error), title=f"{action} failed", severity="error")
        else:
            self.notify(
                f"{type(error).__name__}: {error}", title=f"{action} failed", severity="error"
            )

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error, event.worker.description or "request")

    def run_external(self, command: list[str]) -> int:
        """Run a program on the terminal (pager, editor) with the console suspended.

        Headless (tests, screenshots) there is no terminal to hand over, so the
        program simply runs. Returns its exit status.
        """
        if self.is_headless:
            return subprocess.run(command, check=False).returncode
        try:
            with self.suspend():
                return subprocess.run(command, check=False).returncode
        except SuspendNotSupported:
            self.notify("This terminal cannot be handed to another program", severity="error")
            return -1

    # ------------------------------------------------------------ contexts
    def action_contexts(self) -> None:
        if not self.contexts:
            self.notify(
                f"No contexts: describe your servers in {self.contexts_source} (docs/tui.md)",
                title="Contexts",
            )
            return
        pairs = [(c.name, c.server) for c in self.contexts]
        self.push_screen(
            ContextScreen(pairs, self.header.context, self.contexts_source), self._context_chosen
        )

    def _context_chosen(self, name: str | None) -> None:
        if name:
            self.switch_context(name)

    @work(exclusive=True, group="context", exit_on_error=False, description="switch context")
    async def switch_context(self, name: str) -> None:
        """Point the console at another server: new client, empty traces, everything reloaded."""
        context = next((c for c in self.contexts if c.name == name), None)
        if context is None or name == self.header.context:
            return
        try:
            client = context.client()
        except KESError as exc:
            self.notify(f"Cannot use context {name!r}: {exc}", title="Contexts", severity="error")
            return
        old = self.client
        await self._stop_server_work()
        self.client, self.connect, self.own = client, True, OwnRequests()
        client.on_request = self.own.sent
        if old is not None:
            await old.aclose()
        self._pending = {"audit": [], "errors": []}
        self.audit.clear()
        self.errors.clear()
        identity = context.identity()
        self.set_directory(Directory(self_identity=identity))
        self.directory_loaded = False
        offline = StreamState("offline")
        self.header = HeaderInfo(
            endpoint=client.server,
            identity=identity,
            read_only=self.read_only,
            audit=offline,
            errors=offline,
            context=name,
        )
        self.header_signal.publish(self.header)
        self.context_signal.publish(name)
        self.notify(f"Switched to {name} ({client.server})", title="Contexts")
        self._start_server_work()

    async def _stop_server_work(self) -> None:
        """Cancel everything that talks to the current server, and wait until it stopped."""
        groups = {"audit-trace", "errors-trace", "server-info", "directory"}
        stopping = [w for w in self.workers if w.group in groups and not w.is_finished]
        for worker in stopping:
            worker.cancel()
        for worker in stopping:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()

    # ------------------------------------------------------------ actions
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.BINDINGS))

    def action_cycle(self, step: int) -> None:
        modes = [mode for mode, _ in SCREENS]
        current = modes.index(self.current_mode) if self.current_mode in modes else 0
        self.switch_mode(modes[(current + step) % len(modes)])

    async def filter_audit(self, text: str) -> None:
        """Show the audit screen with ``text`` as its filter."""
        await self.switch_mode("audit")
        screen = self.screen
        if isinstance(screen, TraceScreen):
            screen.apply_filter(text)
