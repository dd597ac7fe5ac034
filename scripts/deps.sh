#!/usr/bin/env bash
# Installs the system packages the build needs, when they are missing (Debian/Ubuntu).
# Sourced by the other scripts; safe to run repeatedly.
set -euo pipefail

packages=(pkg-config libssl-dev libxml2-dev)
# The tests check SAML documents with independent tools: xmllint (XSD validation) and xmlsec1
# (XML signatures), tests/all/authn_requests.rs.
packages+=(xmlsec1 libxml2-utils)
# tests/all/replay_store.rs starts real Redis servers (and a Redis Cluster with redis-cli).
packages+=(redis-server redis-tools redis-sentinel)
# tests/all/admin.rs drives the admin page in a real headless browser through WebDriver.
packages+=(chromium chromium-driver)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing missing system packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    apt_get=(apt-get)
  elif command -v sudo >/dev/null 2>&1; then
    apt_get=(sudo apt-get)
  else
    echo "error: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
  fi
fi
