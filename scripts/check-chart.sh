#!/usr/bin/env bash
# Checks the Helm chart without Helm (not packaged for Debian 12) and without a cluster:
#  1. builds tools/chart-render (Go text/template + sprig + Helm's built-ins, against Debian's
#     Go packages, offline) and renders helm/saml-validator with its default values and with
#     each ci/*.yaml that is not ci/bad-*.yaml; values are validated against values.schema.json;
#  2. every rendered manifest parses as YAML and is a Kubernetes object;
#  3. the Deployment agrees with the config.toml it mounts: listener ports = containerPorts =
#     Service ports = probe ports, probes are /healthz (liveness) and /readyz (readiness), gRPC
#     start-up probe when gRPC is on, the config is mounted where --config points (no subPath),
#     certificate_files exist in the projected volume; security settings are as required;
#     TLS as the values ask: [server.tls] (after every [server] key) exactly when tls.secretName
#     is set, its files projected at tls/*, every probe HTTPS and the start-up probe HTTPS /readyz
#     instead of gRPC (the kubelet's gRPC probe has no TLS), an https ServiceMonitor with the
#     values' tlsConfig, https URLs in NOTES.txt; and none of it without tls.secretName;
#  4. each rendered config.toml passes `saml-validator check-config` (metadata_url tenants are
#     pointed at a loopback copy of a real Entra metadata document, served for the check only;
#     TLS Secrets, which the chart does not render, are laid out from a throwaway openssl CA,
#     certificate and key, so check-config loads [server.tls] as the pod would);
#  5. the schema rejects every ci/bad-*.yaml.
# Exits non-zero on any failure. Idempotent; run as root (or with sudo) on Debian 12 with Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
chart=helm/saml-validator

# shellcheck source=scripts/deps.sh
source scripts/deps.sh # pkg-config libssl-dev libxml2-dev for the binary; cargo on PATH

# Debian packages: the Go toolchain and the libraries chart-render imports (GOPATH layout under
# /usr/share/gocode), and PyYAML for the system python3 that runs the assertions below.
packages=(golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
  golang-github-xeipuuv-gojsonschema-dev python3 python3-yaml pyflakes3 openssl)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
python=/usr/bin/python3 # Debian's, which sees python3-yaml (not a pyenv or venv python)
# The Python halves of this check (scripts/chart/) are linted like the rest of the code.
echo "==> pyflakes3 scripts/chart"
pyflakes3 scripts/chart/*.py

work=target/chart-check
rm -rf "$work"
mkdir -p "$work"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "==> building tools/chart-render (GOPATH mode against /usr/share/gocode, offline)"
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOCACHE="$root/target/go-build-cache" \
  go build -o "$work/chart-render" tools/chart-render/main.go

echo "==> cargo build --release --locked (for check-config)"
cargo build --release --locked
binary=$root/target/release/saml-validator

failures=0
fail() {
  echo "  FAIL: $*"
  failures=$((failures + 1))
}

# A loopback stand-in for login.microsoftonline.com: a real Entra tenant's FederationMetadata.
metadata_fixture=tests/fixtures/idp-metadata/entra-ssoready-tenant-federationmetadata.xml
mkdir -p "$work/metadata-server"
cp "$metadata_fixture" "$work/metadata-server/federationmetadata.xml"
# Port 0: the kernel picks a free port; the server writes it down. `timeout` bounds its life.
timeout 600 "$python" scripts/chart/metadata_server.py "$work/metadata-server" "$work/metadata-port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/metadata-port" ] && break; sleep 0.1; done
[ -s "$work/metadata-port" ] || { echo "check-chart: the loopback metadata server did not start" >&2; exit 1; }
metadata_port=$(cat "$work/metadata-port")
echo "==> loopback metadata server on 127.0.0.1:$metadata_port"

# A throwaway CA and a server certificate it issued, named like the keys of the kubernetes.io/tls
# Secret cert-manager writes (tls.crt, tls.key, ca.crt): a render with tls.secretName gets them
# laid out where its projected volume puts that Secret's items.
tls_fixture=$work/tls-fixture
mkdir -p "$tls_fixture"
echo "==> throwaway TLS CA, certificate and key in $tls_fixture"
if ! {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=check-chart throwaway CA" -keyout "$work/tls-ca.key" -out "$tls_fixture/ca.crt" &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=saml-validator.saml.svc" -keyout "$tls_fixture/tls.key" -out "$work/tls.csr" &&
    openssl x509 -req -in "$work/tls.csr" -CA "$tls_fixture/ca.crt" -CAkey "$work/tls-ca.key" \
      -set_serial 1 -days 2 -out "$tls_fixture/tls.crt"
} >"$work/openssl.log" 2>&1; then
  cat "$work/openssl.log" >&2
  echo "check-chart: openssl could not make the throwaway TLS files" >&2
  exit 1
fi
# The replay store's password Secret (replay.existingSecret, key "password"), laid out the same way.
openssl rand -hex 16 >"$tls_fixture/password"
# The admin page's token Secret (admin.existingSecret, key "token").
openssl rand -hex 32 >"$tls_fixture/token"

# Renders one values set and checks it; $1 = label, $2 = values file or "" for the defaults.
check_render() {
  local label=$1 values=$2 out=$work/$1
  echo "==> render: $label${values:+ (-f $values)}"
  if ! "$work/chart-render" ${values:+-f "$values"} -release saml-validator -namespace saml "$chart" "$out/manifests" >"$out.log" 2>&1; then
    sed 's/^/    /' "$out.log"
    fail "$label: rendering failed"
    return
  fi
  if ! "$python" scripts/chart/check_render.py "$out/manifests" "$out/config" "$metadata_port" "$chart" "$values" "$tls_fixture"; then
    fail "$label: rendered manifests are inconsistent"
    return
  fi
  echo "    check-config $out/config/config.toml"
  if "$binary" check-config "$out/config/config.toml" >"$out.check-config.log" 2>&1; then
    sed 's/^/      | /' "$out.check-config.log"
    echo "    ok   saml-validator check-config accepts the rendered config.toml"
  else
    sed 's/^/      | /' "$out.check-config.log"
    fail "$label: saml-validator check-config refused the rendered config.toml"
  fi
}

check_render default ""
for values in "$chart"/ci/*.yaml; do
  case "$(basename "$values")" in bad-*) continue ;; esac
  check_render "$(basename "$values" .yaml)" "$values"
done

echo "==> the schema must reject ci/bad-*.yaml"
for values in "$chart"/ci/bad-*.yaml; do
  if "$work/chart-render" -f "$values" "$chart" "$work/bad" >"$work/bad.log" 2>&1; then
    fail "$values was accepted"
  elif grep -q "don't meet the specifications of the schema" "$work/bad.log"; then
    echo "    ok   $values rejected:"
    grep '^- ' "$work/bad.log" | sed 's/^/           /'
  else
    sed 's/^/    /' "$work/bad.log"
    fail "$values failed, but not by the schema"
  fi
done

echo "==> no tenants and no tenantsDir.volume must not render"
printf 'tenants: []\n' >"$work/no-tenants.yaml"
if "$work/chart-render" -f "$work/no-tenants.yaml" "$chart" "$work/bad" >"$work/bad.log" 2>&1; then
  fail "tenants: [] without tenantsDir.volume was rendered"
elif grep -q "tenantsDir.volume unset" "$work/bad.log"; then
  echo "    ok   refused: $(grep -o 'tenants is empty[^"]*' "$work/bad.log" | head -1)"
else
  sed 's/^/    /' "$work/bad.log"
  fail "tenants: [] without tenantsDir.volume failed, but not with the chart's message"
fi

if [ "$failures" -gt 0 ]; then
  echo "check-chart: $failures failure(s)" >&2
  exit 1
fi
echo "check-chart: ok"
