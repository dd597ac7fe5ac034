#!/usr/bin/env bash
# What the transport costs beside the core (issue 32): the service's own CPU per validation
# over HTTP (wrk, one and two generator threads) and gRPC (examples/grpc_load), 32 connections,
# distinct freshly signed Entra-shaped responses (10 groups), replay protection on (memory
# store) and the DEFAULT logging (info: one JSON line per validation, to a file), beside the
# core alone in process (examples/profile, same build, same response shape). CPU = user +
# system over all the service's threads, from /proc/<pid>/stat before and after each run, so
# the load generator's own CPU (it shares the cores) is not counted. The `bare` transport is
# examples/bare_http: the same core behind the thinnest HTTP/1.1 server (socket read, fixed reply
# of the service's length, no JSON reply, log, metrics or replay record), the floor that the
# kernel and this machine charge any HTTP transport; `over_bare` is the service's CPU over it.
#
#   scripts/transport-cost.sh                          # prints one line per transport
#   MAX_HTTP_RATIO=3.5 scripts/transport-cost.sh       # exits 1 when HTTP CPU / core CPU exceeds it
#   MAX_OVER_BARE=2.2 scripts/transport-cost.sh        # exits 1 when HTTP CPU / bare CPU exceeds it
#   PROFILE=1 scripts/transport-cost.sh                # plus a perf profile of the HTTP run, by piece
#   PIN=1 scripts/transport-cost.sh                    # service (and the core run) on CPU 0, the
#                                                      # generator on CPU 1: no cache sharing with it
#   BIN=/tmp/b/saml-validator CORE_BIN=/tmp/b/profile POOL_DIR=/tmp/pool scripts/transport-cost.sh   # A/B
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source scripts/lib/ports.sh
for tool in wrk perf; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    [ "$tool" = perf ] && [ "${PROFILE:-0}" = 0 ] && continue
    package=$tool; [ "$tool" = perf ] && package=linux-perf
    echo "==> installing $package"
    ${SUDO:-} apt-get install -y -qq "$package" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$package"; }
  fi
done

DURATION=${DURATION:-5}
POOL=${POOL:-60000}
CONNECTIONS=${CONNECTIONS:-32}
HTTP_PORT=${HTTP_PORT:-18180}
GRPC_PORT=${GRPC_PORT:-19190}
TRANSPORTS=${TRANSPORTS:-"bare http grpc"}
MAX_HTTP_RATIO=${MAX_HTTP_RATIO:-}
MAX_OVER_BARE=${MAX_OVER_BARE:-}
PROFILE=${PROFILE:-0}
SERVICE_CPU=(); GENERATOR_CPU=()
if [ "${PIN:-0}" = 1 ]; then SERVICE_CPU=(taskset -c 0); GENERATOR_CPU=(taskset -c 1); fi
BIN=${BIN:-./target/release/saml-validator}
CORE_BIN=${CORE_BIN:-./target/release/examples/profile}

cargo build --release --locked --quiet --bin saml-validator --example loadpool --example grpc_load --example profile --example bare_http
WORK=$(mktemp -d)
PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
# POOL_DIR: keep the signed pool between runs (A/B of two builds on the same requests).
if [ -n "${POOL_DIR:-}" ] && [ -f "$POOL_DIR/pool.jsonl" ]; then
  cp "$POOL_DIR/pool.jsonl" "$POOL_DIR/config.toml" "$WORK/"
else
  ./target/release/examples/loadpool "$WORK" "$POOL" 10 "127.0.0.1:$HTTP_PORT" "127.0.0.1:$GRPC_PORT" >/dev/null
  [ -n "${POOL_DIR:-}" ] && mkdir -p "$POOL_DIR" && cp "$WORK/pool.jsonl" "$WORK/config.toml" "$POOL_DIR/"
fi
# The pool's config turns logging down to warn for the throughput runs; here the default is
# measured, as deployments run it.
sed -i 's/^level = "warn"$/level = "info"/' "$WORK/config.toml"
grep -q '^level = "info"$' "$WORK/config.toml" || { echo "could not set the default log level"; exit 1; }

core=$("${SERVICE_CPU[@]}" "$CORE_BIN" 20000 10)
core_us=$(awk '{for (i = 1; i <= NF; i++) if ($i == "per") {v = $(i - 1); sub(/µs$/, "", v); print v}}' <<<"$core")
echo "core in process: $core"

POOL_LINES=$(wc -l <"$WORK/pool.jsonl")
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
start() { # $1: the transport (bare: examples/bare_http on the HTTP port)
  ports_free "$HTTP_PORT" "$GRPC_PORT"
  if [ "$1" = bare ]; then
    "${SERVICE_CPU[@]}" ./target/release/examples/bare_http "$WORK" "127.0.0.1:$HTTP_PORT" 2>"$WORK/server.log" &
    PID=$!
    wait_ports "$WORK/server.log" "$HTTP_PORT"
  else
    "${SERVICE_CPU[@]}" "$BIN" serve --config "$WORK/config.toml" 2>"$WORK/server.log" &
    PID=$!
    wait_ports "$WORK/server.log" "$HTTP_PORT" "$GRPC_PORT"
  fi
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }
# Service CPU per request (µs) between two tick readings; $1 $2 ticks, $3 requests.
per_request() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / (n > 0 ? n : 1)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

worst_http=0
worst_over_bare=0
declare -A bare_cpu=()
for transport in $TRANSPORTS; do
  runs=("1"); [ "$transport" != grpc ] && runs=(1 2)
  for threads in "${runs[@]}"; do
    start "$transport"
    lines_before=$(wc -l <"$WORK/server.log")
    before=$(ticks)
    if [ "$transport" != grpc ]; then
      if [ "$PROFILE" = 1 ] && [ "$transport" = http ] && [ "$threads" = 1 ]; then
        perf record -F 999 -g -o "$WORK/perf.data" -p "$PID" -- sleep "$DURATION" >/dev/null 2>&1 &
        PERF=$!
      fi
      out=$("${GENERATOR_CPU[@]}" wrk -t"$threads" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/wrk-pool.lua \
        "http://127.0.0.1:$HTTP_PORT/v1/validate" -- "$WORK/pool.jsonl" "$threads")
      after=$(ticks)
      requests=$(awk '/requests in/ {print $1}' <<<"$out")
      non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
      detail="rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out") non2xx=${non2xx:-0} $(grep -o 'p50_us=.*' <<<"$out")"
      [ "$PROFILE" = 1 ] && [ "$transport" = http ] && [ "$threads" = 1 ] && wait "$PERF"
    else
      out=$("${GENERATOR_CPU[@]}" ./target/release/examples/grpc_load "http://127.0.0.1:$GRPC_PORT" "$WORK/pool.jsonl" "$CONNECTIONS" "$DURATION")
      after=$(ticks)
      requests=$(grep -o 'requests=[0-9]*' <<<"$out" | cut -d= -f2)
      detail=$(cut -d' ' -f3- <<<"$out")
    fi
    # A run that answered nothing, or answered errors, measures nothing: its CPU per request
    # would make any ratio pass. The one refusal expected is a run that outpaced the pool (each
    # run starts a fresh service, so only its own requests count): what it sent after the pool
    # ran out are replays, refused as `replayed`. They cost less than a valid login (no claims
    # to answer: 110.7 against 147.3 µs measured), so more than a tenth of them fails the run
    # too: the pool is too small for the machine's speed (raise POOL or lower DURATION).
    errors=0
    if [ "$transport" = grpc ]; then # one pool for all connections, every call awaited
      non2xx=$(grep -o 'rejected=[0-9]*' <<<"$out" | cut -d= -f2)
      errors=$(grep -o 'errors=[0-9]*' <<<"$out" | cut -d= -f2)
      wrapped=$(( ${requests:-0} > POOL_LINES ? ${requests:-0} - POOL_LINES : 0 ))
    else # each wrk thread has its own share of the pool; the script counts what it sent past it
      wrapped=$(grep -o 'replays_sent=[0-9]*' <<<"$out" | cut -d= -f2)
    fi
    [ "$transport" = bare ] && wrapped=0 # it records nothing: every answer is 200
    # Each refusal must be a replay, by the service's own log (wrk counts any non-2xx alike).
    replayed=$(tail -n +"$((lines_before + 1))" "$WORK/server.log" | grep -c '"code":"replayed"' || true)
    if [ "${requests:-0}" -lt 1000 ] || [ "${non2xx:-0}" -gt "${wrapped:-0}" ] || [ "${errors:-0}" != 0 ] \
      || [ "${non2xx:-0}" -gt "$replayed" ] || [ "$(( ${wrapped:-0} * 10 ))" -gt "${requests:-0}" ]; then
      echo "FAIL: $transport run with $threads generator thread(s) answered ${requests:-0} requests, ${non2xx:-0} refused (${replayed} of them as replayed; ${wrapped:-?} replays sent past a pool of $POOL_LINES), ${errors:-0} errors"
      tail -5 "$WORK/server.log"; exit 1
    fi
    cpu=$(per_request "$before" "$after" "$requests")
    logged=$(( $(wc -l <"$WORK/server.log") - lines_before ))
    over_bare=
    [ "$transport" = bare ] && bare_cpu[$threads]=$cpu
    if [ "$transport" = http ] && [ -n "${bare_cpu[$threads]:-}" ]; then
      over_bare=" over_bare=$(ratio "$cpu" "${bare_cpu[$threads]}")"
      if awk -v r="$(ratio "$cpu" "${bare_cpu[$threads]}")" -v w="$worst_over_bare" 'BEGIN {exit !(r > w)}'; then
        worst_over_bare=$(ratio "$cpu" "${bare_cpu[$threads]}")
      fi
    fi
    echo "$transport generator_threads=$threads connections=$CONNECTIONS requests=$requests service_cpu_us_per_request=$cpu core_us=$core_us ratio=$(ratio "$cpu" "$core_us")$over_bare log_lines=$logged replays_past_pool=$wrapped $detail"
    if [ "$transport" = http ] && awk -v r="$(ratio "$cpu" "$core_us")" -v w="$worst_http" 'BEGIN {exit !(r > w)}'; then
      worst_http=$(ratio "$cpu" "$core_us")
    fi
    stop
  done
done

if [ "$PROFILE" = 1 ] && [ -f "$WORK/perf.data" ]; then
  echo "==> perf profile of the HTTP run (generator_threads=1), self time by piece"
  perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | python3 scripts/perf-pieces.py
fi

if [ -n "$MAX_HTTP_RATIO" ]; then
  if awk -v r="$worst_http" -v m="$MAX_HTTP_RATIO" 'BEGIN {exit !(r > m)}'; then
    echo "FAIL: HTTP costs ${worst_http}x the core's CPU per validation, above the CI bound ${MAX_HTTP_RATIO}x"
    exit 1
  fi
  echo "ok: HTTP ratio ${worst_http} <= CI bound ${MAX_HTTP_RATIO}"
fi

if [ -n "$MAX_OVER_BARE" ]; then
  if [ "$worst_over_bare" = 0 ]; then
    echo "FAIL: MAX_OVER_BARE needs the bare transport in TRANSPORTS"; exit 1
  fi
  if awk -v r="$worst_over_bare" -v m="$MAX_OVER_BARE" 'BEGIN {exit !(r > m)}'; then
    echo "FAIL: HTTP costs ${worst_over_bare}x the bare server's CPU per validation, above the CI bound ${MAX_OVER_BARE}x"
    exit 1
  fi
  echo "ok: HTTP over bare ${worst_over_bare} <= CI bound ${MAX_OVER_BARE}"
fi
