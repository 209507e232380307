#!/usr/bin/env bash
# Captures what real Node GenAI producers put on the wire, as OTLP/JSON fixtures:
#   ai-sdk-6           Vercel AI SDK 6 (`ai` 6.x, experimental_telemetry), spans
#   ai-sdk-7           Vercel AI SDK 7 + @ai-sdk/otel OpenTelemetry (GenAI semconv), spans
#   ai-sdk-7-legacy    Vercel AI SDK 7 + @ai-sdk/otel LegacyOpenTelemetry (ai.* keys), spans
#   claude-code-logs   Claude Code CLI, telemetry without the spans beta: log events
#   claude-code-spans  Claude Code CLI with CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1: spans + logs
# written to tests/fixtures/producers/<name>.traces.json / <name>.logs.json.
#
# Each producer talks to a fake model on 127.0.0.1 (fake_model.py for OpenAI chat
# completions, fake_model_claude.py for Claude Code's Messages API calls) that answers
# with one tool call and then a final text, and exports OTLP/HTTP protobuf to
# otlp_capture.py (through otlp_capture_chunked.py: OTel JS streams bodies chunked).
#
# Usage: tests/interop/producers/capture-node.sh [NAME ...]    (default: all five)
# Env:   FIXTURE_DIR  output folder (default tests/fixtures/producers)
#        XDG_CACHE_HOME / HOME  where the npm installs and the capture venv are kept:
#          ${XDG_CACHE_HOME:-$HOME/.cache}/tracebridge/producers-node-<sha256[:12] of the
#          lock files + requirements-capture.txt>/ (reused while the locks are unchanged)
# Needs: node >= 20 and npm (registry access on the first run), python3 with venv.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
node_src="$here/node"
fixtures="${FIXTURE_DIR:-$root/tests/fixtures/producers}"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ai-sdk-6 ai-sdk-7 ai-sdk-7-legacy claude-code-logs claude-code-spans)
start_s=$SECONDS

log() { printf 'capture-node: %s\n' "$*" >&2; }
want() { local n; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

# ---------- install (cached) ----------
key="$(cat "$node_src/ai6/package-lock.json" "$node_src/ai7/package-lock.json" \
  "$node_src/claude/package-lock.json" "$node_src/requirements-capture.txt" | sha256sum | cut -c1-12)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tracebridge/producers-node-$key"
if [ ! -f "$cache/.complete" ]; then
  log "installing into $cache"
  rm -rf "$cache.tmp"
  mkdir -p "$cache.tmp"
  for p in ai6 ai7 claude; do
    mkdir -p "$cache.tmp/$p"
    cp "$node_src/$p/package.json" "$node_src/$p/package-lock.json" "$cache.tmp/$p/"
    (cd "$cache.tmp/$p" && npm ci --no-audit --no-fund --loglevel=error >&2)
  done
  python3 -m venv "$cache.tmp/venv"
  "$cache.tmp/venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$node_src/requirements-capture.txt" >&2
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
  # venv scripts hard-code their folder; call the interpreter by path only.
  touch "$cache/.complete"
else
  log "reusing $cache"
fi
py="$cache/venv/bin/python3"
[ -x "$py" ] || py="$cache/venv/bin/python"
for p in ai6 ai7; do cp -f "$node_src/$p/capture.mjs" "$cache/$p/capture.mjs"; done

claude_bin=""
for c in "$cache/claude/node_modules/@anthropic-ai/claude-code/bin/claude.exe" \
         "$cache"/claude/node_modules/@anthropic-ai/claude-code-*/claude; do
  if [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then claude_bin="$c"; break; fi
done

# ---------- servers ----------
work="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_server() { # name cmd... -> port in $port; pid appended to pids
  local name="$1"; shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  local i
  for i in $(seq 1 100); do
    if [ -s "$work/$name.out" ]; then port="$(head -1 "$work/$name.out")"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  log "$name did not start:"; cat "$work/$name.err" >&2; return 1
}

start_server capture "$py" "$here/otlp_capture_chunked.py" --port 0; cap_port=$port
start_server fake "$py" "$here/fake_model.py" --port 0; fake_port=$port
start_server fake_claude "$py" "$here/fake_model_claude.py" --port 0 \
  --log "$work/claude-requests.jsonl"; claude_port=$port
log "capture :$cap_port, fake model :$fake_port, fake Claude API :$claude_port"

mkdir -p "$fixtures"
status=0
flush() { # name -> writes fixtures, prints the capture summary
  curl -sS -X POST "http://127.0.0.1:$cap_port/flush?out=$fixtures/$1" > "$work/$1.summary.json"
  log "$1: $(cat "$work/$1.summary.json")"
}
run() { # name cmd... (runs with a clean environment)
  local name="$1"; shift
  log "$name: running"
  curl -sS -X POST "http://127.0.0.1:$cap_port/flush" > /dev/null # drop anything stray
  rm -f "$fixtures/$name.traces.json" "$fixtures/$name.logs.json"
  if ! "$@" > "$work/$name.stdout" 2> "$work/$name.stderr"; then
    log "$name: producer failed:"; tail -n 40 "$work/$name.stderr" >&2; status=1
  fi
  flush "$name"
}
clean_env=(env -i "PATH=$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin" "HOME=$work/home" LANG=C.UTF-8)
mkdir -p "$work/home"

ai_env=("FAKE_MODEL_URL=http://127.0.0.1:$fake_port" "OTLP_ENDPOINT=http://127.0.0.1:$cap_port")
if want ai-sdk-6; then
  run ai-sdk-6 "${clean_env[@]}" "${ai_env[@]}" timeout 120 node "$cache/ai6/capture.mjs"
fi
if want ai-sdk-7; then
  run ai-sdk-7 "${clean_env[@]}" "${ai_env[@]}" timeout 120 node "$cache/ai7/capture.mjs" otel
fi
if want ai-sdk-7-legacy; then
  run ai-sdk-7-legacy "${clean_env[@]}" "${ai_env[@]}" timeout 120 node "$cache/ai7/capture.mjs" legacy
fi

claude_run() { # name extra-env...
  local name="$1"; shift
  local home="$work/claude-$name"
  mkdir -p "$home/home/.claude" "$home/project"
  cd "$home/project"
  run "$name" env -i \
    "PATH=/usr/local/bin:/usr/bin:/bin" "HOME=$home/home" "CLAUDE_CONFIG_DIR=$home/home/.claude" \
    TERM=dumb LANG=C.UTF-8 \
    "ANTHROPIC_BASE_URL=http://127.0.0.1:$claude_port" ANTHROPIC_API_KEY=sk-ant-fake \
    DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    CLAUDE_CODE_ENABLE_TELEMETRY=1 OTEL_LOGS_EXPORTER=otlp OTEL_METRICS_EXPORTER=otlp \
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$cap_port" \
    OTEL_LOG_USER_PROMPTS=1 OTEL_LOG_TOOL_DETAILS=1 OTEL_LOG_TOOL_CONTENT=1 OTEL_LOG_RAW_API_BODIES=1 \
    OTEL_LOGS_EXPORT_INTERVAL=500 OTEL_METRIC_EXPORT_INTERVAL=1000 OTEL_TRACES_EXPORT_INTERVAL=500 \
    "$@" \
    timeout 180 "$claude_bin" -p "What is the weather in Paris? Use the Bash tool to run: echo sunny, 22C" \
      --append-system-prompt "Answer in one short sentence." \
      --output-format json --allowedTools Bash
  cd "$root"
  # a logs-only run has no spans: keep no empty traces file
  if [ -f "$fixtures/$name.traces.json" ] && "$py" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("resourceSpans") else 1)' "$fixtures/$name.traces.json"; then :; else
    rm -f "$fixtures/$name.traces.json"
  fi
  log "$name: CLI result: $(head -c 300 "$work/$name.stdout")"
}
if want claude-code-logs || want claude-code-spans; then
  if [ -z "$claude_bin" ]; then
    log "claude CLI not runnable from $cache/claude"; status=1
  else
    log "claude: $("$claude_bin" --version)"
    want claude-code-logs && claude_run claude-code-logs
    want claude-code-spans && claude_run claude-code-spans \
      CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 OTEL_TRACES_EXPORTER=otlp
    log "requests the CLI made to the fake Claude API:"
    "$py" - "$work/claude-requests.jsonl" >&2 <<'PY' || true
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"  {r['method']} {r['path']} model={r.get('model')} stream={r.get('stream')} "
          f"tools={len(r.get('tools') or [])} messages={r.get('messages')} "
          f"tool_result={r.get('has_tool_result')} ua={r['headers'].get('User-Agent')}")
PY
  fi
fi

"$py" "$node_src/check_fixtures.py" "$fixtures" "${names[@]}" || status=1
log "done in $((SECONDS - start_s)) s (status $status)"
exit $status
