"""Runs one function in a forked child with a time limit, a memory limit, no network and its own directory.

Whatever the child does (segfault, infinite loop, `os._exit`, a fork bomb of sleepers, filling memory) costs
only that child: the parent waits on a pidfd with a deadline and kills the child's whole process group.
"""
from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import socket
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PR_SET_PDEATHSIG = 1
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    time_s: float
    memory_mb: int


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "timeout", "crashed" (killed by a signal) or "failed" (non-zero exit)
    detail: str
    log_tail: str


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, so no child outlives the runner."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def isolate_network() -> str:
    """Move into empty user and network namespaces: no interfaces but a down loopback, so nothing to reach.

    Where namespaces are unavailable, fall back to disabling Python's socket constructors (weaker: a C
    extension could still open sockets). Returns which isolation is in force.
    """
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "namespace"
    for name in ("socket", "create_connection", "socketpair", "fromfd"):
        setattr(socket, name, _network_disabled)
    return "python-sockets-disabled"


def _network_disabled(*_args: object, **_kwargs: object) -> None:
    raise OSError("network access is disabled for candidate code")


def _limit_memory(extra_mb: int) -> None:
    """Cap the address space at what the (torch-loaded) process maps already plus the candidate's allowance."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    limit = mapped + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _enter_child(workdir: Path, limits: Limits) -> None:
    os.setsid()
    die_with_parent()
    isolate_network()
    os.chdir(workdir)
    log = os.open(workdir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    cpu = int(limits.time_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024 * 1024, 64 * 1024 * 1024))
    _limit_memory(limits.memory_mb)


def run_isolated(target: Callable[[], None], workdir: Path, limits: Limits) -> Outcome:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _enter_child(workdir, limits)
            target()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return _wait(pid, workdir, limits.time_s)


def _wait(pid: int, workdir: Path, time_s: float) -> Outcome:
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], time_s)
    finally:
        os.close(pidfd)
    timed_out = not ready
    _kill_group(pid)
    _, status = os.waitpid(pid, 0)
    log_tail = _tail(workdir / "output.log")
    if timed_out:
        return Outcome("timeout", f"exceeded the {time_s:g} s time limit", log_tail)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return Outcome("crashed", f"killed by signal {number} ({signal.Signals(number).name})", log_tail)
    code = os.WEXITSTATUS(status)
    return Outcome("ok" if code == 0 else "failed", f"exit status {code}", log_tail)


def _kill_group(pgid: int) -> None:
    """SIGKILL the child's session, including anything it forked; a group that is already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")
