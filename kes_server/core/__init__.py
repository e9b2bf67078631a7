"""The pure core of pykes: no sockets, files, HTTP or UI.

Identity, policy evaluation, name rules, crypto, ciphertext formats, the error
tree and configuration parsing live here so that the server, the SDK, the CLI
and the TUI share one implementation.
"""
