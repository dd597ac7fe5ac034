#!/usr/bin/env bash
# Fuzz smoke run: each cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS (default 60),
# seeded from the conformance fixtures. cargo-fuzz needs nightly-only compiler flags; the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1 (set for these builds only).
# A crash fails the run and leaves the input in fuzz/artifacts/<target>/ (turn it into a test).
#   FUZZ_SECONDS=1800 scripts/fuzz-smoke.sh validate     # a long run of one target
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --quiet cargo-fuzz
fi
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TARGETS=${*:-"decode structure c14n metadata validate decrypt"}
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in $TARGETS; do
  mkdir -p "corpus/$target"
  case "$target" in
    validate|c14n|structure) cp -n ../tests/fixtures/idp-responses/*.xml "corpus/$target/" ;;
    decrypt) cp -n ../tests/fixtures/idp-responses/*encrypted*.xml "corpus/$target/" ;;
    metadata) cp -n ../tests/fixtures/idp-metadata/*.xml "corpus/$target/" ;;
    decode) base64 -w0 ../tests/fixtures/idp-responses/entra-ssoready-signed-assertion.xml > corpus/decode/entra.b64
            printf '2023-11-17T18:39:30.314Z' > corpus/decode/time; printf 'P0Y0M7DT0H0M0S' > corpus/decode/duration ;;
  esac
  echo "==> fuzzing $target for ${SECONDS_PER_TARGET}s"
  log="artifacts/$target.log"
  mkdir -p artifacts
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "FAIL: fuzz target $target found a crash (input in fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log" || tail -2 "$log"
done
