"""Who is calling: the identity of the TLS peer, or of the client a proxy forwards.

Rules (spec §1.2 and §6, seed "TLS Proxy"):

* the identity is the SHA-256 of the client certificate's public key; a CA
  certificate does not identify anyone (``no client certificate is present``);
* only a peer whose own identity is a configured TLS proxy may forward a
  client certificate in the configured header (URL-escaped PEM); the request
  then acts as that client for policy and audit. A proxy request without the
  header is rejected, never served as the proxy itself;
* from anyone else the header is ignored, so clients cannot impersonate;
* ``X-Forwarded-For`` from a proxy sets the audit event's client IP;
* a certificate cryptography cannot parse (OpenSSL accepts some that RFC 5280
  forbids, such as an extension listed twice, and the parser is lazy, so the
  error may surface only when the extensions are read) is a 400 ``invalid
  client certificate``, whether presented in the handshake or forwarded, as
  KES answers for a forwarded one: the gateway then audits it like any
  refused request.
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from kes_server.core.errors import APIError, InvalidArgument, NotAllowed
from kes_server.core.identity import identity_of, is_ca
from kes_server.transport.exchange import Headers, Peer

__all__ = ["Identifier"]

_CACHE_SIZE = 4096
#: What cryptography raises for a certificate it cannot parse (some lazily).
_MALFORMED = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def _facts(cert: x509.Certificate) -> tuple[str, bool]:
    """(identity, is a CA): reads the SPKI and the extensions, so it raises ``_MALFORMED``."""
    return identity_of(cert), is_ca(cert)


def _invalid() -> InvalidArgument:
    return InvalidArgument("invalid client certificate")


class Identifier:
    """Resolves request identities; caches DER -> identity (hashing is per connection)."""

    def __init__(
        self,
        *,
        proxies: frozenset[str],
        header: str,
        verify_forwarded: bool,
        trust: list[x509.Certificate] | None = None,
    ) -> None:
        self.proxies = proxies
        self.header = header.lower().encode("latin-1")
        self.verify_forwarded = verify_forwarded
        self._store = Store(trust) if trust else None
        #: DER -> (identity, CA), or None for a malformed certificate.
        self._cache: OrderedDict[bytes, tuple[str, bool] | None] = OrderedDict()

    def _of_der(self, der: bytes) -> tuple[str, bool]:
        if der not in self._cache:
            try:
                self._cache[der] = _facts(x509.load_der_x509_certificate(der))
            except _MALFORMED:
                self._cache[der] = None
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        hit = self._cache[der]
        if hit is None:
            raise _invalid()
        return hit

    def identify(self, peer: Peer, headers: Headers) -> tuple[str, str]:
        """(identity, client ip) of a request; raises the KES error to answer with.

        What depends only on the connection's certificate is worked out once
        per connection and kept on the peer.
        """
        known = peer.app_state
        if not isinstance(known, tuple):
            known = peer.app_state = self._of_peer(peer.cert_der)
        identity, error = known
        if error is not None:
            raise error
        if identity not in self.proxies:
            return identity, peer.ip
        return self._forwarded(headers, peer.ip)

    def _of_peer(self, der: bytes | None) -> tuple[str, APIError | None]:
        if not der:
            return "", InvalidArgument("no client certificate is present")
        identity, ca = self._of_der(der)
        if ca:
            return "", InvalidArgument("no client certificate is present")
        return identity, None

    def _forwarded(self, headers: Headers, ip: str) -> tuple[str, str]:
        values: list[bytes] = []
        forwarded_for = b""
        for name, value in headers:
            if name == self.header:
                values.append(value)
            elif name == b"x-forwarded-for" and not forwarded_for:
                forwarded_for = value
        if not values:
            raise InvalidArgument("no client certificate is present")
        if len(values) > 1:
            raise InvalidArgument("too many client certificates are present")
        try:
            pem = unquote_plus(values[0].decode("latin-1"), errors="strict")
            if "-----BEGIN CERTIFICATE-----" not in pem:
                raise ValueError("not a PEM certificate")
            cert = x509.load_pem_x509_certificate(pem.encode("latin-1"))
            identity, ca = _facts(cert)
        except (UnicodeError, *_MALFORMED):
            raise _invalid() from None
        if self.verify_forwarded:
            self._verify(cert)
        if ca:
            raise InvalidArgument("no client certificate is present")
        return identity, _first_forwarded(forwarded_for) or ip

    def _verify(self, cert: x509.Certificate) -> None:
        if self._store is None:
            raise NotAllowed("")
        verifier = PolicyBuilder().store(self._store).build_client_verifier()
        try:
            verifier.verify(cert, [])
        except (VerificationError, ValueError):
            raise NotAllowed("") from None


def _first_forwarded(value: bytes) -> str:
    """First X-Forwarded-For entry, without a port; '' for 'unknown' or garbage."""
    first = value.decode("latin-1").split(",", 1)[0].strip()
    if not first or first.lower() == "unknown":
        return ""
    if first.startswith("["):  # [v6]:port
        return first[1:].split("]", 1)[0]
    if first.count(":") == 1:  # v4:port
        return first.split(":", 1)[0]
    return first
