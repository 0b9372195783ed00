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

from .dataset import problems  # noqa: E402
from .evaluate import REWARD_NAMES, Settings, evaluate  # noqa: E402
from .runtime import RUNTIME_DEVICES  # noqa: E402
from .sandbox import Limits, die_with_parent, isolate  # noqa: E402

PROTOCOL_VERSION = 1
# The evaluator's own work (reference runs, comparisons, timing the reference) on top of the time limits of
# its two sandboxed runs (correctness, then timing).
EVALUATOR_GRACE_S = 60.0
SANDBOXED_RUNS = 2


class Runner:
    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.slots = asyncio.Semaphore(workers)
        self.pending: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def serve(self) -> None:
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        temp_root = Path(self.settings.temp_root or tempfile.gettempdir())
        self.send({"type": "ready", "version": PROTOCOL_VERSION, "pid": os.getpid(), "workers": self.workers, "mode": "interpreter",
                   "isolation": _probe_in_child(lambda: isolate(temp_root)) or "unknown", "rewards": list(REWARD_NAMES),
                   "runtime_device": self.settings.runtime_device})
        while line := await reader.readline():
            if line.strip():
                task = asyncio.create_task(self.handle(line))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
        if self.pending:  # stdin closed: finish what was asked, then exit
            await asyncio.wait(self.pending)

    async def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            request_id = request.get("id")
        except (json.JSONDecodeError, AttributeError) as error:
            self.send({"type": "error", "id": None, "error": f"bad request line: {error}"})
            return
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
        except Exception as error:  # a bad request must not stop the loop
            self.send({"type": "error", "id": request_id, "error": f"{type(error).__name__}: {error}"})

    async def evaluate_in_child(self, request: dict[str, Any]) -> dict[str, Any]:
        problem, completion, seed = str(request["problem"]), str(request["completion"]), request.get("seed")
        runtime_device = request.get("runtime_device")
        if runtime_device is not None and runtime_device not in RUNTIME_DEVICES:
            raise ValueError(f"runtime_device must be one of {', '.join(RUNTIME_DEVICES)}, not {runtime_device!r}")
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


def _evaluator_main(write_end: int, problem: str, completion: str, settings: Settings, seed: int | None, runtime_device: str | None) -> None:
    """Child side of a request: grade, write one JSON document to the pipe, exit without running atexit hooks."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # a stray print must never reach the protocol stream
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
    args = parser.parse_args()
    _warm_lazy_imports()
    temp_root = tempfile.mkdtemp(prefix="triton-runner-")
    settings = Settings(trials=args.trials, seed=args.seed, limits=Limits(args.time_limit, args.memory_mb), temp_root=temp_root,
                        runtime_device=_gpu_runtime_device())
    try:
        asyncio.run(Runner(settings, args.workers).serve())
    finally:
        shutil.rmtree(temp_root, ignore_errors=True)


if __name__ == "__main__":
    main()
