"""The KES error tree, shared by the server, the SDK, the CLI and the TUI.

Every error a KES server can answer with is a class here, carrying its HTTP
status and the exact v0.17 wire message (what an unmodified KES v0.17 client
expects), plus the texts later KES versions use for the same condition, so a
client can recognise either::

    KESError
    ├── ConfigError                 invalid server configuration (never on the wire)
    └── APIError                    anything the HTTP API answers with {"message": ...}
        ├── InvalidArgument         400 bad request body, name, identity, ...
        │   └── KeyExists           400 key does already exist
        ├── DecryptionFailed        400 ciphertext not authentic / malformed
        ├── NotAllowed              403 prohibited by policy
        ├── NotFound                404 unknown path (plain text, as Go's mux)
        │   ├── KeyNotFound         404 key does not exist
        │   └── PolicyNotFound      404 policy does not exist
        ├── MethodNotAllowed        405
        ├── PayloadTooLarge         413 (older pykes; now 400 invalid json, as KES)
        ├── UnsupportedAlgorithm    422
        ├── InternalError           500
        ├── StoreUnavailable        502 the key store failed
        ├── ServiceUnavailable      503 the key store cannot be reached
        └── ServerTimeout           503 request timeout exceeded

Instances may override the message (``InvalidArgument("invalid json")``); the
class says *what kind* of failure it is, the message what exactly happened.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "APIError",
    "ConfigError",
    "DecryptionFailed",
    "InternalError",
    "InvalidArgument",
    "KESError",
    "KeyExists",
    "KeyNotFound",
    "MethodNotAllowed",
    "NotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PolicyNotFound",
    "ServerTimeout",
    "ServiceUnavailable",
    "StoreUnavailable",
    "UnsupportedAlgorithm",
    "from_response",
]


class KESError(Exception):
    """Root of every error raised by pykes code."""


class ConfigError(KESError):
    """The server configuration is invalid.

    ``field`` is the dotted YAML path of the offending value (``tls.cert``,
    ``policy.my-app.allow[2]``) so start-up can print one line naming it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class APIError(KESError):
    """An error the KES HTTP API reports as ``{"message": "..."}``."""

    status: ClassVar[int] = 500
    #: The v0.17 text for this condition (the default message).
    message_v017: ClassVar[str] = ""
    #: Texts newer KES versions use for the same condition.
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        self.message = self.message_v017 if message is None else message
        if status is not None:
            self.status = status  # type: ignore[misc]
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class InvalidArgument(APIError):
    status = 400
    message_v017 = "invalid argument"


class KeyExists(InvalidArgument):
    status = 400
    message_v017 = "key does already exist"
    aliases = ("key already exists",)


class DecryptionFailed(APIError):
    status = 400
    message_v017 = "decryption failed: ciphertext is not authentic"
    aliases = (
        "invalid ciphertext",
        "invalid ciphertext: key ID mismatch",
        "invalid iv size",
        "invalid nonce size",
    )


class NotAllowed(APIError):
    status = 403
    message_v017 = "prohibited by policy"
    aliases = (
        "not authorized: insufficient permissions",
        "identity cannot assign policy to itself",
    )


class NotFound(APIError):
    status = 404
    message_v017 = "404 page not found"


class KeyNotFound(NotFound):
    message_v017 = "key does not exist"


class PolicyNotFound(NotFound):
    message_v017 = "policy does not exist"


class MethodNotAllowed(APIError):
    status = 405
    message_v017 = "Method Not Allowed"


class PayloadTooLarge(APIError):
    status = 413
    message_v017 = "request body too large"


class UnsupportedAlgorithm(APIError):
    status = 422
    message_v017 = "unsupported cryptographic algorithm"


class InternalError(APIError):
    status = 500
    message_v017 = "internal server error"


class StoreUnavailable(APIError):
    status = 502
    message_v017 = "bad gateway: failed to access key"
    aliases = (
        "bad gateway: failed to create key",
        "bad gateway: failed to delete key",
        "bad gateway: failed to list keys",
    )


class ServiceUnavailable(APIError):
    status = 503
    message_v017 = "key store is not reachable"


class ServerTimeout(APIError):
    status = 503
    message_v017 = "request timeout exceeded"


_BY_MESSAGE: dict[str, type[APIError]] = {}
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidArgument,
    403: NotAllowed,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    422: UnsupportedAlgorithm,
    500: InternalError,
    502: StoreUnavailable,
    503: ServiceUnavailable,
}
for _cls in (
    KeyExists,
    DecryptionFailed,
    NotAllowed,
    KeyNotFound,
    PolicyNotFound,
    MethodNotAllowed,
    UnsupportedAlgorithm,
    ServerTimeout,
):
    for _text in (_cls.message_v017, *_cls.aliases):
        _BY_MESSAGE[_text] = _cls


def from_response(status: int, message: str) -> APIError:
    """Rebuild the error a server answered with.

    The message decides first (old and new KES texts both map to the same
    class), then the status class; the server's text is always kept.
    """
    cls = _BY_MESSAGE.get(message)
    if cls is None or cls.status != status:
        cls = _BY_STATUS.get(status, APIError)
    return cls(message, status=status)
