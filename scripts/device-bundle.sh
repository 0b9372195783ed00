#!/usr/bin/env bash
# Packs into .device/ (git-ignored, at most 60 MiB) everything a bare x86-64 Linux machine with an
# NVIDIA driver, no network and no npm needs to run the project's WebGPU path:
#   node.xz          this machine's Node binary, xz-compressed
#   app.tar.xz       package.json, dist/, shaders/, data/, models/ (tiny, and SmolLM2-135M's config and
#                    tokenizer without weights, for --model random:models/smollm2-135m), and the
#                    production node_modules with only the linux-x64 build of `webgpu`
#   debs/            the Vulkan loader (apt-get download libvulkan1), unpacked there if it is missing
#   run.sh           scripts/device-run.sh: unpack, find the driver, self-check, benchmarks
# Then, from the repository root on the GPU machine: bash .device/run.sh
# Needs: a built tree (npm ci ran), the small model's GGUF (scripts/setup.sh), apt-get, xz.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=60
OUT=.device
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

log() { printf '== %s\n' "$*"; }

log "TypeScript build"
npx tsc -p tsconfig.json

mkdir -p "$OUT/debs"

NODE_BIN=$(command -v node)
NODE_BIN=$(readlink -f "$NODE_BIN")
# xz -9 of a ~100 MB binary takes a minute: redo it only when the binary is newer than the archive.
if [ ! -f "$OUT/node.xz" ] || [ "$NODE_BIN" -nt "$OUT/node.xz" ]; then
  log "Node $(node --version) from $NODE_BIN (xz -9)"
  xz -9 -T0 -c "$NODE_BIN" >"$OUT/node.xz.partial"
  mv "$OUT/node.xz.partial" "$OUT/node.xz"
fi

log "Application: dist, shaders, data, models, production dependencies"
APP="$STAGE/app"
mkdir -p "$APP/models"
cp package.json "$APP/"
cp -r dist shaders data "$APP/"
find "$APP/dist" -name '*.map' -delete
cp -r models/tiny models/registry.json "$APP/models/"
node dist/src/cli/save-model-shape.js --model small --out "$APP/models/smollm2-135m" >/dev/null
# The production dependency closure, read from each package's own package.json (npm is not asked:
# it also lists optional and dev packages of the lock file).
node --input-type=module -e '
  import { readFileSync } from "node:fs";
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep);
  };
  for (const dep of Object.keys(JSON.parse(readFileSync("package.json", "utf8")).dependencies)) visit(dep);
  console.log([...seen].join("\n"));
' >"$STAGE/packages"
while read -r pkg; do
  mkdir -p "$APP/node_modules/$(dirname "$pkg")"
  if [ "$pkg" = webgpu ]; then
    # Only the Linux x86-64 Dawn build (the package ships every platform's).
    mkdir -p "$APP/node_modules/webgpu/dist"
    cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$APP/node_modules/webgpu/"
    cp -r node_modules/webgpu/dist/linux-x64 "$APP/node_modules/webgpu/dist/"
  else
    cp -rL "node_modules/$pkg" "$APP/node_modules/$pkg"
  fi
done <"$STAGE/packages"
tar -C "$APP" -cf - . | xz -9 -T0 >"$OUT/app.tar.xz"

log "Vulkan loader .deb"
rm -f "$OUT"/debs/*.deb
(cd "$OUT/debs" && apt-get -q -o APT::Sandbox::User=root download libvulkan1 >/dev/null)

cp scripts/device-run.sh "$OUT/run.sh"
{
  echo "built $(date -u +%FT%TZ) from commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench test shaders || echo ' (with uncommitted changes)')"
  echo "node $(node --version), webgpu $(node -p 'require("./node_modules/webgpu/package.json").version'), $(ls "$OUT"/debs)"
  echo "packages: $(tr '\n' ' ' <"$STAGE/packages")"
} >"$OUT/MANIFEST"

SIZE=$(du -sb "$OUT" | cut -f1)
ls -la "$OUT" "$OUT/debs"
log "$OUT is $((SIZE / 1024 / 1024)) MiB ($SIZE bytes; limit $LIMIT_MIB MiB)"
if [ "$SIZE" -gt $((LIMIT_MIB * 1024 * 1024)) ]; then
  echo "error: $OUT is larger than $LIMIT_MIB MiB" >&2
  exit 1
fi
