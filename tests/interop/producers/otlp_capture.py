#!/usr/bin/env python3
"""Minimal OTLP/HTTP receiver that records what a producer sends, as OTLP/JSON.

Accepts POST /v1/traces, /v1/logs, /v1/metrics in protobuf
(application/x-protobuf) or JSON (application/json), gzip/deflate or plain,
Content-Length or chunked bodies, on 127.0.0.1. Everything received is
converted to canonical OTLP/JSON (lowerCamelCase names, traceId/spanId/
parentSpanId as lowercase hex, int64 as strings, enums as integers) and kept
in memory.

Output (written on SIGTERM/SIGINT to --out, or on POST /flush[?out=PREFIX],
which also resets the buffers):
  PREFIX.traces.json  one ExportTraceServiceRequest: all resourceSpans in arrival order
  PREFIX.logs.json    one ExportLogsServiceRequest (only when log records arrived)
Metrics are not stored, only counted. /flush answers a JSON summary
{"trace_requests", "spans", "log_requests", "log_records", "metric_requests",
"written": [...]}; the same summary goes to stderr.

Needs the opentelemetry-proto package (and its protobuf dependency).
Usage: python3 otlp_capture.py --port N [--out PREFIX]   (port 0: pick a free
one; the port is printed as the first stdout line)
"""

import argparse
import base64
import gzip
import json
import signal
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

ID_KEYS = {"traceId", "spanId", "parentSpanId"}

SIGNALS = {
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest,
                   trace_service_pb2.ExportTraceServiceResponse, "resourceSpans"),
    "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest,
                 logs_service_pb2.ExportLogsServiceResponse, "resourceLogs"),
    "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest,
                    metrics_service_pb2.ExportMetricsServiceResponse, "resourceMetrics"),
}


def fix_ids(node, to_hex=True):
    """Walk OTLP/JSON; convert id fields base64 -> hex (or hex -> base64)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ID_KEYS and isinstance(v, str):
                if to_hex:
                    node[k] = base64.b64decode(v).hex()
                elif v and all(c in "0123456789abcdefABCDEF" for c in v):
                    node[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                fix_ids(v, to_hex)
    elif isinstance(node, list):
        for v in node:
            fix_ids(v, to_hex)
    return node


def to_json(msg):
    d = json_format.MessageToDict(msg, use_integers_for_enums=True)
    return fix_ids(d, to_hex=True)


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.resource_spans = []
        self.resource_logs = []
        self.counts = {"trace_requests": 0, "spans": 0, "log_requests": 0,
                       "log_records": 0, "metric_requests": 0}

    def add(self, path, d):
        with self.lock:
            if path == "/v1/traces":
                self.counts["trace_requests"] += 1
                rs = d.get("resourceSpans", [])
                self.resource_spans.extend(rs)
                self.counts["spans"] += sum(len(ss.get("spans", [])) for r in rs for ss in r.get("scopeSpans", []))
            elif path == "/v1/logs":
                self.counts["log_requests"] += 1
                rl = d.get("resourceLogs", [])
                self.resource_logs.extend(rl)
                self.counts["log_records"] += sum(len(sl.get("logRecords", [])) for r in rl for sl in r.get("scopeLogs", []))
            else:
                self.counts["metric_requests"] += 1

    def flush(self, prefix):
        with self.lock:
            written = []
            if prefix:
                written.append(write(prefix + ".traces.json", {"resourceSpans": self.resource_spans}))
                if self.resource_logs:
                    written.append(write(prefix + ".logs.json", {"resourceLogs": self.resource_logs}))
            summary = dict(self.counts, written=written)
            self.reset()
        print("otlp_capture: flush " + json.dumps(summary), file=sys.stderr, flush=True)
        return summary


def write(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return path


def read_chunked(rfile):
    """Body of a Transfer-Encoding: chunked request."""
    data = bytearray()
    while True:
        size = int(rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(data)
        data += rfile.read(size)
        rfile.readline(65537)  # CRLF after the chunk


STORE = Store()
DEFAULT_OUT = [None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urlsplit(self.path)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = read_chunked(self.rfile)  # e.g. OTel JS exporters stream the body
        else:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
        if url.path == "/flush":
            out = parse_qs(url.query).get("out", [DEFAULT_OUT[0]])[0]
            self.reply(200, json.dumps(STORE.flush(out)).encode(), "application/json")
            return
        if url.path not in SIGNALS:
            self.reply(404, b"not found", "text/plain")
            return
        req_type, resp_type, _ = SIGNALS[url.path]
        enc = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if enc == "gzip":
                raw = gzip.decompress(raw)
            elif enc == "deflate":
                raw = zlib.decompress(raw)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            is_json = ctype == "application/json"
            msg = req_type()
            if is_json:
                json_format.ParseDict(fix_ids(json.loads(raw or b"{}"), to_hex=False), msg,
                                      ignore_unknown_fields=True)
            else:
                msg.ParseFromString(raw)
        except Exception as e:  # noqa: BLE001 - report any decoding failure as 400
            print(f"otlp_capture: bad {url.path} request: {e!r}", file=sys.stderr, flush=True)
            self.reply(400, str(e).encode(), "text/plain")
            return
        STORE.add(url.path, to_json(msg))
        ua = self.headers.get("User-Agent", "")
        print(f"otlp_capture: {url.path} {'json' if is_json else 'protobuf'}"
              f"{'+' + enc if enc else ''} {len(raw)} bytes ({ua})", file=sys.stderr, flush=True)
        if is_json:
            self.reply(200, b"{}", "application/json")
        else:
            self.reply(200, resp_type().SerializeToString(), "application/x-protobuf")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--out", help="output prefix written on SIGTERM")
    args = ap.parse_args()
    DEFAULT_OUT[0] = args.out
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    if args.out:
        STORE.flush(args.out)


if __name__ == "__main__":
    main()
