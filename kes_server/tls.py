"""The server's TLS context: mutual TLS with KES's two authentication modes.

* ``--auth on`` (default): a client certificate is required and must chain to
  the configured CA file(s) or, without one, the system roots. Plain
  ``CERT_REQUIRED``.
* ``--auth off``: a client certificate is still required (it *is* the
  identity), but any certificate is accepted, self-signed included, because
  KES only hashes its public key. Python's ``ssl`` cannot express "require a
  certificate but do not verify it": ``CERT_REQUIRED`` always verifies. We
  keep ``CERT_REQUIRED`` (so a certificate must be sent) and replace
  OpenSSL's chain verification with a callback that accepts, installed with
  ``SSL_CTX_set_cert_verify_callback`` through ctypes.

Reaching the ``SSL_CTX*`` behind an ``ssl.SSLContext`` relies on CPython's
object layout (the pointer is the first field after the object header). That
is why ``self_test()`` performs a real in-memory handshake with a self-signed
client certificate at start-up and refuses to start if the trick stopped
working, instead of silently accepting or rejecting everyone.
"""

from __future__ import annotations

import ctypes
import os
import ssl
import tempfile
from pathlib import Path

from kes_server.core.certs import new_identity
from kes_server.core.pem import load_private_key

__all__ = [
    "TLSSetupError",
    "accept_any_client_cert",
    "client_ssl_context",
    "self_test",
    "server_context",
]

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _accept(_store_ctx: int | None, _arg: int | None) -> int:
    return 1


# Kept alive for the life of the process: OpenSSL holds a raw pointer to it.
_ACCEPT_CB = _VERIFY_CB(_accept)
_libssl: ctypes.CDLL | None = None


class TLSSetupError(RuntimeError):
    """The TLS configuration cannot be built (bad files, or the self-test failed)."""


def _ssl_lib() -> ctypes.CDLL:
    """OpenSSL as linked into Python's ``_ssl`` module (so the SSL_CTX types match)."""
    global _libssl
    if _libssl is None:
        import _ssl

        _libssl = ctypes.CDLL(_ssl.__file__)
        fn = _libssl.SSL_CTX_set_cert_verify_callback
        fn.argtypes = [ctypes.c_void_p, _VERIFY_CB, ctypes.c_void_p]
        fn.restype = None
    return _libssl


def _ssl_ctx_pointer(ctx: ssl.SSLContext) -> int:
    # PySSLContext: PyObject_HEAD followed by ``SSL_CTX *ctx``.
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr:
        raise TLSSetupError("cannot locate the OpenSSL context of ssl.SSLContext")
    return ptr


def accept_any_client_cert(ctx: ssl.SSLContext) -> None:
    """Require a client certificate but accept it unverified (``--auth off``)."""
    ctx.verify_mode = ssl.CERT_REQUIRED
    _ssl_lib().SSL_CTX_set_cert_verify_callback(_ssl_ctx_pointer(ctx), _ACCEPT_CB, None)


def _load_cert_chain(ctx: ssl.SSLContext, cert: str, key: str, password: str) -> None:
    """Load the server key pair; the key may be encrypted (``tls.password``).

    OpenSSL reads PKCS#8 and most legacy "Proc-Type: 4,ENCRYPTED" keys itself.
    Only when it cannot (e.g. single-DES keys, disabled in OpenSSL 3) do we
    decrypt with our own loader. ``ssl`` only loads keys from a path, so the
    decrypted key goes into an anonymous in-memory file (``memfd_create``,
    Linux) that OpenSSL opens as ``/proc/self/fd/N``: no plaintext key is ever
    written to a disk, and the file vanishes with its descriptor.
    """
    try:
        ctx.load_cert_chain(cert, key, password=password or None)
        return
    except ssl.SSLError as exc:  # first: an SSLError is an OSError too
        native_error = exc
    except OSError as exc:
        # Name the file that is missing or unreadable (OpenSSL's error does not).
        for field, path in (("tls.cert", cert), ("tls.key", key)):
            try:
                Path(path).read_bytes()
            except OSError as missing:
                raise TLSSetupError(
                    f"{field}: cannot read '{path}': {missing.strerror or missing}"
                ) from exc
        raise TLSSetupError(f"cannot read TLS certificate or key ({cert}, {key}): {exc}") from exc
    try:
        key_pem = Path(key).read_bytes()
    except OSError as exc:
        raise TLSSetupError(f"tls.key: cannot read '{key}': {exc.strerror or exc}") from exc
    if b"ENCRYPTED" not in key_pem or not password:
        raise TLSSetupError(f"cannot load TLS certificate/key ({cert}, {key}): {native_error}")
    from cryptography.hazmat.primitives import serialization

    try:
        private = load_private_key(key_pem, password)
    except ValueError as exc:
        raise TLSSetupError(f"tls.key: {exc}") from exc
    plain = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.memfd_create("kes-tls-key", os.MFD_CLOEXEC)
    except (AttributeError, OSError) as exc:  # AttributeError: not Linux
        raise TLSSetupError(
            f"tls.key: OpenSSL cannot read this key ({native_error}) and there is no in-memory "
            f"file to hand it over ({exc}); convert it to PKCS#8 (openssl pkcs8 -topk8)"
        ) from exc
    try:
        view = memoryview(plain)
        while view:
            view = view[os.write(fd, view) :]
        ctx.load_cert_chain(cert, f"/proc/self/fd/{fd}")
    except OSError as exc:  # ssl.SSLError, or no /proc
        raise TLSSetupError(f"cannot load TLS certificate/key ({cert}, {key}): {exc}") from exc
    finally:
        os.close(fd)


def server_context(
    *,
    cert: str,
    key: str,
    password: str = "",
    auth: bool = True,
    ca: str = "",
    min_version: str = "1.3",
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
) -> ssl.SSLContext:
    """The listening socket's context: mTLS, TLS 1.3 by default, ECDHE + AEAD only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2 if min_version == "1.2" else ssl.TLSVersion.TLSv1_3
    # TLS 1.2 suites as in KES: ECDHE key exchange with AEAD ciphers only.
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    # TLS 1.3 session tickets cost ~16% of a handshake (OpenSSL serialises a
    # session per ticket) and KES clients keep connections instead of resuming.
    ctx.num_tickets = 0
    _load_cert_chain(ctx, cert, key, password)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if auth:
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            if ca:
                ctx.load_verify_locations(cafile=ca)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, OSError) as exc:
            raise TLSSetupError(f"cannot load client CA file {ca!r}: {exc}") from exc
    else:
        accept_any_client_cert(ctx)
    return ctx


def client_ssl_context(cert: str, key: str, ca: str | None = None) -> ssl.SSLContext:
    """A client context (used by the self-test and by tests)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(cafile=ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    return ctx


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes | None:
    """Run a handshake over memory BIOs; the server's view of the client cert (DER)."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_side=False, server_hostname="localhost")
    done_s = done_c = False
    for _ in range(20):
        for obj, is_server in ((cli, False), (srv, True)):
            if done_s if is_server else done_c:
                continue
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                if is_server:
                    done_s = True
                else:
                    done_c = True
        c_in.write(s_out.read())
        s_in.write(c_out.read())
        if done_s and done_c:
            # TLS 1.3: the server sees the client certificate once it has read
            # the client's Finished flight; one more read round settles it.
            return srv.getpeercert(binary_form=True)
    return None


def self_test() -> None:
    """Prove ``--auth off`` accepts a self-signed client cert and that we can read it.

    Raises ``TLSSetupError`` when the ctypes hook does not work on this Python.
    """
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        skey, scert = new_identity("localhost", server=True, dns=("localhost",), key_type="ecdsa")
        ckey, ccert = new_identity("self-test client")
        for name, data in (("s.key", skey), ("s.crt", scert), ("c.key", ckey), ("c.crt", ccert)):
            (d / name).write_bytes(data)
        server = server_context(cert=str(d / "s.crt"), key=str(d / "s.key"), auth=False, alpn=())
        client = client_ssl_context(str(d / "c.crt"), str(d / "c.key"))
        try:
            der = _handshake(server, client)
        except ssl.SSLError as exc:
            raise TLSSetupError(
                f"TLS self-test failed: a self-signed client certificate was rejected ({exc}); "
                "the '--auth off' mode does not work with this Python/OpenSSL"
            ) from exc
        if not der:
            raise TLSSetupError("TLS self-test failed: the client certificate is not visible")
        if der != ssl.PEM_cert_to_DER_cert(ccert.decode()):
            raise TLSSetupError("TLS self-test failed: the peer certificate does not match")
