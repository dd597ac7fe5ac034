#!/usr/bin/env python3
"""Groups a flat `perf report --no-children --sort dso,sym --stdio -g none` by piece of the
request path (issue 32): kernel, allocator, libcrypto, libxml2, the core, JSON, base64, HTTP,
logging, metrics, the replay record, the runtime. Reads the report on stdin."""
import re
import sys

PIECES = [
    ("kernel (syscalls, wake-ups, network)", lambda dso, sym: dso.startswith("[kernel")),
    ("allocator (mimalloc, secure)", lambda dso, sym: re.search(r"\b_?mi_|mimalloc|malloc|free\b|realloc", sym) is not None),
    ("libcrypto (RSA verify, digests)", lambda dso, sym: "libcrypto" in dso),
    ("libxml2 (parse, tree)", lambda dso, sym: "libxml2" in dso),
    ("logging (tracing, JSON line)", lambda dso, sym: "tracing" in sym),
    ("JSON (serde_json)", lambda dso, sym: "serde_json" in sym or "serde::" in sym),
    ("base64", lambda dso, sym: "base64" in sym),
    ("metrics (prometheus)", lambda dso, sym: "prometheus" in sym),
    ("replay record (moka)", lambda dso, sym: "moka" in sym or "crossbeam" in sym or "quanta" in sym),
    ("HTTP (actix, httparse)", lambda dso, sym: re.search(r"actix|httparse|http::|h1::", sym) is not None),
    ("runtime (tokio)", lambda dso, sym: "tokio" in sym or "mio::" in sym),
    ("the core (saml_validator::saml)", lambda dso, sym: "saml_validator::saml" in sym),
    ("the service and transport", lambda dso, sym: "saml_validator" in sym),
    ("libc (memcpy, strings)", lambda dso, sym: dso.startswith("libc")),
]

totals = {name: 0.0 for name, _ in PIECES}
other = 0.0
top_other = []
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)$", line)
    if not m:
        continue
    share, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    for name, test in PIECES:
        if test(dso, sym):
            totals[name] += share
            break
    else:
        other += share
        top_other.append((share, dso, sym))
for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"  {share:5.1f} %  {name}")
print(f"  {other:5.1f} %  other")
for share, dso, sym in sorted(top_other, reverse=True)[:8]:
    print(f"           {share:4.1f} % {dso} {sym[:90]}")
