"""The listening socket: ``HOST:PORT`` checked, bound and listening before anything else.

Binding first means a server that cannot listen (port in use, an address
this host does not have, a port above 65535) fails with one clear line before
it prints a banner, creates a ``--dev`` state directory or forks workers.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["AddressError", "bind", "parse_address"]


class AddressError(ValueError):
    """``HOST:PORT`` is malformed, or cannot be listened on; the text says why."""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``, ``:PORT`` for every interface) -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise AddressError(f"'{address}' is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"'{host}' is not an IPv6 address") from None
    elif ":" in host:
        raise AddressError(f"'{address}': write an IPv6 host in brackets, e.g. [::1]:7373")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"'{port_text}' is not a port number (0-65535)")
    return host or "0.0.0.0", int(port_text)


def bind(address: str, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``address``; ``AddressError`` when that is impossible."""
    host, port = parse_address(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AddressError(f"cannot resolve '{host}': {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # listener says so, and Nagle + delayed ACK would cost ~40 ms per answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise AddressError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    sock.setblocking(False)
    return sock
