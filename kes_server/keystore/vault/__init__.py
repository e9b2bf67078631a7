"""The Hashicorp Vault (and OpenBao) key store, compatible with KES v0.17's layout.

| module | concept |
|---|---|
| ``protocol.py`` | I/O-free: locations, payloads, answers, token schedule |
| ``transport.py`` | HTTP to Vault (httpx), TLS settings, scrubbed answers |
| ``health.py`` | available / sealed / unreachable, the poll, fast failure |
| ``auth.py`` | login, renewal and re-login of the Vault token |
| ``store.py`` | ``VaultStore``: the ``Store`` operations on top |
"""

from kes_server.keystore.vault.store import VaultStore

__all__ = ["VaultStore"]
