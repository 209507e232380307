#!/usr/bin/env bash
# Capture what real Python GenAI instrumentation libraries emit, as OTLP/JSON
# fixtures in tests/fixtures/producers/.
#
# Usage: tests/interop/producers/capture-python.sh [NAME...]
#   NAME: one or more of the captures listed in CAPTURES below (default: all).
#   CAPTURE_OUT=DIR  write fixtures somewhere else (default tests/fixtures/producers).
#
# Each library runs a tiny weather agent (py/*.py) against fake_model.py (a
# deterministic OpenAI/Anthropic/Gemini fake on 127.0.0.1) and exports OTLP/HTTP
# protobuf to otlp_capture.py, which writes <name>.traces.json (+ .logs.json when
# the library sent log records). Nothing leaves the machine.
#
# Venvs (one per requirements file, since the libraries' pins conflict) live in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tracebridge/producers-py-<sha256(requirements file)[:12]>
# and are reused while the requirements file is unchanged.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
py="$here/py"
out="${CAPTURE_OUT:-$root/tests/fixtures/producers}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tracebridge"
started=$(date +%s)

# name | requirements file | script and args | min spans | extra env (space separated K=V)
CAPTURES="
openai-v2-span|requirements.txt|openai_v2.py span|4|OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental
openai-v2-event|requirements.txt|openai_v2.py event|4|OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental
openinference-openai|requirements.txt|openinference_openai.py|4|
strands-default|requirements-strands.txt|strands_agents.py default|6|
strands-latest|requirements-strands.txt|strands_agents.py latest|6|OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental
adk-schema1|requirements-adk.txt|google_adk.py 1|6|
adk-schema2|requirements-adk.txt|google_adk.py 2|4|
mlflow-native|requirements.txt|mlflow_native.py|4|
pydantic-ai|requirements.txt|pydantic_ai_agent.py|4|
langfuse-sdk|requirements-langfuse.txt|langfuse_sdk.py|4|
langsmith-langchain|requirements.txt|langsmith_langchain.py|4|LANGSMITH_TRACING=true LANGSMITH_TRACING_MODE=otel LANGSMITH_API_KEY=lsv2-fake-key LANGSMITH_REVISION_ID=capture-python
livekit-agents|requirements-livekit.txt|livekit_agents.py|8|
pipecat|requirements-pipecat.txt|pipecat_pipeline.py|4|
"

wanted=("$@")
selected() { # name -> 0 when it should run
  [ ${#wanted[@]} -eq 0 ] && return 0
  local w; for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1
}

venv_for() { # requirements file name -> venv dir (created on first use)
  local req="$py/$1" hash dir
  hash="$(sha256sum "$req" | cut -c1-12)"
  dir="$cache/producers-py-$hash"
  if [ ! -f "$dir/.complete" ]; then
    echo "creating venv $dir for $1" >&2
    rm -rf "$dir"
    mkdir -p "$cache"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    cp "$req" "$dir/requirements.txt"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

work="$(mktemp -d)"
fm_pid=""; oc_pid=""
stop_servers() {
  local p
  for p in $oc_pid $fm_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  fm_pid=""; oc_pid=""
}
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT

main_venv="$(venv_for requirements.txt)"

wait_port() { # file -> first line once present
  local i
  for i in $(seq 1 100); do
    if [ -s "$1" ]; then head -1 "$1"; return 0; fi
    sleep 0.1
  done
  echo "server did not start: $1" >&2; return 1
}

python3 "$here/fake_model.py" --port 0 > "$work/fake.port" 2> "$work/fake.log" &
fm_pid=$!
"$main_venv/bin/python" "$here/otlp_capture.py" --port 0 > "$work/capture.port" 2> "$work/capture.log" &
oc_pid=$!
fake_port="$(wait_port "$work/fake.port")"
capture_port="$(wait_port "$work/capture.port")"
echo "fake model on 127.0.0.1:$fake_port, OTLP capture on 127.0.0.1:$capture_port" >&2

flush() { # out prefix -> JSON summary on stdout
  "$main_venv/bin/python" - "http://127.0.0.1:$capture_port/flush?out=$1" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="POST"), timeout=30).read().decode())
PY
}

mkdir -p "$out"
failed=()
done_names=()
while IFS='|' read -r name req script min_spans extra; do
  [ -n "$name" ] || continue
  selected "$name" || continue
  venv="$(venv_for "$req")"
  flush "" > /dev/null # drop anything stray
  requests_before=$(grep -c '^fake_model: POST' "$work/fake.log" || true)
  t0=$(date +%s)
  echo "== $name: $script ($req)" >&2
  # shellcheck disable=SC2086 # $script and $extra are word lists on purpose
  if ! (cd "$py" && env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$HOME" LANG=C.UTF-8 PYTHONHASHSEED=0 \
      PYTHONDONTWRITEBYTECODE=1 TZ=UTC \
      OTEL_SERVICE_NAME="$name" \
      OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$capture_port" \
      OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
      OPENAI_API_KEY=sk-fake-openai-key OPENAI_BASE_URL="http://127.0.0.1:$fake_port/v1" \
      ANTHROPIC_API_KEY=sk-ant-fake-key ANTHROPIC_BASE_URL="http://127.0.0.1:$fake_port" \
      GOOGLE_API_KEY=fake-google-key GOOGLE_GENAI_USE_VERTEXAI=false \
      GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:$fake_port" \
      $extra "$venv/bin/python" $script > "$work/$name.out" 2> "$work/$name.err"); then
    echo "!! $name: script failed; last lines:" >&2; tail -20 "$work/$name.err" >&2
    failed+=("$name"); continue
  fi
  summary="$(flush "$work/$name")"
  requests=$(( $(grep -c '^fake_model: POST' "$work/fake.log" || true) - requests_before ))
  if ! python3 - "$work/$name" "$min_spans" "$requests" "$summary" <<'PY' >&2
import json, os, sys
prefix, min_spans, requests, summary = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
t = json.load(open(prefix + ".traces.json"))
spans = [s for r in t["resourceSpans"] for ss in r.get("scopeSpans", []) for s in ss.get("spans", [])]
logs = 0
if os.path.exists(prefix + ".logs.json"):
    l = json.load(open(prefix + ".logs.json"))
    logs = sum(len(sl.get("logRecords", [])) for r in l["resourceLogs"] for sl in r.get("scopeLogs", []))
print(f"   {len(spans)} spans in {len({s['traceId'] for s in spans})} trace(s), {logs} log records, "
      f"{summary['metric_requests']} metrics requests, {requests} model requests")
ok = len(spans) >= min_spans and requests == 2
if not ok:
    sys.exit(f"   expected >= {min_spans} spans and 2 model requests")
PY
  then
    failed+=("$name"); continue
  fi
  rm -f "$out/$name.traces.json" "$out/$name.logs.json"
  cp "$work/$name.traces.json" "$out/"
  [ -f "$work/$name.logs.json" ] && cp "$work/$name.logs.json" "$out/"
  echo "   ok in $(( $(date +%s) - t0 ))s -> $out/$name.traces.json" >&2
  done_names+=("$name")
done <<< "$CAPTURES"

stop_servers
echo "captured ${#done_names[@]}: ${done_names[*]:-}" >&2
echo "capture-python.sh took $(( $(date +%s) - started ))s" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
