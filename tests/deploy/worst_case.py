"""The sidecar manifest's tracebridge under the worst inputs we know, with its
own settings: its peak RSS must stay under the manifest's memory limit.

Usage: worst_case.py TRACEBRIDGE_BINARY SIDECAR_YAML WORKDIR

The Opik and Arize destinations point at a stub on loopback that answers
every request with success after a short delay (a slow but healthy
backend). The attacks, one after the other, each while RSS is sampled from
/proc every 10 ms:
  1. the largest request the config allows, of LLM spans with big prompts;
  2. one request of 300,000 spans (or as many as the limit allows), each its own trace;
  3. 40 uploads that declare the request limit, send up to 4 MiB and stall;
  4. 30 concurrent gzip bombs (20 KB each, inflating to the request limit);
  5. 8 clients sending 1 MiB requests as fast as they are answered, 20 s.
Prints the peak per attack, and fails when one passes the limit.
"""

import gzip
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import yaml

binary, manifest, work = sys.argv[1], sys.argv[2], sys.argv[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- minimal protobuf encoding of ExportTraceServiceRequest ---------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def fixed64(field, n):
    return varint(field << 3 | 1) + n.to_bytes(8, "little")


def kv(key, value):
    any_value = ld(1, value.encode()) if isinstance(value, str) else varint(3 << 3) + varint(value)
    return ld(1, key.encode()) + ld(2, any_value)


def bare_span(trace, span_id):
    start = 1_767_225_600_000_000_000
    return (
        ld(1, trace.to_bytes(16, "big"))
        + ld(2, (span_id + 1).to_bytes(8, "big"))
        + ld(5, b"s")
        + fixed64(7, start)
        + fixed64(8, start + 1)
    )


def span(trace, span_id, prompt):
    start = 1_767_225_600_000_000_000 + span_id
    attrs = [
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.request.model", "gpt-4o-mini"),
        kv("gen_ai.provider.name", "openai"),
        kv("gen_ai.usage.input_tokens", 120),
        kv("gen_ai.usage.output_tokens", 30),
    ]
    if prompt:
        attrs.append(kv("gen_ai.input.messages", prompt))
    body = (
        ld(1, trace.to_bytes(16, "big"))
        + ld(2, (span_id + 1).to_bytes(8, "big"))
        + ld(5, b"chat gpt-4o-mini")
        + fixed64(7, start)
        + fixed64(8, start + 1_000_000)
        + b"".join(ld(9, a) for a in attrs)
    )
    return body


def request(spans):
    scope_spans = b"".join(ld(2, s) for s in spans)
    resource = ld(1, kv("service.name", "worst-case"))
    return ld(1, ld(1, resource) + ld(2, scope_spans))


def big_request(limit):
    prompt = '[{"role":"user","parts":[{"type":"text","content":"' + "x" * 20_000 + '"}]}]'
    spans, size, i = [], 0, 0
    while size < limit * 0.95 - 30_000:
        s = span(1 + i // 20, i, prompt)
        spans.append(s)
        size += len(s) + 8
        i += 1
    return request(spans)


# --- a slow, healthy backend ---------------------------------------------
class Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        time.sleep(0.05)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        self.do_POST()

    def log_message(self, *args):
        pass


stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
threading.Thread(target=stub.serve_forever, daemon=True).start()
stub_url = f"http://127.0.0.1:{stub.server_address[1]}"

# --- the sidecar's config and limit --------------------------------------
docs = [d for d in yaml.safe_load_all(open(manifest)) if d]
config = next(d for d in docs if d.get("kind") == "ConfigMap")["data"]["config.toml"]
deployment = next(d for d in docs if d.get("kind") == "Deployment")
container = next(
    c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "tracebridge"
)
limit_text = container["resources"]["limits"]["memory"]
units = {"Mi": 1 << 20, "Gi": 1 << 30}
limit = int(limit_text[:-2]) * units[limit_text[-2:]]

grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
secrets = os.path.join(work, "worst-secrets")
os.makedirs(secrets, exist_ok=True)
for name in ("opik_api_key", "arize_api_key", "arize_space_id"):
    open(os.path.join(secrets, name), "w").write("placeholder\n")
config = config.replace("/var/run/secrets/tracebridge", secrets)
config = re.sub(r'grpc_listen = ".*"', f'grpc_listen = "127.0.0.1:{grpc_port}"', config)
config = re.sub(r'http_listen = ".*"', f'http_listen = "127.0.0.1:{http_port}"', config)
config = re.sub(r'listen = "0\.0\.0\.0:13133"', f'listen = "127.0.0.1:{admin_port}"', config)
config = config.replace('url = "https://www.comet.com/opik/api"', f'url = "{stub_url}/api"')
config = config.replace(
    'type = "arize"', f'type = "arize"\nendpoint = "{stub_url}"\nprotocol = "http/protobuf"'
)
config = f'state_dir = "{os.path.join(work, "worst-state")}"\n' + config
path = os.path.join(work, "worst-case.toml")
open(path, "w").write(config)

env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEBRIDGE_", "OPIK_", "ARIZE_"))}
env["TRACEBRIDGE_DESTINATIONS__OPIK__PROBE_ON_START"] = "false"
env["TRACEBRIDGE_DESTINATIONS__ARIZE__PROBE_ON_START"] = "false"
daemon = subprocess.Popen([binary, "run", "--config", path], env=env, stderr=open(os.path.join(work, "worst-case.log"), "w"))
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=1)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("tracebridge did not become ready: " + open(os.path.join(work, "worst-case.log")).read())


def rss():
    with open(f"/proc/{daemon.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


peak = [0]
sampling = [True]


def sample():
    while sampling[0] and daemon.poll() is None:
        peak[0] = max(peak[0], rss())
        time.sleep(0.01)


def post(body, encoding=None, timeout=60):
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/v1/traces", data=body, method="POST",
        headers={"content-type": "application/x-protobuf", **({"content-encoding": encoding} if encoding else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def settle():
    time.sleep(3)


def stalled_uploads():
    socks = []
    declared = max_request - 1024
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", http_port))
        s.settimeout(5)
        s.sendall(
            f"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {declared}\r\n\r\n".encode()
        )
        try:
            s.sendall(b"\x0a" * min(4 << 20, declared // 2))
        except OSError:
            pass
        socks.append(s)
    time.sleep(3)
    for s in socks:
        s.close()


def threads(n, target):
    ts = [threading.Thread(target=target) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


max_request = int(re.search(r"max_request_bytes = (\d+)", config).group(1)) if "max_request_bytes" in config else 20 << 20
big = big_request(max_request)
# As many one-span traces as the request limit allows (300,000 at most).
many = request([bare_span(i + 1, i) for i in range(min(300_000, max_request // 48))])
bomb = gzip.compress(b"\x00" * (max_request - 1024), 9)
steady = big_request(1 << 20)
statuses = {}


def steady_client():
    deadline = time.time() + 20
    while time.time() < deadline:
        code = post(steady)
        statuses[code] = statuses.get(code, 0) + 1


attacks = [
    (f"largest request ({len(big) >> 20} MiB, LLM spans with 20 kB prompts)", lambda: post(big)),
    (f"{min(300_000, max_request // 48):,} traces in one request ({len(many) >> 20} MiB)", lambda: post(many)),
    (f"40 stalled uploads declaring {max_request >> 20} MiB", stalled_uploads),
    (f"30 concurrent gzip bombs ({len(bomb)} bytes each)", lambda: threads(30, lambda: post(bomb, "gzip"))),
    ("8 clients, 1 MiB requests, 20 s", lambda: threads(8, steady_client)),
]
failed = False
baseline = rss()
print(f"limit {limit >> 20} MiB (manifest); idle RSS {baseline >> 20} MiB")
for name, attack in attacks:
    peak[0] = rss()
    sampling[0] = True
    sampler = threading.Thread(target=sample)
    sampler.start()
    attack()
    settle()
    sampling[0] = False
    sampler.join()
    verdict = "ok" if peak[0] < limit else "OVER THE LIMIT"
    failed |= peak[0] >= limit
    print(f"{name}: peak RSS {peak[0] >> 20} MiB: {verdict}")
    if daemon.poll() is not None:
        sys.exit(f"tracebridge died during: {name}")
print(f"steady clients' answers: {statuses}")
daemon.terminate()
daemon.wait(timeout=30)
sys.exit(1 if failed else 0)
