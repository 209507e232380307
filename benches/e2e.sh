#!/usr/bin/env bash
# End-to-end benchmark: a release tracebridge under OTLP/HTTP load from
# examples/loadgen.rs, with either a file destination (to /dev/null, so the
# disk is not measured) or, with DEST=opik, an Opik destination sending to
# examples/opik_sink.rs (a stand-in that only counts rows, so the sink is not
# the bottleneck: the Opik scenario of the performance section). Reports
# throughput, daemon CPU per span and peak RSS.
#
# Usage: [DEST=file|opik] benches/e2e.sh [REQUESTS] [SPANS_PER_REQUEST] [CONCURRENCY] [gzip]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
requests="${1:-2000}"
spans="${2:-100}"
concurrency="${3:-8}"
gzip="${4:-}"
dest="${DEST:-file}"

cd "$root"
cargo build --release --quiet --bin tracebridge --example loadgen --example opik_sink
work="$(mktemp -d)"
sink_pid=""
trap 'kill "$pid" $sink_pid 2>/dev/null || true; rm -rf "$work"' EXIT
if [ "$dest" = opik ]; then
  target/release/examples/opik_sink 2> "$work/sink.log" &
  sink_pid=$!
  for _ in $(seq 1 100); do grep -q 'listening on' "$work/sink.log" 2>/dev/null && break; sleep 0.05; done
  sink_addr="$(sed -n 's/^listening on //p' "$work/sink.log")"
  destination="[destinations.sink]
type = \"opik\"
url = \"http://$sink_addr/api\""
else
  destination="[destinations.sink]
type = \"file\"
path = \"/dev/null\""
fi
cat > "$work/config.toml" <<TOML
state_dir = "$work/state"
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
format = "json"
level = "warn,tracebridge=info"
$destination
TOML
target/release/tracebridge --config "$work/config.toml" 2> "$work/stderr.log" &
pid=$!
for _ in $(seq 1 100); do grep -q '"ready' "$work/stderr.log" 2>/dev/null && break; sleep 0.05; done
http_addr="$(grep -o '"http_addr":"[^"]*"' "$work/stderr.log" | head -1 | cut -d'"' -f4)"
admin_addr="$(grep -o '"admin_addr":"[^"]*"' "$work/stderr.log" | head -1 | cut -d'"' -f4)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz="$(getconf CLK_TCK)"
rss_idle_kb="$(awk '/VmRSS/{print $2}' "/proc/$pid/status")"
before="$(cpu_ticks)"
target/release/examples/loadgen "http://$http_addr/v1/traces" "$requests" "$spans" "$concurrency" $gzip
# Let the destination finish before reading the counters.
sleep 2
after="$(cpu_ticks)"
sent="$(curl -s "http://$admin_addr/metrics" | awk '/^tracebridge_exporter_sent_spans_total/{print $2}')"
[ "$dest" = opik ] && echo "opik_sink rows (traces spans): $(curl -s "http://$sink_addr/count")"
rss_peak_kb="$(awk '/VmHWM/{print $2}' "/proc/$pid/status")"
total=$((requests * spans))
awk -v t="$((after - before))" -v hz="$hz" -v n="$total" -v sent="$sent" -v idle="$rss_idle_kb" -v peak="$rss_peak_kb" 'BEGIN {
  cpu = t / hz
  printf "daemon: cpu_s=%.2f cpu_us_per_span=%.2f spans_delivered=%d/%d rss_idle_mib=%.1f rss_peak_mib=%.1f\n", cpu, cpu * 1e6 / n, sent, n, idle / 1024, peak / 1024
}'
