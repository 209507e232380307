#!/usr/bin/env python3
"""otlp_capture.py, also accepting request bodies sent with Transfer-Encoding: chunked.

OpenTelemetry JS's OTLP/HTTP exporters (0.223.x, as used by the AI SDK producers)
stream the request body without Content-Length (`Transfer-Encoding: chunked`).
otlp_capture.py reads Content-Length bytes only, so it would see an empty body and
record an empty export. This wrapper de-chunks the body first and hands it to
otlp_capture's handler with a Content-Length header; non-chunked requests pass
through untouched. Same command line and output as otlp_capture.py.
"""

import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_capture  # noqa: E402


def read_chunked(rfile):
    data = bytearray()
    while True:
        line = rfile.readline(65537)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # trailers, up to the empty line
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(data)
        data += rfile.read(size)
        rfile.readline(65537)  # CRLF after the chunk


class ChunkedHandler(otlp_capture.Handler):
    def do_POST(self):
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return super().do_POST()
        body = read_chunked(self.rfile)
        del self.headers["Transfer-Encoding"]
        del self.headers["Content-Length"]
        self.headers["Content-Length"] = str(len(body))
        real_rfile = self.rfile
        self.rfile = io.BytesIO(body)
        try:
            super().do_POST()
        finally:
            self.rfile = real_rfile


if __name__ == "__main__":
    otlp_capture.Handler = ChunkedHandler  # main() builds the server with this name
    otlp_capture.main()
