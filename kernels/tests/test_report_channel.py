"""The sandbox's report channel: a pipe opened before the fork, read whole messages only, files ignored."""
from __future__ import annotations

import os
from pathlib import Path

from kernels.sandbox import FRAME_HEADER, Limits, ReportWriter, run_isolated

LIMITS = Limits(time_s=20.0, memory_mb=256)


def test_complete_messages_arrive_and_a_cut_one_is_dropped(tmp_path: Path) -> None:
    def target(writer: ReportWriter) -> None:
        writer.send(b"first")
        writer.send(b"second" * 100_000)  # larger than a pipe's buffer: read while the sandbox runs
        os.write(writer.fd, FRAME_HEADER.pack(1000) + b"cut short")
        os._exit(3)

    outcome, messages = run_isolated(target, tmp_path, LIMITS)
    assert outcome.status == "failed", outcome
    assert messages == [b"first", b"second" * 100_000]


def test_files_the_sandbox_writes_are_not_reports(tmp_path: Path) -> None:
    def target(writer: ReportWriter) -> None:
        Path("report.pt").write_bytes(b"forged")

    outcome, messages = run_isolated(target, tmp_path, LIMITS)
    assert outcome.status == "ok" and messages == []


def test_the_sandbox_inherits_no_pipe_but_its_report_channel(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # stands for the runner's and other evaluators' pipes
    try:
        def target(writer: ReportWriter) -> None:
            try:
                os.write(write_end, b"reached")
                writer.send(b"written")
            except OSError as error:
                writer.send(os.strerror(error.errno).encode())

        outcome, messages = run_isolated(target, tmp_path, LIMITS)
        assert outcome.status == "ok" and messages == [b"Bad file descriptor"], (outcome, messages)
    finally:
        os.close(read_end)
        os.close(write_end)
