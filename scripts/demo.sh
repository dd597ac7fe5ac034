#!/usr/bin/env bash
# Builds and starts the service on its embedded demo configuration: one tenant trusting a freshly
# generated IdP key. Prints a curl command carrying a freshly signed response.
# Extra arguments go to `saml-validator demo` (e.g. --http-addr 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --locked --quiet
exec ./target/release/saml-validator demo "$@"
