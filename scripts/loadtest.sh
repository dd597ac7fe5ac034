#!/usr/bin/env bash
# Load benchmark on loopback: pre-generates a pool of distinct freshly signed Entra-shaped
# responses, starts the service (HTTP + gRPC, replay protection on), and drives it with wrk
# (HTTP/1.1) and examples/grpc_load (gRPC) at several connection counts. A fresh server per run,
# so each run's requests are all first uses. Prints one summary line per run, with peak RSS.
#
#   scripts/loadtest.sh                     # 1 8 32 128 connections, 5 s each, both transports
#   DURATION=10 POOL=240000 scripts/loadtest.sh
#   SOAK=300 scripts/loadtest.sh            # plus a soak run (valid + invalid mix) sampling RSS and fds
#   SOAK=600 SOAK_CONNECTIONS=16 SOAK_DELAY_MS=1 scripts/loadtest.sh   # paced soak (below capacity)
#   REPLAY_STORE=redis CONNECTIONS=32 TRANSPORTS=http scripts/loadtest.sh   # [replay] on a loopback
#                                           # redis-server started here (flushed before each run);
#                                           # adds Redis's CPU per validation to each line
#   REPLAY_STORE="memory redis" ROUNDS=3 CONNECTIONS=32 TRANSPORTS=http scripts/loadtest.sh
#                                           # A/B: the stores alternate run by run over one pool,
#                                           # so that a busy machine slows both alike
#   REPLAY_STORE="redis redis=/tmp/old/saml-validator" ...   # a store on another build too
#   BIN=/path/to/saml-validator scripts/loadtest.sh   # another build of the service
# Each line has the service's own CPU per request (user + system, all its threads, from
# /proc/<pid>/stat before and after the run): on a shared machine, a figure throughput hides.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source scripts/lib/ports.sh
if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk"
  ${SUDO:-} apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
fi

DURATION=${DURATION:-5}
POOL=${POOL:-120000}
CONNECTIONS=${CONNECTIONS:-"1 8 32 128"}
GROUPS_PER_USER=${GROUPS_PER_USER:-10}
SOAK=${SOAK:-0}
HTTP_PORT=${HTTP_PORT:-18080}
GRPC_PORT=${GRPC_PORT:-19090}
TRANSPORTS=${TRANSPORTS:-"http grpc"}
REPLAY_STORE=${REPLAY_STORE:-memory}
ROUNDS=${ROUNDS:-1}
REDIS_PORT=${REDIS_PORT:-16379}
BIN=${BIN:-./target/release/saml-validator}

# SKIP_BUILD=1 runs what target/release holds (a build script that reruns, e.g. in a git
# worktree, would otherwise rebuild the binary before every invocation).
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --locked --quiet --bin saml-validator --example loadpool --example grpc_load
WORK=$(mktemp -d)
REDIS_PID=
PID=
trap 'kill $PID $REDIS_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "==> generating $POOL signed responses"
./target/release/examples/loadpool "$WORK" "$POOL" "$GROUPS_PER_USER" "127.0.0.1:$HTTP_PORT" "127.0.0.1:$GRPC_PORT"
cp "$WORK/config.toml" "$WORK/config-memory.toml"
cp "$WORK/config.toml" "$WORK/config-redis.toml"
if [[ " $REPLAY_STORE" == *" redis"* ]]; then
  # Same cores as the service and the generator, persistence off: the cost of the round trip.
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break; sleep 0.05; done
  printf '\n[replay]\nstore = "redis"\nurl = "redis://127.0.0.1:%s"\n' "$REDIS_PORT" >>"$WORK/config-redis.toml"
fi
echo "==> replay store: $REPLAY_STORE"
# utime + stime of a process (every thread), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_ticks() { if [ -n "$REDIS_PID" ]; then ticks "$REDIS_PID"; else echo 0; fi; }
# CPU (µs) per request between two tick readings; $1 name, $2 $3 ticks, $4 requests.
cpu_per_request() {
  echo "$1_cpu_us_per_request=$(awk -v a="$2" -v b="$3" -v n="$4" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / (n > 0 ? n : 1)}')"
}
redis_cpu() {
  [ "$STORE" = redis ] || return 0
  cpu_per_request redis "$@"
}

# A variant of REPLAY_STORE: `memory`, `redis`, or either followed by `=<binary>`.
STORE= RUN_BIN= CONFIG=
variant() {
  STORE=${1%%=*}
  RUN_BIN=$BIN
  [[ "$1" == *=* ]] && RUN_BIN=${1#*=}
  CONFIG="$WORK/config-$STORE.toml"
}
variant "${REPLAY_STORE%% *}"
start() {
  ports_free "$HTTP_PORT" "$GRPC_PORT"
  "$RUN_BIN" serve --config "$CONFIG" 2>"$WORK/server.log" &
  PID=$!
  wait_ports "$WORK/server.log" "$HTTP_PORT" "$GRPC_PORT"
}
# The shared record outlives the server: empty it so that each run's requests are first uses.
# The buckets' epoch markers are laid down again, dated long ago, as a store that has kept its
# records would hold them: an empty store is a first start (or a loss), and its epoch would
# begin after the pool was signed, so every pooled response would be refused as issued before
# it (replay_state_lost).
flush_store() {
  [ "$STORE" = redis ] || return 0
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  for bucket in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do
    redis-cli -p "$REDIS_PORT" set "saml-validator:{$bucket}:epoch" "loadtest:0" >/dev/null
  done
}
stop() {
  kill -TERM "$PID"
  wait "$PID" || true
}
rss() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }

for round in $(seq 1 "$ROUNDS"); do
for c in $CONNECTIONS; do
for v in $REPLAY_STORE; do
  [[ " $TRANSPORTS " == *" http "* ]] || break 3
  variant "$v"
  flush_store
  start
  before=$(redis_ticks)
  service_before=$(ticks "$PID")
  # One generator thread by default: the generator shares the two cores with the server, and
  # a second wrk thread competing with the two server workers for them added ~1.5 ms to the
  # p99 at 32 connections (6.1 vs 4.4 ms, BENCHMARKS.md). WRK_THREADS=2 for the comparison.
  threads=${WRK_THREADS:-1}
  out=$(wrk -t"$threads" -c"$c" -d"${DURATION}s" --latency -s scripts/wrk-pool.lua \
    "http://127.0.0.1:$HTTP_PORT/v1/validate" -- "$WORK/pool.jsonl" "$threads")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  errors=$(awk '/Socket errors/ {print}' <<<"$out")
  pcts=$(grep -o 'p50_us=.*' <<<"$out")
  service=$(cpu_per_request service "$service_before" "$(ticks "$PID")" "$total")
  echo "http store=$v round=$round load=$(cut -d' ' -f1 /proc/loadavg) connections=$c requests=$total rps=$rps non2xx=${non2xx:-0} $pcts peak_rss_kb=$(rss) $service $(redis_cpu "$before" "$(redis_ticks)" "$total") ${errors}"
  stop
done
done
done

for round in $(seq 1 "$ROUNDS"); do
for c in $CONNECTIONS; do
for v in $REPLAY_STORE; do
  [[ " $TRANSPORTS " == *" grpc "* ]] || break 3
  variant "$v"
  flush_store
  start
  before=$(redis_ticks)
  service_before=$(ticks "$PID")
  out=$(./target/release/examples/grpc_load "http://127.0.0.1:$GRPC_PORT" "$WORK/pool.jsonl" "$c" "$DURATION")
  total=$(grep -o ' requests=[0-9]*' <<<"$out" | cut -d= -f2)
  service=$(cpu_per_request service "$service_before" "$(ticks "$PID")" "$total")
  echo "$out store=$v round=$round load=$(cut -d' ' -f1 /proc/loadavg) peak_rss_kb=$(rss) $service $(redis_cpu "$before" "$(redis_ticks)" "$total")"
  stop
done
done
done

if [ "$SOAK" -gt 0 ]; then
  # Long run with a mix of valid and invalid requests: the pool cycled (after the first pass
  # requests are replays, which cost a full validation since the replay check comes last) with
  # one malformed, one tampered and one unknown-tenant request interleaved every 10 lines.
  SOAK_CONNECTIONS=${SOAK_CONNECTIONS:-4}
  # A pause before each request on each connection (wrk cannot pace by rate; this caps each
  # connection at 1000 / (SOAK_DELAY_MS + latency) requests per second).
  SOAK_DELAY_MS=${SOAK_DELAY_MS:-0}
  tampered=$(head -1 "$WORK/pool.jsonl" | sed 's/"saml_response":"PHNhbWxw/"saml_response":"PHNhbWxX/')
  awk -v t="$tampered" '{print} NR % 10 == 0 {print "{\"tenant\":\"bench\",\"saml_response\":\"%%%not-base64\"}"; print t; print "{\"tenant\":\"nobody\",\"saml_response\":\"eA==\"}"}' \
    "$WORK/pool.jsonl" >"$WORK/mixed.jsonl"
  flush_store
  start
  echo "==> soak: ${SOAK}s at $SOAK_CONNECTIONS connections, ${SOAK_DELAY_MS} ms pause per request (valid + invalid mix), RSS (kB) and open fds every 10 s"
  wrk -t2 -c"$SOAK_CONNECTIONS" -d"${SOAK}s" --latency -s scripts/wrk-soak.lua "http://127.0.0.1:$HTTP_PORT/v1/validate" -- "$WORK/mixed.jsonl" 2 "$SOAK_DELAY_MS" >"$WORK/soak.txt" &
  WRK=$!
  rss_samples=""
  fd_samples=""
  while kill -0 "$WRK" 2>/dev/null; do
    rss_samples="$rss_samples $(awk '/VmRSS/ {print $2}' "/proc/$PID/status")"
    fd_samples="$fd_samples $(ls "/proc/$PID/fd" | wc -l)"
    sleep 10
  done
  echo "soak rss_kb:$rss_samples"
  echo "soak open_fds:$fd_samples"
  grep -E "Requests/sec|requests in|Non-2xx|status_5xx|p50_us|Socket errors" "$WORK/soak.txt" || true
  stop
fi
