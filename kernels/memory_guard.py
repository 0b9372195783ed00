"""Bounds and race checks on interpreted kernel launches: what Triton's interpreter does not check.

The interpreter executes every load, store and atomic of a kernel at the raw address the kernel computed, with
no bounds check, and runs the programs of a grid one after another. So, unchecked, an interpreted kernel could
read or write any memory of its process (scan the heap around its output for a result the reference left
there and copy it), and a kernel whose programs race on the same memory (a plain read-modify-write of a shared
accumulator, no atomic) would compute the right answer here, where no update is ever lost, and a wrong one on
a GPU, where the programs run concurrently.

`MemoryGuard` is installed (`triton_internals.watch_interpreted_memory`) in the replay sandbox, where it also
checks races, and in the CPU-mode timing sandbox, bounds only (the replay judged the same kernels for races).
Per launch:
- **bounds**: every active (mask-true) lane of every load, store and atomic must access [address, address +
  element size) inside the whole storage of one tensor the launch was given (positional or keyword, in a
  tuple, or a tensor descriptor's base, as the interpreter holds them on the host); otherwise the access is
  refused before it is made;
- **races**: each program's loaded, stored and atomically accessed bytes (active lanes, each access expanded
  to its bytes, so views of one memory in different dtypes meet) are recorded, and after the last program the
  launch fails if a byte one program stored is loaded or stored by another, or a byte one program accessed
  atomically is loaded or stored plainly by another. Atomics against atomics, a program reading back its own
  stores and reads shared by many programs are fine. Synchronisation through atomics (a lock, a counter that
  elects the last program) is not modelled: plain accesses it orders are reported as a race.
A violation raises `MemoryViolation`, which fails the trial (or the timed run) as any kernel error does.
Compiled kernels on a GPU are not checked by this.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Program = tuple[int, int, int]
KINDS = ("load", "store", "atomic")
# Recorded (byte, program) pairs of one kind held before duplicates are dropped: a loop that reloads the same
# tile keeps memory bounded.
COMPACT_AFTER = 1 << 22


class MemoryViolation(RuntimeError):
    pass


class MemoryGuard:
    """The `triton_internals.MemoryWatcher` of a sandbox: `races` adds the race check to the bounds check."""

    def __init__(self, races: bool) -> None:
        self.races = races
        self.current: _Launch | None = None

    def launch(self, kernel: str, run: Callable[[], None]) -> None:
        self.current = _Launch(kernel)
        try:
            try:
                run()
            except Exception as error:
                # The interpreter re-raises a program's error as InterpreterError(repr(error)): the guard's own
                # finding is raised as it is, so the trial's reason reads as the sentence it is.
                if isinstance(error.__cause__, MemoryViolation):
                    raise error.__cause__ from None
                raise
            if self.races:
                self.current.check_races()
        finally:
            self.current = None

    def tensors(self, tensors: list[torch.Tensor]) -> None:
        if self.current is None:
            raise MemoryViolation("kernel arguments prepared outside any launch")
        self.current.allow(tensors)

    def access(self, kind: str, pointers: np.ndarray, mask: np.ndarray | None, size: int, program: Program) -> None:
        if self.current is None:
            raise MemoryViolation(f"a {kind} outside any launch")
        pointers = np.asarray(pointers, dtype=np.uint64)
        addresses = pointers.ravel() if mask is None else pointers[np.broadcast_to(np.asarray(mask, dtype=bool), pointers.shape)]
        if addresses.size == 0:
            return
        self.current.check_bounds(kind, addresses, size, program)
        if self.races:
            self.current.record(kind, addresses, size, program)


class _Launch:
    def __init__(self, kernel: str) -> None:
        self.kernel = kernel
        self.starts = np.zeros(0, dtype=np.uint64)  # the allowed storages, sorted by start
        self.lengths = np.zeros(0, dtype=np.uint64)
        self.programs: list[Program] = []  # in the order they first accessed memory; indices below
        self.index: dict[Program, int] = {}
        self.recorded: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {kind: [] for kind in KINDS}  # (bytes, program index)
        self.pending = dict.fromkeys(KINDS, 0)

    def allow(self, tensors: list[torch.Tensor]) -> None:
        # Whole storages: a kernel may address any element of the memory a view lies in (its strides and
        # offset are the wrapper's business); different storages never overlap.
        storages = sorted({(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) for t in tensors})
        self.starts = np.array([start for start, length in storages if length], dtype=np.uint64)
        self.lengths = np.array([length for _, length in storages if length], dtype=np.uint64)

    def check_bounds(self, kind: str, addresses: np.ndarray, size: int, program: Program) -> None:
        inside = np.zeros(addresses.shape, dtype=bool)
        if self.starts.size:
            slot = np.searchsorted(self.starts, addresses, side="right").astype(np.int64) - 1
            start, length = self.starts[np.maximum(slot, 0)], self.lengths[np.maximum(slot, 0)]
            offset = addresses - start  # wraps where slot < 0: those lanes are outside anyway
            inside = (slot >= 0) & (offset < length) & (length - offset >= size)
        if inside.all():
            return
        outside = addresses[~inside]
        tensors = ", ".join(f"{int(s):#x}..{int(s + n):#x}" for s, n in zip(self.starts, self.lengths)) or "none"
        raise MemoryViolation(
            f"kernel {self.kernel}, program {program}: {_a(kind)} of {size} bytes at {int(outside[0]):#x} lies outside every "
            f"tensor the launch was given ({outside.size} of {addresses.size} active lanes outside; its tensors: {tensors})"
        )

    def record(self, kind: str, addresses: np.ndarray, size: int, program: Program) -> None:
        owner = self.index.get(program)
        if owner is None:
            owner = self.index[program] = len(self.programs)
            self.programs.append(program)
        touched = (addresses[:, None] + np.arange(size, dtype=np.uint64)).ravel()
        self.recorded[kind].append((touched, np.full(touched.size, owner, dtype=np.int32)))
        self.pending[kind] += touched.size
        if self.pending[kind] > COMPACT_AFTER:
            self.recorded[kind] = [self.distinct(kind)]
            self.pending[kind] = self.recorded[kind][0][0].size

    def distinct(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """The (byte, program) pairs of `kind` without repeats, sorted by byte, then program."""
        chunks = self.recorded[kind]
        if not chunks:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
        touched, owners = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        order = np.lexsort((owners, touched))
        touched, owners = touched[order], owners[order]
        first = np.ones(touched.size, dtype=bool)
        first[1:] = (touched[1:] != touched[:-1]) | (owners[1:] != owners[:-1])
        return touched[first], owners[first]

    def check_races(self) -> None:
        loads, stores, atomics = (self.distinct(kind) for kind in KINDS)
        plain = np.concatenate([loads[0], stores[0]]), np.concatenate([loads[1], stores[1]])
        for targets, probes, conflict in (
            (stores, stores, "both store to {}"),
            (stores, loads, "the first stores to {}, the second loads it"),
            (atomics, plain, "the first accesses {} atomically, the second with a plain load or store"),
        ):
            found = _other_program(targets, probes)
            if found is not None:
                address, first, second = found
                if probes is targets:  # both stored: name them in grid order
                    first, second = sorted((first, second))
                raise MemoryViolation(
                    f"kernel {self.kernel}: programs {self.programs[first]} and {self.programs[second]} race: "
                    f"{conflict.format(f'{address:#x}')}. Programs run concurrently on a GPU, where the result would "
                    f"depend on their timing; the interpreter runs them one after another, so it cannot show that"
                )


def _other_program(targets: tuple[np.ndarray, np.ndarray], probes: tuple[np.ndarray, np.ndarray]) -> tuple[int, int, int] | None:
    """(byte, a program of `targets`, another program of `probes` at that byte), for the lowest such byte, or
    None. Both are distinct (byte, program) pairs; `targets` sorted by byte, then program."""
    touched, owners = targets
    if touched.size == 0 or probes[0].size == 0:
        return None
    bytes_, first = np.unique(touched, return_index=True)
    last = np.append(first[1:], touched.size) - 1
    lowest, highest = owners[first], owners[last]  # each byte's lowest and highest program
    slot = np.minimum(np.searchsorted(bytes_, probes[0]), bytes_.size - 1)
    hit = bytes_[slot] == probes[0]
    other = hit & ((lowest[slot] != probes[1]) | (highest[slot] != probes[1]))
    if not other.any():
        return None
    where = np.flatnonzero(other)
    at = where[np.argmin(probes[0][where])]
    target = lowest[slot[at]] if lowest[slot[at]] != probes[1][at] else highest[slot[at]]
    return int(probes[0][at]), int(target), int(probes[1][at])


def _a(kind: str) -> str:
    return {"load": "a load", "store": "a store", "atomic": "an atomic access"}[kind]
