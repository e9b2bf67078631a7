"""pykes server: a Python implementation of the MinIO KES key encryption service.

Importing this package is cheap: the pure core (``kes_server.core``) has no I/O
and the HTTP stack is only loaded by ``kes_server.api`` / ``kes_server.serve``.
"""

__version__ = "0.1.0"
#: What ``/version`` reports; KES clients only display it.
KES_VERSION = f"v{__version__}"

__all__ = ["KES_VERSION", "__version__"]
