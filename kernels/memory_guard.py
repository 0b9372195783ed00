"""Bounds and race checks on interpreted kernel launches: what Triton's interpreter does not check.

The interpreter executes every load, store and atomic of a kernel at the raw address the kernel computed, with
no bounds check, runs the programs of a grid one after another, and applies each access to its lanes in order,
one access after another. So, unchecked, an interpreted kernel could read or write any memory of its process
(scan the heap around its output for a result the reference left there and copy it), and a kernel that races
would compute the right answer here and a wrong one on a GPU, where the programs, and the lanes (threads) of
one program, run concurrently: programs doing a plain read-modify-write of a shared accumulator (no update is
ever lost here), or one made of two atomics (`atomic_or(p, 0)` to read, `atomic_xchg` to write back); two
lanes of one store writing different values to one address (here the last lane always wins); a lane loading
what another lane of its program stored just before, with no barrier between (here every store is complete
before the next load).

`MemoryGuard` is installed (`triton_internals.watch_interpreted_memory`) in the replay sandbox, where it also
checks races, and in the CPU-mode timing sandbox, bounds only (the replay judged the same kernels for races).
Per launch:
- **bounds**: every active (mask-true) lane of every load, store and atomic must access [address, address +
  element size) inside the whole storage of one tensor the launch was given (positional or keyword, in a
  tuple, or a tensor descriptor's base, as the interpreter holds them on the host); otherwise the access is
  refused before it is made;
- **races between programs**: each program's loaded, stored and atomically accessed bytes (active lanes, each
  access expanded to its bytes, so views of one memory in different dtypes meet) are recorded, atomics split
  into commutative read-modify-writes (add, fadd, min, max, umin, umax, and, or, xor; atomic loads and polls
  count with them) and order-dependent writes ("exchanges": `atomic_xchg`, `atomic_cas`, atomic stores). After
  the last program the launch fails if a byte one program stored is loaded or stored by another, a byte one
  program exchanged is accessed in any way (atomic or plain) by another, or a byte one program accessed
  atomically is loaded or stored plainly by another. Commutative atomics against each other (their final value
  does not depend on order), a program reading back its own stores and reads shared by many programs are fine.
  Synchronisation through atomics (a lock, a counter that elects the last program, a compare-and-swap loop)
  is not modelled: plain accesses it orders are reported as a race, and so is any exchange or
  compare-and-swap that another program's access meets;
- **races between the lanes of one program**, checked as each access is made: two active lanes of one store
  (a plain or atomic store, an `atomic_xchg`) writing different values to one byte fail it (the same value, a
  broadcast store, is fine); and a plain load of a byte that an earlier plain store of the same program wrote
  from another lane fails it, unless a `tl.debug_barrier()` came between (a barrier clears what is tracked,
  and so does the start of the next program); so does any access of a byte another lane wrote in a way the two
  do not commute (UNORDERED_AFTER: a load or an exchange after any write, a plain store after an atomic one, a
  commutative atomic after a plain or exchanged write), and a plain store of another value over a byte another
  lane stored plainly (with no load between, on a GPU either store may land last). A lane is the flat index of an element in the access's block;
  Triton may lay blocks of different shapes out differently over threads, so lanes of accesses of different
  shapes always count as different lanes (conservative: a scalar stored, then loaded back as part of a
  block, fails without a barrier). Commutative atomics against each other are fine within a program too.
  An atomic load (3.9) counts as a commutative atomic access, and so as a write: conservative.
A violation raises `MemoryViolation`, which fails the trial (or the timed run) as any kernel error does.
Compiled kernels on a GPU are not checked by this.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Program = tuple[int, int, int]
KINDS = ("load", "store", "atomic", "exchange")
# Recorded (byte, program) pairs of one kind held before duplicates are dropped: a loop that reloads the same
# tile keeps memory bounded.
COMPACT_AFTER = 1 << 22
# Within a program, the last write of each byte is tracked per storage as one int64:
# epoch << EPOCH_SHIFT | flags | shape << LANE_BITS | lane (a block holds at most 2**20 elements in Triton), with
# the flags saying the write was atomic, or a plain store whose byte values were not kept.
LANE_BITS = 20
ATOMIC_WRITE = 1 << 37  # a commutative atomic (add, max, …)
EXCHANGE_WRITE = 1 << 38  # an order-dependent atomic write (exchange, compare-and-swap, atomic store)
VALUE_UNKNOWN = 1 << 39
LANE_CODE = ATOMIC_WRITE - 1
# Per access kind, the earlier writes of other lanes in the epoch it may not meet, as a set of write classes
# (PLAIN, COMMUTATIVE, EXCHANGED): a load or an exchange meets none; a plain store no atomic one (another value
# over a plain store is checked apart); a commutative atomic no plain or exchanged one. Commutative atomics
# meet each other freely: their sum does not depend on the order.
PLAIN, COMMUTATIVE, EXCHANGED = 1, 2, 4
UNORDERED_AFTER = {"load": PLAIN | COMMUTATIVE | EXCHANGED, "exchange": PLAIN | COMMUTATIVE | EXCHANGED,
                   "store": COMMUTATIVE | EXCHANGED, "atomic": PLAIN | EXCHANGED}
EPOCH_SHIFT = 40


class MemoryViolation(RuntimeError):
    pass


class MemoryGuard:
    """The `triton_internals.MemoryWatcher` of a sandbox: `races` adds the race checks to the bounds check."""

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

    def access(self, kind: str, pointers: np.ndarray, mask: np.ndarray | None, size: int, program: Program,
               values: np.ndarray | None = None) -> None:
        if self.current is None:
            raise MemoryViolation(f"{_a(kind)} outside any launch")
        pointers = np.asarray(pointers, dtype=np.uint64)
        active = None if mask is None else np.broadcast_to(np.asarray(mask, dtype=bool), pointers.shape)
        addresses = pointers.ravel() if active is None else pointers[active]
        if addresses.size == 0:
            return
        slots, offsets = self.current.check_bounds(kind, addresses, size, program)
        if not self.races:
            return
        launch = self.current
        launch.enter(program)
        lanes = np.arange(addresses.size) if active is None else np.flatnonzero(active)
        written = None
        if values is not None and kind in ("store", "exchange"):
            written = _lane_values(values, pointers.shape, active)
            if written is not None:
                launch.check_lanes(kind, addresses, lanes, written, size, program)
        launch.check_unordered(kind, slots, offsets, lanes, pointers.shape, size, program)
        if kind != "load":
            launch.note_write(kind, slots, offsets, lanes, pointers.shape, size, written, program)
        launch.record(kind, addresses, size, program)

    def barrier(self, program: Program) -> None:
        if self.current is None:
            raise MemoryViolation("a barrier outside any launch")
        if self.races:
            self.current.enter(program)
            self.current.next_epoch()  # what the program stored before is ordered before what it loads after


class _Launch:
    def __init__(self, kernel: str) -> None:
        self.kernel = kernel
        self.starts = np.zeros(0, dtype=np.uint64)  # the allowed storages, sorted by start
        self.lengths = np.zeros(0, dtype=np.uint64)
        self.programs: list[Program] = []  # in the order they first accessed memory; indices below
        self.index: dict[Program, int] = {}
        self.recorded: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {kind: [] for kind in KINDS}  # (bytes, program index)
        self.pending = dict.fromkeys(KINDS, 0)
        # Within the running program: the epoch (a new one at each program and each barrier), the last
        # store of each byte of each storage (allocated at the storage's first store), the access shapes seen.
        self.program: Program | None = None
        self.epoch = 0
        self.last_store: dict[int, np.ndarray] = {}
        self.stored_bytes: dict[int, np.ndarray] = {}  # the byte values of the plain stores in last_store
        self.shapes: dict[tuple[int, ...], int] = {}

    def allow(self, tensors: list[torch.Tensor]) -> None:
        # Whole storages: a kernel may address any element of the memory a view lies in (its strides and
        # offset are the wrapper's business); different storages never overlap.
        storages = sorted({(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) for t in tensors})
        self.starts = np.array([start for start, length in storages if length], dtype=np.uint64)
        self.lengths = np.array([length for _, length in storages if length], dtype=np.uint64)
        self.last_store = {}
        self.stored_bytes = {}

    def check_bounds(self, kind: str, addresses: np.ndarray, size: int, program: Program) -> tuple[np.ndarray, np.ndarray]:
        """Each address's storage (an index into the allowed ones) and offset in it; raises where one lies outside."""
        inside = np.zeros(addresses.shape, dtype=bool)
        slot = np.zeros(addresses.shape, dtype=np.int64)
        offset = addresses
        if self.starts.size:
            slot = np.maximum(np.searchsorted(self.starts, addresses, side="right").astype(np.int64) - 1, 0)
            start, length = self.starts[slot], self.lengths[slot]
            offset = addresses - start  # wraps below the first storage: those lanes are outside anyway
            inside = (addresses >= start) & (offset < length) & (length - offset >= size)
        if inside.all():
            return slot, offset
        outside = addresses[~inside]
        tensors = ", ".join(f"{int(s):#x}..{int(s + n):#x}" for s, n in zip(self.starts, self.lengths)) or "none"
        raise MemoryViolation(
            f"kernel {self.kernel}, program {program}: {_a(kind)} of {size} bytes at {int(outside[0]):#x} lies outside every "
            f"tensor the launch was given ({outside.size} of {addresses.size} active lanes outside; its tensors: {tensors})"
        )

    def enter(self, program: Program) -> None:
        if program != self.program:
            self.program = program
            self.next_epoch()

    def next_epoch(self) -> None:
        self.epoch = self.epoch % ((1 << (63 - EPOCH_SHIFT)) - 1) + 1  # kept inside the tracked int64's bits

    def check_lanes(self, kind: str, addresses: np.ndarray, lanes: np.ndarray, values: np.ndarray, size: int, program: Program) -> None:
        """Two active lanes of one store writing different values to one byte: which lands is up to the GPU."""
        if addresses.size < 2 or (np.diff(np.sort(addresses)) >= size).all():
            return  # no two lanes share a byte
        rows = np.ascontiguousarray(values).view(np.uint8).reshape(addresses.size, -1)
        if rows.shape[1] == size:  # compare byte by byte, so overlapping elements meet
            touched = _bytes_at(addresses, size)
            written, width = rows.ravel(), size
        else:  # values held in another width than the pointee's: compare whole elements at one address
            touched, written, width = addresses, np.unique(rows, axis=0, return_inverse=True)[1].ravel(), 1
        order = np.argsort(touched, kind="stable")
        touched, written = touched[order], written[order]
        clash = np.flatnonzero((touched[1:] == touched[:-1]) & (written[1:] != written[:-1]))
        if clash.size == 0:
            return
        at = clash[0]
        first, second = sorted((int(lanes[order[at] // width]), int(lanes[order[at + 1] // width])))
        raise MemoryViolation(
            f"kernel {self.kernel}: lanes {first} and {second} of program {program} store different values to "
            f"{int(addresses[order[at] // width]):#x} in one {_operation(kind)}: which lands is unspecified on a GPU, where the lanes are "
            f"different threads; the interpreter applies the lanes in order, so the last one always wins here"
        )

    def _lane_codes(self, lanes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        shape_id = self.shapes.setdefault(tuple(shape), len(self.shapes))
        return (np.int64(shape_id) << np.int64(LANE_BITS)) | lanes.astype(np.int64)

    def note_write(self, kind: str, slots: np.ndarray, offsets: np.ndarray, lanes: np.ndarray, shape: tuple[int, ...],
                   size: int, values: np.ndarray | None, program: Program) -> None:
        """Tracks the write's bytes as the lanes' last writes in this epoch; a plain store of other values over bytes
        that other lanes stored plainly in this epoch fails: on a GPU the lanes are threads and either store may land."""
        rows = None if values is None else np.ascontiguousarray(values).view(np.uint8).reshape(lanes.size, -1)
        kept = kind == "store" and rows is not None and rows.shape[1] == size
        flags = {"atomic": ATOMIC_WRITE, "exchange": EXCHANGE_WRITE}.get(kind, 0 if kept else VALUE_UNKNOWN)
        entries = (np.int64(self.epoch) << np.int64(EPOCH_SHIFT)) | np.int64(flags) | self._lane_codes(lanes, shape)
        for slot in np.unique(slots):
            here = np.flatnonzero(slots == slot)
            table = self.last_store.get(int(slot))
            if table is None:
                table = self.last_store[int(slot)] = np.zeros(int(self.lengths[slot]), dtype=np.int64)
                self.stored_bytes[int(slot)] = np.zeros(int(self.lengths[slot]), dtype=np.uint8)
            stored = self.stored_bytes[int(slot)]
            touched = _bytes_at(offsets[here], size).astype(np.int64)
            new = np.repeat(entries[here], size)
            if kept:
                assert rows is not None
                written = rows[here].ravel()
                before = table[touched]
                clash = np.flatnonzero(((before >> np.int64(EPOCH_SHIFT)) == self.epoch)
                                       & ((before & np.int64(ATOMIC_WRITE | EXCHANGE_WRITE | VALUE_UNKNOWN)) == 0)
                                       & ((before & np.int64(LANE_CODE)) != (new & np.int64(LANE_CODE)))
                                       & (stored[touched] != written))
                if clash.size:
                    at = clash[0]
                    raise MemoryViolation(
                        f"kernel {self.kernel}: lane {int(new[at]) & ((1 << LANE_BITS) - 1)} of program {program} stores to "
                        f"{int(self.starts[slot]) + int(touched[at]):#x} another value than lane {int(before[at]) & ((1 << LANE_BITS) - 1)} "
                        f"of the same program stored there before it, with no tl.debug_barrier() between{self._shapes(new[at], before[at], 'store')}. "
                        f"On a GPU the lanes are different threads and either store may land last; the interpreter "
                        f"applies the stores in order, so the second always wins here"
                    )
                stored[touched] = written
            table[touched] = new

    def check_unordered(self, kind: str, slots: np.ndarray, offsets: np.ndarray, lanes: np.ndarray, shape: tuple[int, ...],
                        size: int, program: Program) -> None:
        """An access of a byte another lane of this program wrote since its last barrier, where the two do not
        commute (UNORDERED_AFTER): unordered on a GPU."""
        if not self.last_store:
            return
        readers = self._lane_codes(lanes, shape)
        for slot in np.unique(slots):
            table = self.last_store.get(int(slot))
            if table is None:
                continue
            here = np.flatnonzero(slots == slot)
            touched = _bytes_at(offsets[here], size).astype(np.int64)
            entries = table[touched]
            reader = np.repeat(readers[here], size)
            writer = entries & np.int64(LANE_CODE)
            classes = np.where(entries & np.int64(EXCHANGE_WRITE), EXCHANGED, np.where(entries & np.int64(ATOMIC_WRITE), COMMUTATIVE, PLAIN))
            conflicting = (classes & UNORDERED_AFTER[kind]) != 0
            unordered = np.flatnonzero(((entries >> np.int64(EPOCH_SHIFT)) == self.epoch) & (writer != reader) & conflicting)
            if unordered.size == 0:
                continue
            at = unordered[0]
            how = "wrote with an atomic" if int(entries[at]) & (ATOMIC_WRITE | EXCHANGE_WRITE) else "stored"
            verb = {"load": "loads", "store": "stores to", "atomic": "accesses atomically", "exchange": "writes atomically"}[kind]
            address = int(self.starts[slot]) + int(touched[at])
            raise MemoryViolation(
                f"kernel {self.kernel}: lane {int(reader[at]) & ((1 << LANE_BITS) - 1)} of program {program} {verb} {address:#x}, "
                f"which lane {int(writer[at]) & ((1 << LANE_BITS) - 1)} of the same program {how} before it with no "
                f"tl.debug_barrier() between{self._shapes(reader[at], writer[at], kind)}. On a GPU the lanes are different "
                f"threads and nothing orders one's access after another's write; the interpreter completes every access "
                f"before the next, so it cannot show that"
            )

    def _shapes(self, later: np.int64, earlier: np.int64, kind: str) -> str:
        """Says so when the two accesses' lanes differ because their shapes do."""
        names = {index: shape for shape, index in self.shapes.items()}
        later_shape = names[(int(later) & LANE_CODE) >> LANE_BITS]
        earlier_shape = names[(int(earlier) & LANE_CODE) >> LANE_BITS]
        return "" if later_shape == earlier_shape else (
            f" (a {kind} of shape {later_shape} after a write of shape {earlier_shape}: lanes of accesses of different "
            f"shapes count as different lanes)")

    def record(self, kind: str, addresses: np.ndarray, size: int, program: Program) -> None:
        owner = self.index.get(program)
        if owner is None:
            owner = self.index[program] = len(self.programs)
            self.programs.append(program)
        touched = _bytes_at(addresses, size)
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
        loads, stores, atomics, exchanges = (self.distinct(kind) for kind in KINDS)
        plain = np.concatenate([loads[0], stores[0]]), np.concatenate([loads[1], stores[1]])
        every = np.concatenate([plain[0], atomics[0], exchanges[0]]), np.concatenate([plain[1], atomics[1], exchanges[1]])
        for targets, probes, conflict in (
            (stores, stores, "both store to {}"),
            (stores, loads, "the first stores to {}, the second loads it"),
            (exchanges, every, "the first writes {} with an atomic exchange, compare-and-swap or atomic store, the second "
                               "accesses it too (atomically or not): what is left there, or what the other reads, depends on "
                               "their order"),
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


def _bytes_at(starts: np.ndarray, size: int) -> np.ndarray:
    """Every byte of `size`-byte accesses at `starts` (addresses or offsets), access by access."""
    return (np.asarray(starts, dtype=np.uint64)[:, None] + np.arange(size, dtype=np.uint64)).ravel()


def _lane_values(values: np.ndarray, shape: tuple[int, ...], active: np.ndarray | None) -> np.ndarray | None:
    """The value each active lane writes, in lane order (None where the values do not match the pointers' shape)."""
    values = np.asarray(values)
    try:
        values = np.broadcast_to(values, shape)
    except ValueError:
        return None
    return values.ravel() if active is None else values[active]


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
    return {"load": "a load", "store": "a store", "atomic": "an atomic access", "exchange": "an atomic write"}[kind]


def _operation(kind: str) -> str:
    return {"store": "store", "exchange": "atomic exchange or atomic store"}[kind]
