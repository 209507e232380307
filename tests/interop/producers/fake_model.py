#!/usr/bin/env python3
"""Deterministic fake LLM server for capturing what GenAI instrumentations emit.

Stdlib only. Speaks, on 127.0.0.1:
  POST /v1/chat/completions                       OpenAI Chat Completions (stream or not)
  POST /v1/responses                              OpenAI Responses API (stream or not)
  POST /v1/messages                               Anthropic Messages (stream or not)
  POST /v1beta/models/{model}:generateContent     Gemini
  POST /v1beta/models/{model}:streamGenerateContent[?alt=sse]

Conversation logic (same for every protocol): when tools are offered and the
request holds no tool result yet, answer with ONE call of the first offered tool,
every required string parameter set to "Paris" (all string parameters when none
is required); otherwise answer with FINAL_TEXT. Usage is fixed: 42 prompt /
17 completion tokens. Ids are fixed per turn kind, the model is echoed.

Usage: python3 fake_model.py --port N   (N=0: pick a free port)
The chosen port is printed as the first stdout line. Each request is logged to
stderr. SIGTERM or SIGINT stops the server cleanly.
"""

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

FINAL_TEXT = "The weather in Paris is sunny, 22°C."
PROMPT_TOKENS = 42
COMPLETION_TOKENS = 17
TOTAL_TOKENS = PROMPT_TOKENS + COMPLETION_TOKENS
CREATED = 1767225600  # 2026-01-01T00:00:00Z
TOOL_CALL_ID = "call_fake_0001"
ANTHROPIC_TOOL_ID = "toolu_fake_0001"
ANTHROPIC_CACHE_READ = 5
ANTHROPIC_CACHE_CREATION = 3


def chunks_of(text, n=3):
    """Split text into n roughly equal, whitespace-preserving pieces."""
    words = text.split(" ")
    size = max(1, (len(words) + n - 1) // n)
    parts = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


def fill_args(schema):
    """Plausible arguments for a JSON schema: required strings -> "Paris"."""
    schema = schema or {}
    props = schema.get("properties") or {}
    required = schema.get("required") or []
    names = required or [k for k, v in props.items() if str((v or {}).get("type", "")).lower() == "string"]
    if not names and "city" in props:
        names = ["city"]
    args = {}
    for name in names:
        t = str((props.get(name) or {}).get("type", "string")).lower()
        if t == "string":
            args[name] = "Paris"
        elif t in ("integer", "number"):
            args[name] = 1
        elif t == "boolean":
            args[name] = False
        elif t == "array":
            args[name] = []
        elif t == "object":
            args[name] = {}
        else:
            args[name] = "Paris"
    return args


# ---------- per-protocol request inspection ----------

def openai_chat_tool(req):
    tools = req.get("tools") or []
    if not tools:
        return None
    for m in req.get("messages") or []:
        if m.get("role") in ("tool", "function"):
            return None
    fn = tools[0].get("function") or tools[0]
    return fn.get("name", "tool"), fill_args(fn.get("parameters"))


def openai_responses_tool(req):
    tools = [t for t in (req.get("tools") or []) if t.get("type", "function") == "function"]
    if not tools:
        return None
    inp = req.get("input")
    if isinstance(inp, list):
        for item in inp:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                return None
    t = tools[0]
    return t.get("name", "tool"), fill_args(t.get("parameters"))


def anthropic_tool(req):
    tools = req.get("tools") or []
    if not tools:
        return None
    for m in req.get("messages") or []:
        content = m.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    return None
    t = tools[0]
    return t.get("name", "tool"), fill_args(t.get("input_schema"))


def gemini_tool(req):
    decls = []
    for t in req.get("tools") or []:
        decls.extend(t.get("functionDeclarations") or t.get("function_declarations") or [])
    if not decls:
        return None
    for c in req.get("contents") or []:
        for p in c.get("parts") or []:
            if "functionResponse" in p or "function_response" in p:
                return None
    d = decls[0]
    schema = d.get("parameters") or d.get("parametersJsonSchema") or d.get("parameters_json_schema")
    return d.get("name", "tool"), fill_args(schema)


# ---------- OpenAI Chat Completions ----------

def openai_usage():
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": TOTAL_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(req, call):
    model = req.get("model", "fake-model")
    if call:
        name, args = call
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [{
                "id": TOOL_CALL_ID,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }],
        }
        finish, cid = "tool_calls", "chatcmpl-fake-tool"
    else:
        message = {"role": "assistant", "content": FINAL_TEXT, "refusal": None}
        finish, cid = "stop", "chatcmpl-fake-final"
    return {
        "id": cid,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": openai_usage(),
    }


def chat_completion_stream(req, call):
    model = req.get("model", "fake-model")
    cid = "chatcmpl-fake-tool" if call else "chatcmpl-fake-final"

    def chunk(delta, finish=None, usage=None, choices=True):
        c = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
        }
        if usage is not None or not choices:
            c["usage"] = usage
        return c

    out = []
    if call:
        name, args = call
        arg_text = json.dumps(args)
        half = len(arg_text) // 2
        out.append(chunk({"role": "assistant", "content": None, "tool_calls": [{
            "index": 0, "id": TOOL_CALL_ID, "type": "function",
            "function": {"name": name, "arguments": ""}}]}))
        for piece in (arg_text[:half], arg_text[half:]):
            out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        out.append(chunk({}, "tool_calls"))
    else:
        out.append(chunk({"role": "assistant", "content": ""}))
        for piece in chunks_of(FINAL_TEXT):
            out.append(chunk({"content": piece}))
        out.append(chunk({}, "stop"))
    if (req.get("stream_options") or {}).get("include_usage"):
        out.append(chunk(None, usage=openai_usage(), choices=False))
    return [("", c) for c in out] + [("", "[DONE]")]


# ---------- OpenAI Responses ----------

def responses_usage():
    return {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": TOTAL_TOKENS,
    }


def responses_items(call):
    if call:
        name, args = call
        return [{
            "type": "function_call", "id": "fc_fake_0001", "call_id": TOOL_CALL_ID,
            "name": name, "arguments": json.dumps(args), "status": "completed",
        }]
    return [{
        "type": "message", "id": "msg_fake_0001", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": FINAL_TEXT, "annotations": [], "logprobs": []}],
    }]


def response_object(req, call, status="completed", items=None, usage=True):
    return {
        "id": "resp_fake_tool" if call else "resp_fake_final",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "model": req.get("model", "fake-model"),
        "output": responses_items(call) if items is None else items,
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": req.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": req.get("store", True),
        "temperature": req.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": req.get("tool_choice", "auto"),
        "tools": req.get("tools") or [],
        "top_p": req.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": responses_usage() if usage else None,
        "user": None,
        "metadata": req.get("metadata") or {},
    }


def responses_stream(req, call):
    events = []

    def ev(kind, **kw):
        d = {"type": kind, "sequence_number": len(events)}
        d.update(kw)
        events.append((kind, d))

    ev("response.created", response=response_object(req, call, "in_progress", [], False))
    ev("response.in_progress", response=response_object(req, call, "in_progress", [], False))
    item = responses_items(call)[0]
    if call:
        added = dict(item, arguments="", status="in_progress")
        ev("response.output_item.added", output_index=0, item=added)
        ev("response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=item["arguments"])
        ev("response.function_call_arguments.done", item_id=item["id"], output_index=0, arguments=item["arguments"])
    else:
        added = dict(item, content=[], status="in_progress")
        ev("response.output_item.added", output_index=0, item=added)
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        ev("response.content_part.added", item_id=item["id"], output_index=0, content_index=0, part=empty)
        for piece in chunks_of(FINAL_TEXT):
            ev("response.output_text.delta", item_id=item["id"], output_index=0, content_index=0,
               delta=piece, logprobs=[])
        ev("response.output_text.done", item_id=item["id"], output_index=0, content_index=0,
           text=FINAL_TEXT, logprobs=[])
        ev("response.content_part.done", item_id=item["id"], output_index=0, content_index=0,
           part=item["content"][0])
    ev("response.output_item.done", output_index=0, item=item)
    ev("response.completed", response=response_object(req, call))
    return events


# ---------- Anthropic Messages ----------

def anthropic_usage(output_tokens=COMPLETION_TOKENS):
    return {
        "input_tokens": PROMPT_TOKENS,
        "cache_creation_input_tokens": ANTHROPIC_CACHE_CREATION,
        "cache_read_input_tokens": ANTHROPIC_CACHE_READ,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def anthropic_message(req, call):
    if call:
        name, args = call
        content = [{"type": "tool_use", "id": ANTHROPIC_TOOL_ID, "name": name, "input": args}]
        stop, mid = "tool_use", "msg_fake_tool"
    else:
        content = [{"type": "text", "text": FINAL_TEXT}]
        stop, mid = "end_turn", "msg_fake_final"
    return {
        "id": mid, "type": "message", "role": "assistant", "model": req.get("model", "fake-model"),
        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": anthropic_usage(),
    }


def anthropic_stream(req, call):
    msg = anthropic_message(req, call)
    start = dict(msg, content=[], stop_reason=None, usage=anthropic_usage(output_tokens=1))
    ev = [("message_start", {"type": "message_start", "message": start})]
    if call:
        block = msg["content"][0]
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                   "content_block": dict(block, input={})}))
        arg_text = json.dumps(block["input"])
        half = len(arg_text) // 2
        for piece in (arg_text[:half], arg_text[half:]):
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
    else:
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}))
        for piece in chunks_of(FINAL_TEXT):
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": piece}}))
    ev.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    ev.append(("message_delta", {"type": "message_delta",
               "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
               "usage": {"output_tokens": COMPLETION_TOKENS}}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev


# ---------- Gemini ----------

def gemini_usage():
    return {
        "promptTokenCount": PROMPT_TOKENS,
        "candidatesTokenCount": COMPLETION_TOKENS,
        "totalTokenCount": TOTAL_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
    }


def gemini_response(model, call, parts=None, finish=True, usage=True):
    if parts is None:
        if call:
            name, args = call
            parts = [{"functionCall": {"name": name, "args": args}}]
        else:
            parts = [{"text": FINAL_TEXT}]
    cand = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = "STOP"
    out = {"candidates": [cand], "modelVersion": model,
           "responseId": "gemini-fake-tool" if call else "gemini-fake-final"}
    if usage:
        out["usageMetadata"] = gemini_usage()
    return out


def gemini_stream(model, call):
    if call:
        return [("", gemini_response(model, call))]
    pieces = chunks_of(FINAL_TEXT)
    out = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        out.append(("", gemini_response(model, call, [{"text": piece}], finish=last, usage=last)))
    return out


# ---------- HTTP ----------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-model/1"

    def log_message(self, fmt, *args):  # silence default access log
        pass

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_sse(self, events, crlf=False):
        """events: list of (event name or "", payload dict or raw string)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        nl = "\r\n" if crlf else "\n"
        for name, payload in events:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            text = (f"event: {name}{nl}" if name else "") + f"data: {data}{nl}{nl}"
            raw = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        path = urlsplit(self.path).path
        print(f"fake_model: GET {path}", file=sys.stderr, flush=True)
        if path in ("/", "/health"):
            self.send_json({"ok": True})
        elif path.endswith("/models"):
            self.send_json({"object": "list", "data": []})
        else:
            self.send_json({"error": {"message": f"no route {path}"}}, 404)

    def do_POST(self):
        url = urlsplit(self.path)
        path = url.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        stream = bool(req.get("stream"))
        if path.endswith("/chat/completions"):
            call = openai_chat_tool(req)
            self.log_req(path, req.get("model"), stream, call)
            if stream:
                self.send_sse(chat_completion_stream(req, call))
            else:
                self.send_json(chat_completion(req, call))
        elif path.endswith("/responses"):
            call = openai_responses_tool(req)
            self.log_req(path, req.get("model"), stream, call)
            if stream:
                self.send_sse(responses_stream(req, call))
            else:
                self.send_json(response_object(req, call))
        elif path.endswith("/messages"):
            call = anthropic_tool(req)
            self.log_req(path, req.get("model"), stream, call)
            if stream:
                self.send_sse(anthropic_stream(req, call))
            else:
                self.send_json(anthropic_message(req, call))
        elif ":generateContent" in path or ":streamGenerateContent" in path:
            model = path.rsplit("/", 1)[-1].split(":", 1)[0]
            call = gemini_tool(req)
            streaming = ":streamGenerateContent" in path
            self.log_req(path, model, streaming, call)
            if not streaming:
                self.send_json(gemini_response(model, call))
            elif parse_qs(url.query).get("alt") == ["sse"]:
                self.send_sse(gemini_stream(model, call), crlf=True)
            else:  # JSON array stream
                self.send_json([p for _, p in gemini_stream(model, call)])
        else:
            print(f"fake_model: POST {path} -> 404", file=sys.stderr, flush=True)
            self.send_json({"error": {"message": f"no route {path}", "type": "not_found"}}, 404)

    def log_req(self, path, model, stream, call):
        what = f"tool_call {call[0]}({json.dumps(call[1])})" if call else "final text"
        print(f"fake_model: POST {path} model={model} stream={stream} -> {what}",
              file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    print("fake_model: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
