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
# What the lockfile may hold: crates.io only, permissive licenses, no wildcard versions
# (deny.toml). The crates of every platform are fetched first so that the check runs offline.
if ! cargo deny --version >/dev/null 2>&1; then
  echo "==> installing cargo-deny"
  cargo install --locked --quiet cargo-deny@0.20.2
fi
echo "==> cargo deny check bans licenses sources"
cargo fetch --locked --quiet
cargo deny --offline check bans licenses sources
echo "==> cargo test"
# --all-targets also runs each criterion bench once in test mode, so benches cannot rot.
cargo test --locked --all-targets
