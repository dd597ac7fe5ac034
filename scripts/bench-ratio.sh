#!/usr/bin/env bash
# Short criterion run (about a minute) printing each end-to-end validation as a multiple of one
# bare RSA-2048 verify measured in the same run. Fails when the Entra 10-group response costs
# more than MAX_RATIO verifies: a ratio from one run, robust to a slow or noisy machine, not a
# wall-clock threshold. Target (BENCHMARKS.md): <= 4x for 10 groups, <= 8x for 150 groups.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
MAX_RATIO=${MAX_RATIO:-6.0}
cargo bench --locked --bench validate -- --warm-up-time 1 --measurement-time 4 --noplot \
  'unit_rsa2048_verify|end_to_end' >target/bench-ratio.log 2>&1 || { cat target/bench-ratio.log; exit 1; }
python3 - "$MAX_RATIO" <<'PY'
import json, sys
def mean_us(bench):
    with open(f"target/criterion/{bench}/new/estimates.json") as f:
        return json.load(f)["mean"]["point_estimate"] / 1000.0
unit = mean_us("unit_rsa2048_verify")
raw = mean_us("unit_rsa2048_verify_raw")
print(f"unit: one RSA-2048 verify = {unit:.1f} us (EVP_DigestVerify); {raw:.1f} us without the EVP layer")
worst = None
for doc, target in [("entra_10_groups", 4.0), ("entra_150_groups", 8.0), ("entra_64kb", None)]:
    us = mean_us(f"end_to_end/{doc}")
    ratio = us / unit
    note = f" (target <= {target:.0f}x)" if target else ""
    print(f"end_to_end/{doc}: {us:.1f} us = {ratio:.2f}x RSA verify{note}, {us / raw:.2f}x the raw verify")
    if doc == "entra_10_groups":
        worst = ratio
bound = float(sys.argv[1])
if worst > bound:
    print(f"FAIL: entra_10_groups costs {worst:.2f}x an RSA verify, above the CI bound {bound}x")
    sys.exit(1)
print(f"ok: entra_10_groups ratio {worst:.2f} <= CI bound {bound}")
PY
