"""Runs one function in a forked child with a time limit, a memory limit, no network and its own directory.

The child ("keeper") enters new user, mount, network and PID namespaces and forks the process that runs the
function as PID 1 of that namespace. There the whole filesystem is read-only except the candidate's own
directory, there is no network interface but a down loopback, and no process outside the namespace can be
seen or signalled; when the keeper dies the kernel kills everything in the namespace. Whatever the function
does (segfault, infinite loop, `os._exit`, stray children, filling memory) costs only that child: the parent
waits on a pidfd with a deadline and kills the keeper's whole session.
"""
from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PR_SET_PDEATHSIG = 1
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
SYS_MOUNT_SETATTR = 442  # x86_64 and aarch64 share the number (Linux >= 5.12)
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
# The keeper reports "killed by signal N" as this exit status plus N, like a shell.
SIGNAL_EXIT_BASE = 128
# The report channel: each message is its length (8 bytes, little-endian) then its bytes; more than this in
# all from one sandbox is a failure, not a report.
FRAME_HEADER = struct.Struct("<Q")
MAX_REPORT_BYTES = 256 * 1024 * 1024
_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


@dataclass(frozen=True)
class Limits:
    time_s: float
    memory_mb: int
    # The CUDA driver reserves far more address space than it ever backs, so a process that uses the GPU is
    # capped on its private writable memory (RLIMIT_DATA) instead of its address space (RLIMIT_AS).
    cap_address_space: bool = True


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "timeout", "crashed" (killed by a signal) or "failed" (non-zero exit)
    detail: str
    log_tail: str


def close_inherited_channels(keep: set[int]) -> None:
    """Close every inherited pipe and socket but `keep`: a child must not read or write its ancestors'
    channels (the runner's pipes to other evaluators, an evaluator's result pipe, the event loop's wake-up
    socket). Files opened by libraries stay open."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd in keep:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:  # the directory's own descriptor, already gone
            continue
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.close(fd)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, so no child outlives the runner."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def isolate(workdir: Path) -> str:
    """Enter fresh namespaces with only `workdir` writable; returns which isolation is in force.

    Where user namespaces are unavailable, fall back to disabling Python's socket constructors (weaker: a C
    extension could still open sockets, and files and processes stay reachable).
    """
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) != 0:
        for name in ("socket", "create_connection", "socketpair", "fromfd"):
            setattr(socket, name, _network_disabled)
        return "python-sockets-disabled"
    return "namespaces" if _read_only_except(workdir) else "namespaces, filesystem writable"


def _read_only_except(workdir: Path) -> bool:
    """Make every mount read-only except a bind mount of `workdir` (mount_setattr, Linux >= 5.12)."""
    path = os.fsencode(workdir)
    steps = [
        lambda: _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
        lambda: _libc.mount(path, path, None, MS_BIND, None),
        lambda: _mount_setattr(b"/", AT_RECURSIVE, _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)),
        lambda: _mount_setattr(path, 0, _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)),
    ]
    return all(step() == 0 for step in steps)


def _mount_setattr(path: bytes, flags: int, attr: _MountAttr) -> int:
    return _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path, flags, ctypes.byref(attr), ctypes.sizeof(attr))


def _network_disabled(*_args: object, **_kwargs: object) -> None:
    raise OSError("network access is disabled for candidate code")


def _limit_memory(extra_mb: int, address_space: bool) -> None:
    """Cap the address space (or the data segment) at what the torch-loaded process uses already plus the
    candidate's allowance."""
    with open("/proc/self/statm") as statm:
        fields = statm.read().split()
    # statm: size (all mappings) first, data (private writable, stack included) sixth; both in pages.
    used = int(fields[0] if address_space else fields[5]) * resource.getpagesize()
    limit = used + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS if address_space else resource.RLIMIT_DATA, (limit, limit))


def _run_keeper(target: Callable[[], None], workdir: Path, limits: Limits) -> int:
    """The keeper: isolate, fork the function's process, return its exit status (signals as 128 + N)."""
    os.setsid()
    die_with_parent()
    isolate(workdir)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            die_with_parent()
            _enter_limits(workdir, limits)
            target()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return SIGNAL_EXIT_BASE + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _enter_limits(workdir: Path, limits: Limits) -> None:
    os.chdir(workdir)
    os.environ["TMPDIR"] = str(workdir)  # the only writable place (ptxas, for one, writes temporary files)
    tempfile.tempdir = str(workdir)
    log = os.open(workdir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    cpu = int(limits.time_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024 * 1024, 64 * 1024 * 1024))
    _limit_memory(limits.memory_mb, limits.cap_address_space)


class ReportWriter:
    """The sandbox's end of its report channel: a pipe the parent created before forking. Nothing else the
    sandbox can write (its directory, its output log) is ever read back as a report."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: bytes) -> None:
        data = memoryview(FRAME_HEADER.pack(len(message)) + message)
        while data:
            data = data[os.write(self.fd, data):]


def run_isolated(target: Callable[[ReportWriter], None], workdir: Path, limits: Limits) -> tuple[Outcome, list[bytes]]:
    """Runs `target(writer)` in the sandbox; returns how it ended and the complete messages it sent."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            close_inherited_channels(keep={0, 1, 2, write_end})
            code = _run_keeper(lambda: target(ReportWriter(write_end)), workdir, limits)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        return _wait(pid, workdir, limits.time_s, read_end)
    finally:
        os.close(read_end)


def _wait(pid: int, workdir: Path, time_s: float, reports: int) -> tuple[Outcome, list[bytes]]:
    """Read the report channel until the keeper exits (or the deadline), then kill the keeper's session."""
    pidfd = os.pidfd_open(pid)
    received = bytearray()
    deadline = time.monotonic() + time_s
    exited = overflow = False
    try:
        open_fds = [pidfd, reports]
        while not exited and not overflow and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(open_fds, [], [], left)
            if reports in ready:
                chunk = os.read(reports, 1 << 20)
                received += chunk
                overflow = len(received) > MAX_REPORT_BYTES
                if not chunk:
                    open_fds.remove(reports)
            exited = pidfd in ready
    finally:
        os.close(pidfd)
    _kill_group(pid)
    _, status = os.waitpid(pid, 0)
    if exited and not overflow:  # what was written before the exit is still in the pipe
        os.set_blocking(reports, False)
        try:
            while chunk := os.read(reports, 1 << 20):
                received += chunk
        except BlockingIOError:
            pass
    messages = _frames(bytes(received))
    log_tail = _tail(workdir / "output.log")
    if overflow:
        return Outcome("failed", f"sent more than {MAX_REPORT_BYTES} bytes of report", log_tail), []
    if not exited:
        return Outcome("timeout", f"exceeded the {time_s:g} s time limit", log_tail), messages
    code = SIGNAL_EXIT_BASE + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    if code > SIGNAL_EXIT_BASE:
        number = code - SIGNAL_EXIT_BASE
        return Outcome("crashed", f"killed by signal {number} ({_signal_name(number)})", log_tail), messages
    return Outcome("ok" if code == 0 else "failed", f"exit status {code}", log_tail), messages


def _frames(data: bytes) -> list[bytes]:
    """The complete messages in `data`; a message cut short by a crash is dropped."""
    messages, offset = [], 0
    while offset + FRAME_HEADER.size <= len(data):
        (length,) = FRAME_HEADER.unpack_from(data, offset)
        end = offset + FRAME_HEADER.size + length
        if end > len(data):
            break
        messages.append(data[offset + FRAME_HEADER.size:end])
        offset = end
    return messages


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


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
