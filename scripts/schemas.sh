#!/usr/bin/env bash
# The OASIS SAML 2.0 XSDs (with the xmldsig, xenc and xml.xsd they import by relative path) for
# tests/all/authn_requests.rs, cached in target/saml-schemas. They come from the python3-saml
# wheel (onelogin/saml2/schemas/), fetched with pip but never installed: its dependencies need
# native builds, and only the schema files are wanted. Sourced by scripts/test.sh; exports
# SAML_SCHEMAS_DIR, which the tests read (they fail, never skip, without it).
set -euo pipefail

SAML_SCHEMAS_DIR=${SAML_SCHEMAS_DIR:-"$PWD/target/saml-schemas"}
schemas=(saml-schema-protocol-2.0.xsd saml-schema-assertion-2.0.xsd saml-schema-metadata-2.0.xsd
  xmldsig-core-schema.xsd xenc-schema.xsd xml.xsd)

have_all() {
  local file
  for file in "${schemas[@]}"; do
    [ -s "$SAML_SCHEMAS_DIR/$file" ] || return 1
  done
}

if ! have_all; then
  echo "==> fetching the SAML 2.0 XSDs (python3-saml wheel) into $SAML_SCHEMAS_DIR"
  if command -v pip3 >/dev/null 2>&1; then
    pip=(pip3)
  elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    pip=(python3 -m pip)
  else
    echo "error: need pip (python3-pip) to fetch the SAML schemas" >&2
    exit 1
  fi
  wheel_dir=$(mktemp -d)
  "${pip[@]}" download --quiet --no-deps --only-binary=:all: python3-saml -d "$wheel_dir"
  mkdir -p "$SAML_SCHEMAS_DIR"
  # A wheel is a zip; python3 reads it where unzip may be missing.
  python3 - "$wheel_dir" "$SAML_SCHEMAS_DIR" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("python3_saml-*.whl"))
out = pathlib.Path(sys.argv[2])
prefix = "onelogin/saml2/schemas/"
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and name.endswith(".xsd"):
            (out / name[len(prefix):]).write_bytes(archive.read(name))
PY
  rm -rf "$wheel_dir"
  have_all || { echo "error: the python3-saml wheel lacks some of: ${schemas[*]}" >&2; exit 1; }
fi
export SAML_SCHEMAS_DIR
