"""kes_client: a typed Python SDK for KES servers, sync and async.

::

    from kes_client import Client, KeyNotFound

    with Client.from_env() as kes:          # KES_SERVER, KES_CLIENT_CERT, KES_CLIENT_KEY
        kes.create_key("my-key")
        dek = kes.generate_key("my-key")
        assert kes.decrypt("my-key", dek.ciphertext) == dek.plaintext

Errors form one tree rooted at ``KESError``: the server's answers
(``APIError`` and below, shared with the server itself) and this package's
``CredentialsError``/``TransportError`` branch for failures before an answer.
"""

from kes_client._async_client import AsyncClient, AsyncEventStream
from kes_client._client import Client, EventStream
from kes_client._errors import (
    ConnectError,
    CredentialsError,
    ProtocolError,
    TLSError,
    TransportError,
    TransportTimeout,
)
from kes_client._models import (
    AuditEvent,
    DataKey,
    ErrorEvent,
    IdentityInfo,
    KeyInfo,
    Policy,
    PolicyInfo,
    Status,
)
from kes_client._names import identity_problem
from kes_client._tls import DEFAULT_SERVER
from kes_server.core.errors import (
    APIError,
    DecryptionFailed,
    InternalError,
    InvalidArgument,
    KESError,
    KeyExists,
    KeyNotFound,
    MethodNotAllowed,
    NotAllowed,
    NotFound,
    PayloadTooLarge,
    PolicyNotFound,
    ServerTimeout,
    ServiceUnavailable,
    StoreUnavailable,
    UnsupportedAlgorithm,
)

__all__ = [
    "DEFAULT_SERVER",
    "APIError",
    "AsyncClient",
    "AsyncEventStream",
    "AuditEvent",
    "Client",
    "ConnectError",
    "CredentialsError",
    "DataKey",
    "DecryptionFailed",
    "ErrorEvent",
    "EventStream",
    "IdentityInfo",
    "InternalError",
    "InvalidArgument",
    "KESError",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "MethodNotAllowed",
    "NotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "Policy",
    "PolicyInfo",
    "PolicyNotFound",
    "ProtocolError",
    "ServerTimeout",
    "ServiceUnavailable",
    "Status",
    "StoreUnavailable",
    "TLSError",
    "TransportError",
    "TransportTimeout",
    "UnsupportedAlgorithm",
    "identity_problem",
]
