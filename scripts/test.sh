#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests (including the IdP
# conformance corpus, the attack suite and HTTP tests on loopback), and one pass of each bench.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source scripts/schemas.sh

if cargo fmt --version >/dev/null 2>&1; then
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
else
  echo "==> skipping cargo fmt: rustfmt is not installed"
fi
if cargo clippy --version >/dev/null 2>&1; then
  echo "==> cargo clippy"
  cargo clippy --locked --all-targets -- -D warnings
else
  echo "==> skipping clippy: not installed"
fi
echo "==> cargo test"
# --all-targets also runs each criterion bench once in test mode, so benches cannot rot.
cargo test --locked --all-targets
