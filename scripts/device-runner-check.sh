#!/usr/bin/env bash
# The Triton runner on this machine's NVIDIA GPU, end to end: every data-set solution (correctness 1 and a
# runtime score timed on the GPU), the hack catalogue (every entry 0 and caught), one kernel launched 1, 4
# and 16 times (the runtime scores must fall in that order), and the timing attacks with the allow-list skipped
# (none may raise the speedup). Needs only a python3 with torch, Triton (3.6
# through 3.9) and numpy: no venv, no network. Writes $OUT/device-runner-check.json when OUT is set; exits 1
# when a check fails. Without a GPU it still runs (runtime 'off', the ordering and the attacks timed under the interpreter).
#   scripts/device-runner-check.sh [--workers N] [--time-limit S]     (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; fi
# Bounded: a hung runner must not eat a GPU machine's whole loan; the report so far stays under $OUT.
exec timeout --kill-after=10 "${CHECK_TIMEOUT_S:-420}" "$PYTHON" -m kernels.tests.device_check "$@"
