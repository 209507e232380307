"""Interop: tracebridge forwards every dialect fixture to a real Arize
Phoenix over OTLP/HTTP protobuf with OpenInference enrichment; the spans
are read back through Phoenix's REST API and checked: project, span kind,
model name, token counts and messages — including the dialects Phoenix
cannot convert by itself (legacy GenAI events, OpenLLMetry, Vercel, Logfire).

Usage: phoenix_check.py TRACEBRIDGE_BINARY FIXTURE_DIR
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = "tracebridge-interop"

# dialect fixture -> {span id: (span name, span_kind, model, prompt tokens, first input message content)}
EXPECT = {
    "genai_v1_37": {
        "1000000000000002": ("chat gemini-2.5-pro", "LLM", "gemini-2.5-pro-001", 1200, "You plan trips. Use tools."),
        "1000000000000003": ("execute_tool search_flights", "TOOL", None, None, None),
        "1000000000000001": ("invoke_agent travel_planner", "AGENT", None, None, None),
    },
    "genai_legacy": {
        "2000000000000001": ("chat gpt-4o-mini", "LLM", "gpt-4o-mini-2024-07-18", 55, "You are a support bot."),
        "2000000000000002": ("openai.chat", "LLM", "claude-3-5-haiku", 30, "Summarise the ticket"),
    },
    "openllmetry": {
        "3000000000000002": ("openai.chat", "LLM", "gpt-4o-2024-08-06", 120, "You are a chef."),
        "3000000000000003": ("lookup_recipe.tool", "TOOL", None, None, None),
    },
    "openinference": {
        "4000000000000001": ("ChatCompletion", "LLM", "gpt-4o-2024-08-06", 300, "Answer from the docs."),
        "4000000000000002": ("search_docs", "TOOL", None, None, None),
    },
    "vercel": {
        "5000000000000002": ("ai.generateText.doGenerate", "LLM", "gpt-4o-mini-2024-07-18", 100, "You report weather."),
        "5000000000000003": ("ai.toolCall", "TOOL", None, None, None),
    },
    # The OpenRouter author slug is the provider (moonshot); the model name is
    # what price tables know it by.
    "openrouter": {"aaaaaaaaaaaaaaaa": ("LLM Generation", "LLM", "kimi-k2", 29, "Be helpful.")},
    "logfire": {
        "7000000000000002": ("chat gpt-4o", "LLM", "gpt-4o-2024-08-06", 100, "You are a math tutor."),
        "7000000000000003": ("running tool: multiply", "TOOL", None, None, None),
    },
}
# The openinference fixture names its own project in its resource.
PROJECT_OF = {"openinference": "support-rag"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def attr(attrs, dotted):
    """Reads a dotted key from Phoenix's attributes, flattened or nested."""
    if dotted in attrs:
        return attrs[dotted]
    cur = attrs
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def spans_of(base, project):
    out, cursor = [], None
    while True:
        q = {"limit": "100"}
        if cursor:
            q["cursor"] = cursor
        try:
            page = get_json(f"{base}/v1/projects/{urllib.parse.quote(project)}/spans?{urllib.parse.urlencode(q)}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise
        out += page.get("data", [])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def wait_ready(stderr_path, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("tracebridge exited early:\n" + open(stderr_path).read())
        for line in open(stderr_path):
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if str(v.get("message", "")).endswith("ready"):
                return v["http_addr"]
        time.sleep(0.1)
    sys.exit("tracebridge never became ready")


def main():
    binary, fixtures = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp()
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    env = dict(os.environ,
               PHOENIX_HOST="127.0.0.1", PHOENIX_PORT=str(http_port), PHOENIX_GRPC_PORT=str(grpc_port),
               PHOENIX_WORKING_DIR=os.path.join(work, "phoenix"), PHOENIX_TELEMETRY_ENABLED="false",
               PHOENIX_ALLOW_EXTERNAL_RESOURCES="false", PHOENIX_DISABLE_AGENT_ASSISTANT="true",
               PHOENIX_AGENTS_DISABLE_BASH="true")
    phoenix_log = open(os.path.join(work, "phoenix.log"), "w")
    phoenix = subprocess.Popen([sys.executable, os.path.join(HERE, "phoenix_loopback.py"), "serve"],
                               env=env, stdout=phoenix_log, stderr=subprocess.STDOUT)
    bridge = None
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if phoenix.poll() is not None or time.time() > deadline:
                phoenix_log.flush()
                sys.exit("Phoenix did not start:\n" + open(os.path.join(work, "phoenix.log")).read()[-4000:])
            time.sleep(0.5)
        print(f"Phoenix ready on {base}", flush=True)

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
[destinations.phoenix]
type = "otlp"
protocol = "http/protobuf"
endpoint = "{base}"
semconv = "openinference"
project_name = "{PROJECT}"
batch.flush_interval = "100ms"
""")
        stderr_path = os.path.join(work, "tracebridge.log")
        with open(stderr_path, "w") as err:
            bridge = subprocess.Popen([binary, "--config", config], stdout=subprocess.DEVNULL, stderr=err)
        http_addr = wait_ready(stderr_path, bridge, 30)
        total = 0
        for dialect in EXPECT:
            body = open(os.path.join(fixtures, f"{dialect}.json"), "rb").read()
            doc = json.loads(body)
            total += sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
            req = urllib.request.Request(f"http://{http_addr}/v1/traces", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                assert r.status == 200
        projects = sorted({PROJECT, *PROJECT_OF.values()})
        deadline = time.time() + 90
        while True:
            found = {p: spans_of(base, p) for p in projects}
            n = sum(len(v) for v in found.values())
            if n >= total or time.time() > deadline:
                break
            time.sleep(1)
        if n < total:
            sys.exit(f"Phoenix holds {n} of {total} spans after 90 s:\n" + open(stderr_path).read()[-3000:])

        problems = []
        for dialect, spans in EXPECT.items():
            project = PROJECT_OF.get(dialect, PROJECT)
            in_project = found[project]
            for span_id, (name, kind, model, prompt, first_in) in spans.items():
                candidates = [s for s in in_project if s.get("context", {}).get("span_id") == span_id]
                if not candidates:
                    problems.append(f"{dialect}: no span {span_id} ({name!r}) in project {project!r}")
                    continue
                s = candidates[0]
                if s["name"] != name:
                    problems.append(f"{dialect}: span {span_id} is named {s['name']!r}, expected {name!r}")
                a = s.get("attributes", {})
                where = f"{dialect} / {name}"
                got_kind = s.get("span_kind") or attr(a, "openinference.span.kind")
                if got_kind != kind:
                    problems.append(f"{where}: span kind {got_kind!r}, expected {kind!r}")
                if model and attr(a, "llm.model_name") != model:
                    problems.append(f"{where}: llm.model_name {attr(a, 'llm.model_name')!r}, expected {model!r}")
                if prompt is not None and attr(a, "llm.token_count.prompt") != prompt:
                    problems.append(f"{where}: prompt tokens {attr(a, 'llm.token_count.prompt')!r}, expected {prompt}")
                if first_in and attr(a, "llm.input_messages.0.message.content") != first_in:
                    problems.append(f"{where}: first input message {attr(a, 'llm.input_messages.0.message.content')!r}")
                if kind == "LLM" and attr(a, "llm.output_messages.0.message.role") is None:
                    problems.append(f"{where}: no output messages")
        print(f"Phoenix holds {n} spans in {projects}; checked {sum(len(v) for v in EXPECT.values())} of them")
        if problems:
            sys.exit("problems:\n  " + "\n  ".join(problems))
        print("phoenix interop: OK")
    finally:
        if bridge and bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
            bridge.wait(timeout=30)
        phoenix.send_signal(signal.SIGTERM)
        try:
            phoenix.wait(timeout=30)
        except subprocess.TimeoutExpired:
            phoenix.kill()


if __name__ == "__main__":
    main()
