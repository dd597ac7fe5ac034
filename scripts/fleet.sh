#!/usr/bin/env bash
# The fleet benchmark (issue 17, BENCHMARKS.md "Ten thousand tenants"): generates TENANTS tenant
# files (80 % pinned certificates, 20 % metadata_url on a loopback metadata server, a tenth of
# those failing), starts the release binary on them and prints start-up to ready, RSS, metadata
# fetches, throughput spread over every tenant vs one tenant, the /metrics scrape, and reload
# latencies. Fails only when something was wrong (a login refused, a change never applied).
#
#   scripts/fleet.sh                            # 10,000 tenants, 3 s runs at 32 connections
#   TENANTS=300 DURATION=1 POOL=3000 scripts/fleet.sh   # the CI size
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

TENANTS=${TENANTS:-10000}
DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-32}
POOL=${POOL:-$((DURATION * 16000))}

cargo build --release --locked --quiet --bin saml-validator --example fleet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "==> fleet of $TENANTS tenants (pools of $POOL signed logins per run)"
./target/release/examples/fleet "$TENANTS" "$WORK" ./target/release/saml-validator "$DURATION" "$CONNECTIONS" "$POOL"
