"""The memory guard (`kernels/memory_guard.py`) on single launches under the interpreter: what it lets through
and what it refuses. Run in a child process, since switching to the interpreter reloads `triton.language`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .runner_process import REPO_ROOT

KERNELS = '''import triton
import triton.language as tl


@triton.jit
def relu(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    m = o < n
    tl.store(out_ptr + o, tl.maximum(tl.load(x_ptr + o, mask=m), 0.0), mask=m)


@triton.jit
def masked_far_lanes(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    m = o < n
    far = tl.load(x_ptr + o + 1000000000, mask=m & (o < 0), other=0.0)
    tl.store(out_ptr + o, tl.load(x_ptr + o, mask=m) + far, mask=m)


@triton.jit
def shared_reads_and_atomics(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    first = tl.load(x_ptr)
    tl.atomic_add(out_ptr, tl.sum(tl.load(x_ptr + o, mask=o < n, other=0.0), axis=0) + first * 0.0)
    tl.store(out_ptr + 1 + tl.program_id(0), tl.load(out_ptr + 1 + tl.program_id(0)) + 1.0)


@triton.jit
def peek_below(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(out_ptr + o, tl.load(x_ptr + o - 1, mask=o < n), mask=o < n)


@triton.jit
def write_past_the_end(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(out_ptr + o, tl.load(x_ptr + o, mask=o < n), mask=o <= n)


@triton.jit
def plain_accumulate(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(out_ptr, tl.load(out_ptr) + tl.sum(tl.load(x_ptr + o, mask=o < n, other=0.0), axis=0))


@triton.jit
def atomic_then_plain(x_ptr, out_ptr, n, B: tl.constexpr):
    tl.atomic_add(out_ptr, 1.0)
    if tl.program_id(0) == 1:
        tl.store(out_ptr, 0.0)


@triton.jit
def byte_of_a_neighbours_store(x_ptr, out_ptr, n, B: tl.constexpr):
    if tl.program_id(0) == 0:
        tl.store(out_ptr, 1.0)
    else:
        tl.store(out_ptr + 1 + tl.program_id(0), tl.load(out_ptr.to(tl.pointer_type(tl.int8), bitcast=True) + 2).to(tl.float32))
'''

SCRIPT = '''import importlib, json, sys, torch
from kernels.interpreter_mode import switch_to_interpreter
from kernels.memory_guard import MemoryGuard
from kernels.triton_internals import watch_interpreted_memory
switch_to_interpreter()
watch_interpreted_memory(MemoryGuard(races=True))
sys.path.insert(0, sys.argv[1])
module = importlib.import_module("guarded_kernels")
outcomes = {}
for name in sys.argv[2:]:
    try:
        getattr(module, name)[(4,)](torch.randn(100), torch.zeros(100), 100, B=32)
        outcomes[name] = None
    except Exception as error:
        outcomes[name] = f"{type(error).__name__}: {error}"
print(json.dumps(outcomes))
'''

ALLOWED = ["relu", "masked_far_lanes", "shared_reads_and_atomics"]
REFUSED = {
    "peek_below": "kernel peek_below, program (0, 0, 0): a load of 4 bytes at",
    "write_past_the_end": "kernel write_past_the_end, program (3, 0, 0): a store of 4 bytes at",
    "plain_accumulate": "race: both store to",
    "atomic_then_plain": "race: the first accesses 0x",
    "byte_of_a_neighbours_store": "programs (0, 0, 0) and (1, 0, 0) race: the first stores to",
}


def test_the_guard_passes_honest_accesses_and_refuses_out_of_bounds_ones_and_races(tmp_path: Path) -> None:
    (tmp_path / "guarded_kernels.py").write_text(KERNELS)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), *ALLOWED, *REFUSED], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: outcomes[name] for name in ALLOWED} == dict.fromkeys(ALLOWED), outcomes
    for name, expected in REFUSED.items():
        assert outcomes[name] is not None and outcomes[name].startswith("MemoryViolation: ") and expected in outcomes[name], (name, outcomes[name])
    assert "lies outside every tensor the launch was given" in outcomes["peek_below"]
    assert "Programs run concurrently on a GPU" in outcomes["plain_accumulate"]
