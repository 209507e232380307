"""Interop: everything tracebridge sends to Opik must validate against the
official `opik` package's write models (TraceWrite / SpanWrite), plus the
server rules those models do not enforce (v7 ids, tag and batch limits,
non-blank error_info, no orphans).

Usage: opik_models_validate.py TRACEBRIDGE_BINARY FIXTURE_DIR [LOGS_DIR]
Starts a capture server that plays Opik's batch endpoints, runs tracebridge
against it, sends every fixture (then every *.logs.json of LOGS_DIR to
/v1/logs: content joined to the spans, Claude Code's logs-only events made
into traces), stops tracebridge (which finalises traces) and validates
every captured body.
"""

import glob
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opik.rest_api.types import SpanWrite, TraceWrite
from pydantic import ConfigDict, create_model

API_KEY = "interop-key"
WORKSPACE = "interop-ws"


class StrictTrace(TraceWrite):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictSpan(SpanWrite):
    model_config = ConfigDict(extra="forbid", frozen=True)


TraceBatch = create_model("TraceBatchWrite", traces=(list[StrictTrace], ...))
SpanBatch = create_model("SpanBatchWrite", spans=(list[StrictSpan], ...))

captured = []  # (path, raw json bytes)
problems = []


class Opik(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("authorization") != API_KEY:
            problems.append(f"{self.path}: wrong Authorization header")
        if self.headers.get("comet-workspace") != WORKSPACE:
            problems.append(f"{self.path}: wrong Comet-Workspace header")
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        else:
            problems.append(f"{self.path}: body not gzipped")
        captured.append((self.path, body))
        self.send_response(204)
        self.end_headers()


def is_v7(s):
    try:
        return uuid.UUID(s).version == 7
    except (ValueError, TypeError, AttributeError):
        return False


def check_error_info(where, e):
    if e is None:
        return
    if not (e.exception_type or "").strip() or not (e.traceback or "").strip():
        problems.append(f"{where}: blank error_info field")


def synthesised(doc):
    """Spans and traces tracebridge makes of Claude Code's events without
    spans: one trace per prompt, a span per user_prompt, api_request,
    api_error and tool_result."""
    spans, traces = 0, set()
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            if (sl.get("scope") or {}).get("name") != "com.anthropic.claude_code.events":
                continue
            for r in sl.get("logRecords", []):
                if r.get("traceId"):
                    continue
                a = {kv["key"]: kv["value"].get("stringValue") for kv in r.get("attributes", [])}
                if a.get("prompt.id") and a.get("event.name") in (
                    "user_prompt", "api_request", "api_error", "tool_result"
                ):
                    spans += 1
                    traces.add("prompt:" + a["prompt.id"])
    return spans, traces


def main():
    binary, fixtures = sys.argv[1], sys.argv[2]
    logs_dir = sys.argv[3] if len(sys.argv) > 3 else None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Opik)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp()
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(f"""
state_dir = "{work}/state"
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
format = "json"
[destinations.opik]
type = "opik"
url = "http://127.0.0.1:{server.server_address[1]}/api"
api_key = "{API_KEY}"
workspace = "{WORKSPACE}"
project_name = "interop"
tags = ["interop"]
batch.flush_interval = "100ms"
""")
    stderr_path = os.path.join(work, "stderr.log")
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([binary, "--config", config], stdout=subprocess.DEVNULL, stderr=err)
    try:
        http_addr = None
        for _ in range(100):
            for line in open(stderr_path):
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if str(v.get("message", "")).endswith("ready"):
                    http_addr = v["http_addr"]
            if http_addr or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not http_addr:
            sys.exit("tracebridge did not become ready:\n" + open(stderr_path).read())
        expected_spans = 0
        expected_traces = set()
        files = sorted(glob.glob(os.path.join(fixtures, "*.json")))
        for path in files:
            body = open(path, "rb").read()
            doc = json.loads(body)
            all_spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
            expected_spans += len(all_spans)
            expected_traces |= {s["traceId"] for s in all_spans}
            req = urllib.request.Request(
                f"http://{http_addr}/v1/traces", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req) as r:
                assert r.status == 200, path
        for path in sorted(glob.glob(os.path.join(logs_dir, "*.logs.json"))) if logs_dir else []:
            body = open(path, "rb").read()
            spans, traces = synthesised(json.loads(body))
            expected_spans += spans
            expected_traces |= traces
            req = urllib.request.Request(
                f"http://{http_addr}/v1/logs", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req) as r:
                assert r.status == 200, path
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        if code != 0:
            problems.append(f"tracebridge exited with {code}")
        server.shutdown()

    traces, spans = {}, {}
    for path, raw in captured:
        if path.endswith("/traces/batch"):
            batch = TraceBatch.model_validate_json(raw)
            items = batch.traces
            for t in items:
                if not is_v7(t.id):
                    problems.append(f"trace {t.id}: not a v7 UUID")
                if len(t.tags or []) > 50:
                    problems.append(f"trace {t.id}: more than 50 tags")
                check_error_info(f"trace {t.id}", t.error_info)
                traces[t.id] = t
        elif path.endswith("/spans/batch"):
            batch = SpanBatch.model_validate_json(raw)
            items = batch.spans
            for s in items:
                if not is_v7(s.id):
                    problems.append(f"span {s.id}: not a v7 UUID")
                if s.type not in ("general", "tool", "llm", "guardrail"):
                    problems.append(f"span {s.id}: type {s.type!r}")
                if len(s.tags or []) > 50:
                    problems.append(f"span {s.id}: more than 50 tags")
                check_error_info(f"span {s.id}", s.error_info)
                spans[s.id] = s
        else:
            problems.append(f"unexpected path {path}")
            continue
        if not 1 <= len(items) <= 1000:
            problems.append(f"{path}: batch of {len(items)} items")

    for s in spans.values():
        if s.trace_id not in traces:
            problems.append(f"span {s.id} ({s.name}): orphan, trace {s.trace_id} never written")
        if s.parent_span_id is not None and s.parent_span_id not in spans:
            problems.append(f"span {s.id} ({s.name}): parent {s.parent_span_id} never written")
        if traces.get(s.trace_id) and traces[s.trace_id].project_name != s.project_name:
            problems.append(f"span {s.id}: project differs from its trace's")
    if len(spans) != expected_spans:
        problems.append(f"{len(spans)} spans written, fixtures hold {expected_spans}")
    if len(traces) != len(expected_traces):
        problems.append(f"{len(traces)} traces written for the fixtures' {len(expected_traces)} OTel traces")
    llm = [s for s in spans.values() if s.type == "llm"]
    if not all(isinstance(v, int) for s in llm for v in (s.usage or {}).values()):
        problems.append("non-integer usage")
    print(f"validated {len(captured)} request bodies: {len(traces)} traces, {len(spans)} spans "
          f"({len(llm)} llm) against opik TraceWrite/SpanWrite")
    if problems:
        sys.exit("problems:\n  " + "\n  ".join(problems))
    print("opik-models interop: OK")


if __name__ == "__main__":
    main()
