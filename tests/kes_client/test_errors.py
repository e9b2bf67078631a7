"""Server errors become the shared error tree, with the server's text kept."""

from __future__ import annotations

import httpx
import pytest

from kes_client import (
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
    TransportError,
    UnsupportedAlgorithm,
)
from kes_client._base import Api, error_from_response

CASES: list[tuple[int, str, type[APIError]]] = [
    (400, "key does already exist", KeyExists),
    (400, "key already exists", KeyExists),
    (404, "key does not exist", KeyNotFound),
    (404, "policy does not exist", PolicyNotFound),
    (404, "404 page not found", NotFound),
    (403, "prohibited by policy", NotAllowed),
    (403, "not authorized: insufficient permissions", NotAllowed),
    (403, "identity cannot assign policy to itself", NotAllowed),
    (400, "decryption failed: ciphertext is not authentic", DecryptionFailed),
    (400, "invalid ciphertext: key ID mismatch", DecryptionFailed),
    (400, "invalid json", InvalidArgument),
    (400, "identity is root", InvalidArgument),
    (405, "Method Not Allowed", MethodNotAllowed),
    (413, "request body too large", PayloadTooLarge),
    (422, "unsupported cryptographic algorithm", UnsupportedAlgorithm),
    (500, "something odd", InternalError),
    (502, "bad gateway: failed to create key", StoreUnavailable),
    (503, "request timeout exceeded", ServerTimeout),
    (503, "key store is not reachable", ServiceUnavailable),
    (418, "teapot", APIError),
]


def _response(status: int, **kwargs: object) -> httpx.Response:
    request = Api("https://kes.test").create_key("k").request
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "message", "cls"), CASES)
def test_json_error_bodies_map_to_classes(status: int, message: str, cls: type[APIError]) -> None:
    err = error_from_response(_response(status, json={"message": message}))
    assert type(err) is cls
    assert err.message == message and str(err) == message
    assert err.status == status
    assert isinstance(err, KESError)


def test_non_json_body_is_the_message_verbatim() -> None:
    err = error_from_response(_response(404, text="404 page not found\n"))
    assert type(err) is NotFound and err.message == "404 page not found"
    err = error_from_response(_response(502, text="<html>bad gateway</html>"))
    assert err.message == "<html>bad gateway</html>" and type(err) is StoreUnavailable


def test_empty_body_falls_back_to_the_reason_phrase() -> None:
    err = error_from_response(_response(403, content=b""))
    assert type(err) is NotAllowed and err.message == "Forbidden"


def test_transport_errors_are_not_api_errors() -> None:
    assert not issubclass(TransportError, APIError)
    assert issubclass(TransportError, KESError)
