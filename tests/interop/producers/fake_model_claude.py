#!/usr/bin/env python3
"""fake_model.py, adapted to what the Claude Code CLI needs from the Messages API.

Extends (does not change) fake_model.py:
- Tool choice: Claude Code offers its whole tool set (Agent, Bash, Edit, Read, ...),
  and fake_model.py would call the first one. Here the first turn calls Bash with
  {"command": "echo sunny, 22C", "description": ...} when Bash is offered; any
  request without Bash, or after a tool_result, gets the final text.
- Every /v1/messages answer carries a `request-id: req_fake_NNNN` header (the
  Anthropic SDK reads it into `request_id`, which Claude Code puts on its
  `api_request` / `assistant_response` / `tool_result` events and
  `claude_code.llm_request` spans); the message id becomes `msg_fake_NNNN`
  (distinct per call, as with the real API).
- POST /v1/messages/count_tokens answers {"input_tokens": 42}.
- Each request is appended to --log (JSONL: method, path, selected headers,
  model, stream, tool names, whether it holds a tool_result), to see what the
  CLI calls. Unknown GET/POST paths are logged and answered 404 as before.

Usage: python3 fake_model_claude.py --port N [--log FILE]   (N=0: free port,
printed as the first stdout line; same as fake_model.py)
"""

import io
import itertools
import json
import os
import sys
import threading
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_model  # noqa: E402

BASH_COMMAND = "echo sunny, 22C"
LOG_HEADERS = ("user-agent", "anthropic-beta", "anthropic-version", "x-app",
               "x-claude-code-session-id", "content-length", "transfer-encoding")

_counter = itertools.count(1)
_log_lock = threading.Lock()
_log_path = [None]


def has_tool_result(req):
    for m in req.get("messages") or []:
        content = m.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    return True
    return False


def claude_tool(req):
    names = [t.get("name") for t in req.get("tools") or []]
    if "Bash" not in names or has_tool_result(req):
        return None
    return "Bash", {"command": BASH_COMMAND, "description": "Print the weather in Paris"}


# fake_model.Handler.do_POST looks this up as a module global.
fake_model.anthropic_tool = claude_tool


def log_request(rec):
    if not _log_path[0]:
        return
    with _log_lock, open(_log_path[0], "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")


class ClaudeHandler(fake_model.Handler):
    _extra_headers = ()

    def end_headers(self):
        for k, v in self._extra_headers:
            self.send_header(k, v)
        self._extra_headers = ()
        super().end_headers()

    def _record(self, method, path, req=None, status=None):
        rec = {"method": method, "path": self.path,
               "headers": {k: v for k, v in self.headers.items() if k.lower() in LOG_HEADERS}}
        if isinstance(req, dict):
            rec.update(model=req.get("model"), stream=bool(req.get("stream")),
                       tools=[t.get("name") for t in req.get("tools") or []],
                       messages=len(req.get("messages") or []),
                       has_tool_result=has_tool_result(req),
                       max_tokens=req.get("max_tokens"))
        if status:
            rec["status"] = status
        log_request(rec)

    def do_GET(self):
        self._record("GET", urlsplit(self.path).path)
        super().do_GET()

    def do_POST(self):
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = None
        self._record("POST", path, req)
        if path.endswith("/messages/count_tokens"):
            print(f"fake_model_claude: POST {path} -> count_tokens", file=sys.stderr, flush=True)
            self.send_json({"input_tokens": fake_model.PROMPT_TOKENS})
            return
        if path.endswith("/messages"):
            n = next(_counter)
            self._extra_headers = (("request-id", f"req_fake_{n:04d}"),)
            self._message_id = f"msg_fake_{n:04d}"
        # Hand the already-read body back to fake_model's handler.
        real_rfile = self.rfile
        self.rfile = io.BytesIO(raw)
        _current.handler = self
        try:
            super().do_POST()
        finally:
            self.rfile = real_rfile
            _current.handler = None


_current = threading.local()
_orig_message = fake_model.anthropic_message


def _message_with_id(req, call):
    msg = _orig_message(req, call)
    handler = getattr(_current, "handler", None)
    if handler is not None and getattr(handler, "_message_id", None):
        msg["id"] = handler._message_id
    return msg


# anthropic_stream() and do_POST() look this up as a module global.
fake_model.anthropic_message = _message_with_id


def main():
    argv = sys.argv[1:]
    if "--log" in argv:
        i = argv.index("--log")
        _log_path[0] = argv[i + 1]
        del argv[i:i + 2]
    sys.argv[1:] = argv
    fake_model.Handler = ClaudeHandler  # main() builds the server with this name
    fake_model.main()


if __name__ == "__main__":
    main()
