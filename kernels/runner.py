"""The Triton runner: a long-lived process speaking JSON lines on stdin/stdout.

Start it from the repository root: `.venv/bin/python -m kernels.runner --workers 2`. It imports torch and
Triton once, then forks one evaluator per request (at most --workers at a time); each evaluator forks the
sandbox that runs the candidate. The runner itself never runs torch ops or candidate code, so forking stays
safe and nothing a candidate does can take the runner down. Protocol: see kernels/README.md.
"""
from __future__ import annotations

import os

# Before torch and triton are imported: Triton loads in compile mode (each sandbox switches itself to the
# interpreter after compiling, see interpreter_mode.py), one thread per evaluator keeps N workers from
# oversubscribing the cores, and fusion is pinned so compiled code does not change under us. A runner started
# with TRITON_INTERPRET=1 is asked to stay off the GPU: it does not time on one by default.
INTERPRETER_ONLY = os.environ.pop("TRITON_INTERPRET", "0") not in ("", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

from .dataset import ALL_PROBLEMS, problems  # noqa: E402
from .evaluate import REWARD_NAMES, Settings, evaluate  # noqa: E402
from .runtime import RUNTIME_DEVICES  # noqa: E402
from .sandbox import Limits, close_inherited_channels, die_with_parent, isolate  # noqa: E402

PROTOCOL_VERSION = 1
# The evaluator's own work (reference runs, comparisons, timing the reference) on top of the time limits of
# its three sandboxed runs (tracing, replay, then timing).
EVALUATOR_GRACE_S = 60.0
SANDBOXED_RUNS = 3
# Seeds are mixed into torch.Generator.manual_seed(seed * 1_000_003 + trial), which takes 64-bit values.
MAX_SEED = 2**32 - 1


class RequestError(ValueError):
    """A request field that cannot be served: answered with an error naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Runner:
    def __init__(self, settings: Settings, workers: int, max_line_bytes: int) -> None:
        self.settings = settings
        self.workers = workers
        self.max_line_bytes = max_line_bytes
        self.slots = asyncio.Semaphore(workers)
        self.pending: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def serve(self) -> None:
        reader = asyncio.StreamReader(limit=self.max_line_bytes)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        temp_root = Path(self.settings.temp_root or tempfile.gettempdir())
        self.send({"type": "ready", "version": PROTOCOL_VERSION, "pid": os.getpid(), "workers": self.workers, "mode": "interpreter",
                   "isolation": _probe_in_child(lambda: isolate(temp_root)) or "unknown", "rewards": list(REWARD_NAMES),
                   "runtime_device": self.settings.runtime_device})
        while (line := await _read_line(reader)) != b"":
            if line is None:
                self.send({"type": "error", "id": None, "field": "line", "error": f"request line longer than {self.max_line_bytes} bytes"})
            elif line.strip():
                task = asyncio.create_task(self.handle(line))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
        if self.pending:  # stdin closed: finish what was asked, then exit
            await asyncio.wait(self.pending)

    async def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line.decode("utf-8"))
            if not isinstance(request, dict):
                raise ValueError(f"a request is a JSON object, not {type(request).__name__}")
        except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
            self.send({"type": "error", "id": None, "field": "line", "error": f"bad request line: {error}"})
            return
        request_id = request.get("id")
        kind = request.get("type")
        try:
            if kind == "evaluate":
                async with self.slots:
                    result = await self.evaluate_in_child(request)
                self.send({"type": "result", "id": request_id, **result})
            elif kind == "problems":
                split = request.get("split")
                listed = [{"name": p.name, "split": p.split, "category": p.category, "prompt": p.prompt()} for p in problems(split)]
                self.send({"type": "problems", "id": request_id, "problems": listed})
            elif kind == "ping":
                self.send({"type": "pong", "id": request_id})
            else:
                self.send({"type": "error", "id": request_id, "error": f"unknown request type {kind!r}"})
        except RequestError as error:
            self.send({"type": "error", "id": request_id, "field": error.field, "error": f"{error.field}: {error}"})
        except Exception as error:  # a bad request must not stop the loop
            self.send({"type": "error", "id": request_id, "error": f"{type(error).__name__}: {error}"})

    async def evaluate_in_child(self, request: dict[str, Any]) -> dict[str, Any]:
        problem, completion, seed, runtime_device = _evaluate_fields(request)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _evaluator_main(write_end, problem, completion, self.settings, seed, runtime_device)
        os.close(write_end)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb"))
        try:
            payload = await asyncio.wait_for(reader.read(), SANDBOXED_RUNS * self.settings.limits.time_s + EVALUATOR_GRACE_S)
            failure = None
        except asyncio.TimeoutError:
            payload, failure = b"", "evaluation timed out"
        finally:
            transport.close()
            _kill(pid)
            _, status = os.waitpid(pid, 0)  # already exited or just killed: returns at once, no thread needed
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            why = failure or f"evaluator died (wait status {status})"
            return _zero_result(problem, why)


def _evaluate_fields(request: dict[str, Any]) -> tuple[str, str, int | None, str | None]:
    """The fields of an evaluate request, checked here so a bad one gets an error naming it (not a dead evaluator)."""
    problem, completion, seed = request.get("problem"), request.get("completion"), request.get("seed")
    runtime_device = request.get("runtime_device")
    if not isinstance(problem, str) or problem not in ALL_PROBLEMS:
        raise RequestError("problem", f"unknown problem {problem!r}")
    if not isinstance(completion, str):
        raise RequestError("completion", f"must be a string, not {type(completion).__name__}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED):
        raise RequestError("seed", f"must be an integer in [0, {MAX_SEED}], not {seed!r}")
    if runtime_device is not None and runtime_device not in RUNTIME_DEVICES:
        raise RequestError("runtime_device", f"must be one of {', '.join(RUNTIME_DEVICES)}, not {runtime_device!r}")
    return problem, completion, seed, runtime_device


async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next line (b"" at end of input), or None for a line over the reader's limit, which is skipped up to
    and including its newline so the next request is read whole."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as end:  # a last line without a newline, or b"" at end of input
        return end.partial
    except asyncio.LimitOverrunError as overrun:  # the line stays buffered: skip it
        consumed = overrun.consumed
    while True:
        await reader.readexactly(consumed)
        try:
            await reader.readuntil(b"\n")
            return None
        except asyncio.LimitOverrunError as overrun:
            consumed = overrun.consumed
        except asyncio.IncompleteReadError:  # the over-long line was the last
            return None


def _evaluator_main(write_end: int, problem: str, completion: str, settings: Settings, seed: int | None, runtime_device: str | None) -> None:
    """Child side of a request: grade, write one JSON document to the pipe, exit without running atexit hooks."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # a stray print must never reach the protocol stream
        close_inherited_channels(keep={0, 1, 2, write_end})  # the other evaluators' pipes, the event loop's
        result = evaluate(problem, completion, settings, seed, runtime_device)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(json.dumps(result).encode())
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _zero_result(problem: str, reason: str) -> dict[str, Any]:
    return {"problem": problem, "rewards": {name: {"score": 0.0, "reason": reason} for name in REWARD_NAMES},
            "hacks": [], "sandbox": reason, "seconds": 0.0}


def _kill(pid: int) -> None:
    """SIGKILL the evaluator and its process group (its sandbox has its own session and PDEATHSIG)."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _probe_in_child(probe: Callable[[], str]) -> str:
    """Run a probe in a throwaway child, for what must not happen in the runner itself (entering namespaces;
    initialising CUDA, after which forked evaluators could not use it); "" if the child fails."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, probe().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read().decode()


def _gpu_runtime_device() -> str | None:
    """"cuda" when runtime is to be timed on a GPU by default: one is usable and the runner may use it."""
    import torch

    if INTERPRETER_ONLY:
        return None
    return "cuda" if _probe_in_child(lambda: "cuda" if torch.cuda.is_available() else "") else None


def _warm_lazy_imports() -> None:
    """Import once, here, what every sandbox would otherwise import after forking (1.4 s of torch's compiler
    stack behind use_deterministic_algorithms); the flag itself is left off for the trusted evaluators."""
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.use_deterministic_algorithms(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--trials", type=int, default=4, help="seeded random inputs per candidate (>= 4)")
    parser.add_argument("--seed", type=int, default=0, help="default seed when a request gives none")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per candidate")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address space a candidate may add")
    parser.add_argument("--max-line-bytes", type=int, default=64 * 1024 * 1024, help="longest request line served")
    parser.add_argument("--unsafe-skip-allow-list", action="store_true",
                        help="run candidates outside the allow-list too (only to test the sandbox and the runtime checks alone)")
    args = parser.parse_args()
    _warm_lazy_imports()
    temp_root = tempfile.mkdtemp(prefix="triton-runner-")
    settings = Settings(trials=args.trials, seed=args.seed, limits=Limits(args.time_limit, args.memory_mb), temp_root=temp_root,
                        runtime_device=_gpu_runtime_device(), allow_list=not args.unsafe_skip_allow_list)
    try:
        asyncio.run(Runner(settings, args.workers, args.max_line_bytes).serve())
    finally:
        shutil.rmtree(temp_root, ignore_errors=True)


if __name__ == "__main__":
    main()
