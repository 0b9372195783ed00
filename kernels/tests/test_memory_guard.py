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


@triton.jit
def commutative_atomics(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    v = tl.load(x_ptr + o, mask=o < n, other=0.0)
    tl.atomic_add(out_ptr, tl.sum(v, axis=0))
    tl.atomic_max(out_ptr + 1, tl.max(v, axis=0))
    tl.atomic_min(out_ptr + 2, tl.min(v, axis=0))
    bits = (out_ptr + 3).to(tl.pointer_type(tl.int32), bitcast=True)
    tl.atomic_or(bits, 1 << tl.program_id(0))
    tl.atomic_xor(bits, 16)
    tl.atomic_and(bits, 255)


@triton.jit
def own_exchange(x_ptr, out_ptr, n, B: tl.constexpr):
    bits = (out_ptr + tl.program_id(0)).to(tl.pointer_type(tl.int32), bitcast=True)
    tl.atomic_xchg(bits, tl.atomic_or(bits, 0) + 1)
    tl.atomic_cas(bits, 1, 2)


@triton.jit
def broadcast_store(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(out_ptr + tl.program_id(0) + o * 0, tl.load(x_ptr + tl.program_id(0)) + o * 0.0)


@triton.jit
def read_back_own_lane(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    m = o < n
    tl.store(out_ptr + o, tl.load(x_ptr + o, mask=m), mask=m)
    tl.store(out_ptr + o, tl.load(out_ptr + o, mask=m) * 2.0, mask=m)


@triton.jit
def other_lanes_after_a_barrier(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.store(out_ptr + r, tl.load(x_ptr + o, mask=o < n, other=0.0), mask=r < n)
    tl.debug_barrier()
    tl.store(x_ptr + o, tl.load(out_ptr + o, mask=o < n), mask=o < n)


@triton.jit
def read_modify_exchange(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    bits = out_ptr.to(tl.pointer_type(tl.int32), bitcast=True)
    acc = tl.atomic_or(bits, 0).to(tl.float32, bitcast=True)
    tl.atomic_xchg(bits, (acc + tl.sum(tl.load(x_ptr + o, mask=o < n, other=0.0), axis=0)).to(tl.int32, bitcast=True))


@triton.jit
def compare_and_swap_shared(x_ptr, out_ptr, n, B: tl.constexpr):
    bits = out_ptr.to(tl.pointer_type(tl.int32), bitcast=True)
    tl.atomic_cas(bits, 0, tl.program_id(0) + 1)


@triton.jit
def exchange_then_add(x_ptr, out_ptr, n, B: tl.constexpr):
    bits = out_ptr.to(tl.pointer_type(tl.int32), bitcast=True)
    if tl.program_id(0) == 0:
        tl.atomic_xchg(bits, 5)
    else:
        tl.atomic_add(bits, 1)


@triton.jit
def atomic_store_then_atomic_load(x_ptr, out_ptr, n, B: tl.constexpr):
    if tl.program_id(0) == 0:
        tl.atomic_store(out_ptr, 1.0)
    else:
        tl.store(out_ptr + tl.program_id(0), tl.atomic_load(out_ptr))


@triton.jit
def two_lanes_one_address(x_ptr, out_ptr, n, B: tl.constexpr):
    lanes = tl.arange(0, 2 * B)
    o = tl.program_id(0) * B + lanes % B
    m = o < n
    tl.store(out_ptr + o, tl.where(lanes < B, 0.0, tl.load(x_ptr + o, mask=m)), mask=m)


@triton.jit
def other_lanes_without_a_barrier(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.store(out_ptr + r, tl.load(x_ptr + o, mask=o < n, other=0.0), mask=r < n)
    tl.store(x_ptr + o, tl.load(out_ptr + o, mask=o < n), mask=o < n)


@triton.jit
def other_lanes_store_over(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.store(out_ptr + o, -1.0 + 0.0 * tl.arange(0, B), mask=o < n)
    tl.store(out_ptr + r, tl.load(x_ptr + r, mask=r < n), mask=r < n)


@triton.jit
def other_lanes_store_the_same_over(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.store(out_ptr + o, 0.0 * tl.arange(0, B), mask=o < n)
    tl.store(out_ptr + r, 0.0 * tl.arange(0, B), mask=r < n)


@triton.jit
def other_lanes_store_over_after_a_barrier(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.store(out_ptr + o, -1.0 + 0.0 * tl.arange(0, B), mask=o < n)
    tl.debug_barrier()
    tl.store(out_ptr + r, tl.load(x_ptr + r, mask=r < n), mask=r < n)


@triton.jit
def other_lanes_load_an_exchange(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    bits = out_ptr.to(tl.pointer_type(tl.int32), bitcast=True)
    tl.atomic_xchg(bits + r, tl.load(x_ptr + o, mask=o < n, other=0.0).to(tl.int32, bitcast=True), mask=r < n)
    tl.store(x_ptr + o, tl.load(out_ptr + o, mask=o < n), mask=o < n)


@triton.jit
def other_lanes_add_freely(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.atomic_add(out_ptr + o, tl.load(x_ptr + o, mask=o < n), mask=o < n)
    tl.atomic_add(out_ptr + r, tl.load(x_ptr + o, mask=o < n, other=0.0), mask=r < n)


@triton.jit
def atomic_read_of_other_lanes_exchange(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    bits = out_ptr.to(tl.pointer_type(tl.int32), bitcast=True)
    tl.atomic_xchg(bits + o, tl.load(x_ptr + o, mask=o < n, other=0.0).to(tl.int32, bitcast=True), mask=o < n)
    tl.store(x_ptr + r, tl.atomic_add(bits + r, 0, mask=r < n).to(tl.float32, bitcast=True), mask=r < n)


@triton.jit
def store_over_other_lanes_add(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    r = tl.program_id(0) * B + B - 1 - tl.arange(0, B)
    tl.atomic_add(out_ptr + o, tl.load(x_ptr + o, mask=o < n), mask=o < n)
    tl.store(out_ptr + r, tl.load(x_ptr + r, mask=r < n), mask=r < n)


@triton.jit
def scalar_then_block(x_ptr, out_ptr, n, B: tl.constexpr):
    o = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(out_ptr + tl.program_id(0) * B, 1.0)
    tl.store(x_ptr + o, tl.load(out_ptr + o, mask=o < n), mask=o < n)
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

ALLOWED = ["relu", "masked_far_lanes", "shared_reads_and_atomics", "commutative_atomics", "own_exchange", "broadcast_store",
           "read_back_own_lane", "other_lanes_after_a_barrier", "other_lanes_store_the_same_over",
           "other_lanes_store_over_after_a_barrier", "other_lanes_add_freely"]
REFUSED = {
    "peek_below": "kernel peek_below, program (0, 0, 0): a load of 4 bytes at",
    "write_past_the_end": "kernel write_past_the_end, program (3, 0, 0): a store of 4 bytes at",
    "plain_accumulate": "race: both store to",
    "atomic_then_plain": "race: the first accesses 0x",
    "byte_of_a_neighbours_store": "programs (0, 0, 0) and (1, 0, 0) race: the first stores to",
    "read_modify_exchange": "race: the first writes 0x",
    "compare_and_swap_shared": "kernel compare_and_swap_shared: programs (3, 0, 0) and (0, 0, 0) race: the first writes 0x",
    "exchange_then_add": "with an atomic exchange, compare-and-swap or atomic store, the second accesses it too",
    "atomic_store_then_atomic_load": "kernel atomic_store_then_atomic_load: programs (0, 0, 0) and (1, 0, 0) race: the first writes",
    "two_lanes_one_address": "kernel two_lanes_one_address: lanes 0 and 32 of program (0, 0, 0) store different values to 0x",
    "other_lanes_without_a_barrier": "kernel other_lanes_without_a_barrier: lane 0 of program (0, 0, 0) loads 0x",
    "scalar_then_block": "lanes of accesses of different shapes count as different lanes",
    "other_lanes_store_over": "kernel other_lanes_store_over: lane 0 of program (0, 0, 0) stores to 0x",
    "other_lanes_load_an_exchange": "kernel other_lanes_load_an_exchange: lane 0 of program (0, 0, 0) loads 0x",
    "atomic_read_of_other_lanes_exchange": "lane 0 of program (0, 0, 0) accesses atomically 0x",
    "store_over_other_lanes_add": "lane 0 of program (0, 0, 0) stores to 0x",
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
    assert "which lands is unspecified on a GPU" in outcomes["two_lanes_one_address"]
    assert "which lane 31 of the same program stored before it with no tl.debug_barrier() between" in outcomes["other_lanes_without_a_barrier"]
    assert "another value than lane 31 of the same program stored there before it" in outcomes["other_lanes_store_over"]
    assert "which lane 31 of the same program wrote with an atomic before it" in outcomes["other_lanes_load_an_exchange"]
