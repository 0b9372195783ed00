#!/usr/bin/env bash
# The GPU check, run from the bundle that scripts/device-bundle.sh writes (as .device/run.sh):
#   bash .device/run.sh
# on an x86-64 Linux machine with a GPU driver and nothing else (no network, no Node, no npm). It
#   1. unpacks Node and the application into a work folder (DEVICE_WORK, default a new temp folder),
#   2. finds a Vulkan loader (unpacking the bundled libvulkan1 .deb there if the system has none) and
#      the driver's ICD (VK_DRIVER_FILES if set, else NVIDIA's usual places),
#   3. prints the adapter, runs the kernel self-check (every shader against its float64 reference),
#      the kernel benchmark with every matmul variant, and a GRPO step of a randomly initialised
#      model of SmolLM2-135M's shape (8 prompts × 4 completions × ≤ 128 new tokens, LoRA r 8),
# each stage under its own time limit so the whole fits in 8 minutes. Logs go to $OUT when it is set
# (else to the work folder); the exit code is the number of stages that failed.
# Overrides: DEVICE_GRPO_ARGS (arguments of bench/grpo-step.js), DEVICE_KERNEL_ARGS (of
# bench/kernels.js), DEVICE_LIMITS="check kernels grpo" seconds, DEVICE_VULKAN=bundled.
set -uo pipefail
BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${DEVICE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/webgpu-rft-device.XXXXXX")}
LOGS=${OUT:-$WORK/logs}
mkdir -p "$WORK" "$LOGS"
SUMMARY="$LOGS/summary.txt"
: >"$SUMMARY"
say() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
started=$(date +%s)

say "== bundle: $(head -1 "$BUNDLE/MANIFEST" 2>/dev/null || echo 'no MANIFEST')"
say "== machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
command -v nvidia-smi >/dev/null && say "== GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"

say "== unpacking into $WORK"
xz -dc "$BUNDLE/node.xz" >"$WORK/node" && chmod +x "$WORK/node"
mkdir -p "$WORK/app" && xz -dc "$BUNDLE/app.tar.xz" | tar -C "$WORK/app" -xf -
NODE="$WORK/node"
say "node $("$NODE" --version)"

# Vulkan loader: the system's, else (or with DEVICE_VULKAN=bundled) the bundled .deb unpacked into
# the work folder (never into /).
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
if [ "${DEVICE_VULKAN:-}" = bundled ] || ! "$LDCONFIG" -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  for deb in "$BUNDLE"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$WORK/vulkan"
    else
      mkdir -p "$WORK/vulkan" && ar p "$deb" data.tar.xz | tar -C "$WORK/vulkan" -xJf -
    fi
  done
  export LD_LIBRARY_PATH="$WORK/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "Vulkan loader: bundled ($(ls "$BUNDLE"/debs))"
else
  say "Vulkan loader: the system's ($("$LDCONFIG" -p | grep -m1 'libvulkan\.so\.1 ' | sed 's/.*=> //'))"
fi
# NVIDIA's user-space libraries (libGLX_nvidia, which its ICD names) sometimes sit outside ldconfig's paths.
[ -d /usr/local/nvidia/lib64 ] && export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The driver's ICD: as given, else NVIDIA's usual places; without one the loader searches its defaults.
ICD=${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}
if [ -z "$ICD" ]; then
  for candidate in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$candidate" ]; then ICD=$candidate; break; fi
  done
fi
if [ -n "$ICD" ]; then
  export VK_DRIVER_FILES="$ICD" VK_ICD_FILENAMES="$ICD"
  say "Vulkan ICD: $ICD"
  # Dawn refuses shader-f16 on NVIDIA's Vulkan driver unless this adapter toggle is on.
  case "$ICD" in *nvidia*) export WEBGPU_TOGGLES="${WEBGPU_TOGGLES:+$WEBGPU_TOGGLES,}vulkan_enable_f16_on_nvidia" ;; esac
else
  say "Vulkan ICD: the loader's default search (no NVIDIA ICD found)"
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

read -r LIMIT_CHECK LIMIT_KERNELS LIMIT_GRPO <<<"${DEVICE_LIMITS:-100 150 200}"
failures=0
# stage NAME SECONDS LOG ARGS...: runs node ARGS in the application folder under a time limit.
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  say "== $name (limit ${limit} s) → $log"
  local t0=$SECONDS
  (cd "$WORK/app" && timeout --kill-after=10 "$limit" "$NODE" "$@") >"$LOGS/$log" 2>&1
  local rc=$?
  tail -n 25 "$LOGS/$log"
  say "-- $name: exit $rc after $((SECONDS - t0)) s$([ $rc -eq 124 ] && echo ' (time limit)')"
  [ $rc -eq 0 ] || failures=$((failures + 1))
}

stage "kernel self-check" "$LIMIT_CHECK" self-check.log dist/test/device/kernel-check.js --json "$LOGS/self-check.json"
grep -m1 '^adapter:' "$LOGS/self-check.log" | tee -a "$SUMMARY"
grep -E 'comparisons passed' "$LOGS/self-check.log" | tee -a "$SUMMARY"
# shellcheck disable=SC2086  # word splitting of the argument overrides is intended
stage "kernel benchmark, every matmul variant" "$LIMIT_KERNELS" kernels.log dist/bench/kernels.js ${DEVICE_KERNEL_ARGS:---variants}
# Random weights give every completion of a group the same reward (0): the trainer's default would
# leave them all out of training, so the step is timed training them, as the peer benchmark does.
# shellcheck disable=SC2086
stage "GRPO step, random SmolLM2-135M-shaped model" "$LIMIT_GRPO" grpo-step.log dist/bench/grpo-step.js \
  ${DEVICE_GRPO_ARGS:---model random:models/smollm2-135m --prompts 8 --generations 4 --new 128 --steps 1 --micro 4 --zero-advantage-completions train}
grep -E '^(step|completion tokens|work)' "$LOGS/grpo-step.log" | tee -a "$SUMMARY"

say "== done in $(($(date +%s) - started)) s, $failures stage(s) failed; logs in $LOGS"
exit "$failures"
