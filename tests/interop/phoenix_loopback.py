"""Run Phoenix with its OTLP/gRPC listener bound to loopback.

Phoenix binds gRPC to all interfaces regardless of PHOENIX_HOST; this
launcher rewrites the bind address before handing over to Phoenix's CLI,
so the test server is reachable from this machine only.

Usage: phoenix_loopback.py serve
"""

import sys

import grpc.aio._server as grpc_server

_add_insecure = grpc_server.Server.add_insecure_port
_add_secure = grpc_server.Server.add_secure_port


def _loopback(address):
    host, _, port = address.rpartition(":")
    if host in ("[::]", "0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    return address


grpc_server.Server.add_insecure_port = lambda self, address: _add_insecure(self, _loopback(address))
grpc_server.Server.add_secure_port = lambda self, address, creds: _add_secure(self, _loopback(address), creds)

from phoenix.server.main import main  # noqa: E402  (after the patch)

sys.argv[0] = "phoenix"
sys.exit(main())
