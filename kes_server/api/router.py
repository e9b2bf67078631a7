"""Matching a request path to a route, as KES's Go mux does.

Routes are literal paths (``/v1/status``) or a literal prefix followed by
arguments (``/v1/key/create/*``, ``/v1/identity/assign/*/*``). The last
argument takes the rest of the path, slashes included, so a name such as
``a/b`` reaches the name rules (and their 400) instead of a 404. A path that
matches no route is a 404; one that matches only routes of other methods is a
405 naming the allowed methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kes_server.api.call import RouteHandler

__all__ = ["Route", "Router", "clean_path"]


@dataclass(frozen=True, slots=True)
class Route:
    """One API route and everything the server enforces for it."""

    method: str
    #: Go-style pattern, as ``GET /v1/api`` lists it (``*`` = one argument).
    pattern: str
    handler: RouteHandler = field(repr=False, compare=False)
    #: Largest request body accepted (bytes).
    max_body: int = 0
    #: The whole request (body and handler) must be done within this; None: unbounded.
    timeout_s: float | None = 10.0
    #: The last argument may be empty (the handler answers "invalid ... name").
    empty_arg: bool = False
    #: For a route newer than KES v0.17 standing for a v0.17 one: that route's path,
    #: ``{0}``/``{1}`` being this route's arguments. A policy must allow both paths,
    #: so rules written for v0.17 (e.g. a deny) also hold on the alias.
    v017: str | None = None
    #: Open to any client with a certificate (no policy): only ``/version``.
    public: bool = False
    #: The literal part of the pattern, before its first argument.
    prefix: str = field(init=False)
    #: How many arguments the pattern has (0, 1 or 2).
    arity: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.pattern.split("*", 1)[0])
        object.__setattr__(self, "arity", self.pattern.count("*"))

    def match(self, path: str) -> tuple[str, ...] | None:
        """This route's arguments in ``path``, or None if the path is not this route's."""
        arity = self.arity
        if arity == 0:
            return () if path == self.pattern else None
        prefix = self.prefix
        if not path.startswith(prefix):
            return None
        rest = path[len(prefix) :]
        if arity == 1:
            return (rest,) if rest or self.empty_arg else None
        first, slash, last = rest.partition("/")
        if not first or not slash or (not last and not self.empty_arg):
            return None
        return (first, last)

    def v017_path(self, args: tuple[str, ...]) -> str | None:
        return self.v017.format(*args) if self.v017 is not None else None

    def fits(self, args: tuple[str, ...]) -> bool:
        """Whether the arguments fit the pattern as Go's ``path.Match`` sees it
        (a ``*`` never spans a ``/``): KES answers 400 otherwise."""
        return not args or "/" not in args[-1]


class Router:
    """Finds the route of a request (exact paths first, then the longest prefix).

    Every prefix of a KES route is ``/v1/<group>/<verb>/`` or longer, so a
    request's first three segments name a short list of candidates at once;
    only paths outside that shape are matched against every prefix.
    """

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes
        self._exact: dict[str, list[Route]] = {}
        prefixed: list[Route] = []
        for route in routes:
            if route.arity == 0:
                self._exact.setdefault(route.pattern, []).append(route)
            else:
                prefixed.append(route)
        self._prefixed = sorted(prefixed, key=lambda r: -len(r.prefix))
        self._by_head: dict[str, list[Route]] = {}
        for route in self._prefixed:
            self._by_head.setdefault(_head(route.prefix), []).append(route)

    def match(self, method: str, path: str) -> tuple[Route, tuple[str, ...]] | list[str]:
        """The route and its arguments; or the allowed methods ([] = no such path)."""
        allowed: list[str] = []
        for route in self._exact.get(path, ()):
            if route.method == method:
                return route, ()
            allowed.append(route.method)
        if allowed:
            return allowed
        candidates = self._by_head.get(_head(path), self._prefixed)
        for route in candidates:
            args = route.match(path)
            if args is None:
                continue
            if route.method == method:
                return route, args
            allowed.append(route.method)
        return allowed


def _head(path: str) -> str:
    """``/v1/key/create/`` of ``/v1/key/create/my-key``: the first three segments."""
    end = path.find("/", path.find("/", path.find("/", 1) + 1) + 1)
    return path[: end + 1] if end > 0 else path


def clean_path(path: str) -> str:
    """``path`` as Go's ServeMux cleans it before routing (and redirects to, 301).

    Repeated slashes, ``.`` and ``..`` elements go (``..`` above the root
    stays at the root), a trailing slash stays: ``/v1//key/./create/`` is
    ``/v1/key/create/``. A path that needs none of this is returned as is.
    """
    if "//" not in path and "/." not in path:
        return path
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned
