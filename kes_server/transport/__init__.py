"""HTTPS for kes-server: TLS, HTTP/1.1 and HTTP/2, and the accept loop.

* ``listen``: the listening socket (bound before anything else starts);
* ``server``: ``HTTPServer`` accepts TLS connections and stops gracefully;
* ``tlsconn``: TLS over memory BIOs, then HTTP/1.1 or HTTP/2 by ALPN;
* ``http1`` (httptools/llhttp) and ``http2`` (h2): the two protocols;
* ``exchange``: what the application sees of one request, on either protocol.

Nothing here knows KES: the application is any ``async def (exchange)``.
"""
