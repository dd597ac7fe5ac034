#!/usr/bin/env bash
# Instructions per HTTP validation, by piece, counted by callgrind (issue 32): repeatable
# whatever else the machine is doing, unlike CPU time. The service runs under valgrind with its
# default logging; after 50 warm-up requests the counters are zeroed, N distinct signed
# responses (10 groups, replay on, memory store) are sent one at a time on one keep-alive
# connection, and the counters dumped. User space only: the kernel's share (syscalls,
# wake-ups) and cache misses are not instructions, see scripts/transport-cost.sh for CPU time.
#
#   scripts/transport-callgrind.sh            # N=500
#   N=1000 BIN=/tmp/other/saml-validator scripts/transport-callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
command -v valgrind >/dev/null || ${SUDO:-} apt-get install -y -qq valgrind >/dev/null
N=${N:-500}
PORT=${PORT:-18280}
BIN=${BIN:-./target/release/saml-validator}
cargo build --release --locked --quiet --bin saml-validator --example loadpool
WORK=$(mktemp -d); [ -n "${KEEP:-}" ] && echo "work: $WORK"
VPID=
trap 'kill $VPID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
./target/release/examples/loadpool "$WORK" $((N + 50)) 10 "127.0.0.1:$PORT" "127.0.0.1:$((PORT + 1))" >/dev/null
sed -i 's/^level = "warn"$/level = "info"/' "$WORK/config.toml"
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" "$BIN" serve --config "$WORK/config.toml" 2>"$WORK/server.log" &
VPID=$!
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
send() { # $1 first line, $2 count
  python3 - "$PORT" "$WORK/pool.jsonl" "$1" "$2" <<'PY'
import http.client, sys
port, path, first, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = open(path).read().splitlines()[first:first + count]
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
for line in lines:
    connection.request("POST", "/v1/validate", body=line, headers={"Content-Type": "application/json"})
    reply = connection.getresponse()
    reply.read()
    if reply.status != 200:
        sys.exit(f"HTTP {reply.status}")
PY
}
send "$N" 50
callgrind_control -z "$VPID" >/dev/null
send 0 "$N"
callgrind_control -d "$VPID" >/dev/null
kill -TERM "$VPID"; wait "$VPID" || true; VPID=
dump=$(ls "$WORK"/cg.*.1)
callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$WORK/annotated" 2>/dev/null
python3 - "$N" "$WORK/annotated" <<'PY'
import re, sys
n = int(sys.argv[1])
inclusive = {}
total = None
for line in open(sys.argv[2]):
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", line)
    if not m:
        continue
    count, where = int(m.group(1).replace(",", "")), m.group(2)
    if "PROGRAM TOTALS" in where:
        total = count
    elif not where.startswith("=>"):
        # "file:function [object]"; a function inlined from several files has a line per
        # file, the largest being its whole inclusive cost.
        name = re.sub(r" \[[^\]]*\]$", "", where.split(":", 1)[-1])
        inclusive[name] = max(inclusive.get(name, 0), count)
def find(pattern):
    return max((c for name, c in inclusive.items() if re.search(pattern, name)), default=0)
pieces = [
    ("the core (saml::validate)", r"^saml_validator::saml::validate$"),
    ("reply JSON (respond)", r"^saml_validator::transport::http::respond$"),
    ("request JSON (decode)", r"Body as saml_validator::transport::frontend::Incoming>::decode$"),
    ("request body read", r"Body as saml_validator::transport::frontend::Incoming>::receive::\{\{closure\}\}$"),
    ("log line (tracing event)", r"^tracing_core::event::Event::dispatch$"),
    ("metrics (Metrics::observe)", r"^saml_validator::ops::metrics::Metrics::observe$"),
    ("replay record (memory store)", r"^saml_validator::state::ReplayRecord::first_use::\{\{closure\}\}$"),
]
print(f"instructions per HTTP validation over {n} requests (callgrind, user space):")
print(f"  {total / n / 1000:8.1f} k  total")
named = 0
for label, pattern in pieces:
    count = find(pattern)
    named += count
    print(f"  {count / n / 1000:8.1f} k  {label}")
print(f"  {(total - named) / n / 1000:8.1f} k  the rest: HTTP parsing and dispatch, the runtime, request id, allocation outside the pieces")
core = find(pieces[0][1])
print(f"  total / core = {total / core:.3f}" if core else "  the core was not found in the profile")
PY
