#!/usr/bin/env bash
# Checks, without a Docker engine, that the Dockerfile's runtime stage can run the release binary:
# every shared library the binary loads (ldd) must come from a Debian package that the runtime
# stage installs (named in its `apt-get install`, or pulled in by those as a dependency) or that
# debian:bookworm-slim already has (Priority: required / Essential, and their dependencies).
# Libraries the binary links directly (readelf NEEDED) must come from a package named explicitly
# or from the base image: relying on a transitive dependency would break silently when it changes.
# The package list is parsed from the Dockerfile itself, so this check cannot drift from it.
# Also checks the image conventions the Helm chart relies on (uid 10001, entrypoint, no HEALTHCHECK).
# Run on Debian 12 (the builder and runtime stages are bookworm), as root or with sudo.
set -euo pipefail
dockerfile=${DOCKERFILE:-Dockerfile} # overridable to test this check against a broken copy
cd "$(dirname "$0")/.."

# shellcheck source=scripts/deps.sh
source scripts/deps.sh # pkg-config libssl-dev libxml2-dev, cargo on PATH

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "warning: this machine is ${PRETTY_NAME:-unknown}, not Debian 12; the package mapping may differ from the image" >&2
fi
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ! apt-cache show libssl3 >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get update -qq # apt-cache needs package lists to resolve dependencies
fi
if ! command -v readelf >/dev/null 2>&1; then # lists the libraries the binary links directly
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends binutils
fi

echo "==> cargo build --release --locked"
cargo build --release --locked
binary=target/release/saml-validator

failures=()
fail() {
  failures+=("$1")
  echo "  FAIL: $1"
}

# --- The runtime stage: from its FROM line to the end of the file, continuation lines joined.
runtime_stage=$(awk '/^FROM[[:space:]]/ {stage = ""} {stage = stage $0 "\n"} END {printf "%s", stage}' "$dockerfile" |
  sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
echo "==> runtime stage: $(printf '%s\n' "$runtime_stage" | head -1)"
grep -q 'debian:bookworm-slim' <<<"${runtime_stage%%$'\n'*}" ||
  fail "runtime stage is not FROM debian:bookworm-slim"

# Package names: the words after `apt-get install` up to the next && ; | or end of command,
# skipping options.
mapfile -t named < <(printf '%s\n' "$runtime_stage" | grep -oE 'apt-get[[:space:]]+install[^&;|]*' |
  sed -E 's/apt-get[[:space:]]+install//' | tr -s '[:space:]' '\n' | grep -vE '^(-.*|)$' | sort -u)
if [ "${#named[@]}" -eq 0 ]; then
  fail "no apt-get install found in the runtime stage"
fi
echo "==> runtime stage installs: ${named[*]}"
for package in "${named[@]}"; do
  apt-cache show "$package" >/dev/null 2>&1 || fail "runtime package $package does not exist in this distribution"
done

# Everything apt would install for a list of packages: the packages plus their Depends and
# Pre-Depends closure (virtual packages are resolved to the providers apt-cache lists).
closure() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" 2>/dev/null |
    sed -E 's/^[[:space:]]*(\|?(Pre)?Depends:[[:space:]]*)?//; s/[<>]//g; s/:any$//' |
    grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u
}
mapfile -t installed_by_stage < <(closure "${named[@]}")

# debian:bookworm-slim is a minbase debootstrap: the Essential and Priority: required packages.
mapfile -t base_roots < <(dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' |
  awk '$2 == "yes" || $3 == "required" {print $1}' | sort -u)
mapfile -t base < <(closure "${base_roots[@]}")
echo "==> base image: ${#base_roots[@]} required/essential packages, ${#base[@]} with dependencies"

in_list() { # needle, haystack... (a loop: `printf | grep -q` can fail by SIGPIPE under pipefail)
  local needle=$1 item
  shift
  for item in "$@"; do
    [ "$item" = "$needle" ] && return 0
  done
  return 1
}

# Owning package of a library path; dpkg records /usr/lib or /lib depending on the package
# (usrmerge), so try the path, its real path, and the /usr-toggled form.
package_of() {
  local path=$1 candidate owner
  for candidate in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
    if owner=$(dpkg -S "$candidate" 2>/dev/null); then
      owner=${owner%%:*} # "libssl3:amd64: /usr/lib/..." (several owners: "a, b: path")
      echo "${owner%%,*}"
      return 0
    fi
  done
  return 1
}

echo "==> shared libraries (ldd $binary)"
mapfile -t needed < <(readelf -d "$binary" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')
checked=0
ldd_output=$(ldd "$binary")
while read -r soname path; do
  [ -n "$path" ] || continue
  checked=$((checked + 1))
  if ! package=$(package_of "$path"); then
    fail "$soname ($path) belongs to no Debian package"
    continue
  fi
  direct=no
  in_list "$soname" "${needed[@]}" && direct=yes
  if in_list "$package" "${named[@]}"; then
    why="named in the runtime stage"
  elif in_list "$package" "${base_roots[@]}"; then
    why="in the base image (required)"
  elif in_list "$package" "${base[@]}"; then
    why="in the base image (dependency of a required package)"
  elif [ "$direct" = no ] && in_list "$package" "${installed_by_stage[@]}"; then
    why="dependency of a runtime-stage package"
  elif [ "$direct" = yes ] && in_list "$package" "${installed_by_stage[@]}"; then
    fail "$soname is linked directly but its package $package is only a transitive dependency: name it in the runtime apt-get install"
    continue
  else
    fail "$soname ($path) needs package $package, which the runtime stage does not install"
    continue
  fi
  printf '  ok: %-22s %-6s %-14s %s\n' "$soname" "$([ "$direct" = yes ] && echo direct || echo via)" "$package" "$why"
done < <(awk '/=>/ {print $1, $3; next} /^[[:space:]]*\// {print $1, $1}' <<<"$ldd_output")
[ "$checked" -gt 0 ] || fail "ldd listed no libraries"
if grep -q 'not found' <<<"$ldd_output"; then
  fail "ldd reports missing libraries: $(grep 'not found' <<<"$ldd_output" | tr -s ' \t' ' ')"
fi

echo "==> image conventions"
grep -qE '^USER[[:space:]]+10001' <<<"$runtime_stage" || fail "runtime stage must run as USER 10001"
grep -qF 'ENTRYPOINT ["saml-validator"]' <<<"$runtime_stage" || fail 'ENTRYPOINT ["saml-validator"] missing'
grep -qF 'CMD ["serve", "--config", "/etc/saml-validator/config.toml"]' <<<"$runtime_stage" ||
  fail 'CMD ["serve", "--config", "/etc/saml-validator/config.toml"] missing'
if grep -qE '^HEALTHCHECK' "$dockerfile"; then fail "Dockerfile must not define a HEALTHCHECK (Kubernetes probes do that)"; fi
grep -qE '^FROM rust:1-bookworm' "$dockerfile" || fail "builder stage is not FROM rust:1-bookworm"
grep -qE 'cargo build --release --locked' "$dockerfile" || fail "builder does not run cargo build --release --locked"
grep -qxF 'target/' .dockerignore || fail ".dockerignore does not exclude target/"

if [ "${#failures[@]}" -gt 0 ]; then
  echo "check-image: ${#failures[@]} problem(s):" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "check-image: ok ($checked libraries, runtime packages: ${named[*]})"
