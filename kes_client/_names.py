"""Checks of values typed by people, before they cost a round trip (CLI and console).

The server has the last word (``kes_server.core.names``); these checks only
word its rules for an operator, naming the command that prints a valid value.
"""

from __future__ import annotations

from kes_server.core.names import is_identity

__all__ = ["identity_problem"]


def identity_problem(text: str) -> str:
    """What is wrong with ``text`` as an identity ("" if nothing).

    An identity is the 64 lowercase hex digits of a SHA-256; the server
    compares identities as written, so uppercase hex names somebody else.
    """
    if is_identity(text):
        return ""
    if is_identity(text.lower()):
        return "identities are lowercase hex: write it in lowercase"
    return (
        f"expected 64 lowercase hex digits, got {len(text)} characters "
        "(kes identity of CERT prints one)"
    )
