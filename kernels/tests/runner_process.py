"""The runner as a subprocess, driven over its real JSON-lines protocol."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class RunnerProcess:
    def __init__(self, *extra_args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kernels.runner", "--workers", "2", *extra_args],
            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.ids = itertools.count()
        self.hello = self.read()
        assert self.hello["type"] == "ready", self.hello

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"runner exited with {self.process.poll()}"
        return json.loads(line)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def send_raw(self, line: bytes) -> None:
        """Bytes as they are, for lines that are not valid UTF-8 or JSON."""
        assert self.process.stdin is not None
        self.process.stdin.flush()
        self.process.stdin.buffer.write(line)
        self.process.stdin.buffer.flush()

    def evaluate_many(self, requests: list[tuple[str, str]], **options: Any) -> list[dict[str, Any]]:
        """Submit every (problem, completion) at once (the runner grades them concurrently), answers in order;
        `options` are extra request fields (runtime_device, seed)."""
        ids = []
        for problem, completion in requests:
            ids.append(next(self.ids))
            self.send({"type": "evaluate", "id": ids[-1], "problem": problem, "completion": completion, **options})
        answers = {}
        while len(answers) < len(ids):
            message = self.read()
            answers[message["id"]] = message
        return [answers[i] for i in ids]

    def evaluate(self, problem: str, completion: str, **options: Any) -> dict[str, Any]:
        return self.evaluate_many([(problem, completion)], **options)[0]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=120)


def tagged(code: str) -> str:
    return f"<triton_code>\n{code}\n</triton_code>"


def scores(result: dict[str, Any]) -> dict[str, float]:
    return {name: reward["score"] for name, reward in result["rewards"].items()}
