"""A candidate that crashes, hangs, hogs memory or exits costs only itself: the runner keeps answering.

Such candidates are outside the allow-list, so the runner rejects them before they run; the sandbox is tested
here on its own, with the allow-list skipped.
"""
from __future__ import annotations

import socket
from typing import Iterator

import pytest

from kernels.dataset import get_problem

from .runner_process import RunnerProcess, tagged

HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n\n"
DESTRUCTIVE = {
    "segfault": "import ctypes\n\n\ndef relu(x):\n    ctypes.string_at(0)\n",
    "infinite_loop": "def relu(x):\n    while True:\n        pass\n",
    "memory_hog": "def relu(x):\n    hoard = []\n    while True:\n        hoard.append(bytearray(64 * 1024 * 1024))\n",
    "exit_process": "import os\n\n\ndef relu(x):\n    os._exit(0)\n",
    "kill_the_evaluator": "import os\n\n\ndef relu(x):\n    os.kill(os.getppid(), 9)\n",
    # The runner is the evaluator's parent: field 4 of /proc/<pid>/stat.
    "kill_the_runner": (
        "import os\n\n\ndef relu(x):\n    evaluator = os.getppid() or int(open('/proc/self/stat').read().split()[3])\n"
        "    runner = int(open(f'/proc/{evaluator}/stat').read().split()[3])\n    os.kill(runner, 9)\n"
    ),
    "orphaned_sleeper": "import os\nimport time\n\n\ndef relu(x):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(3600)\n    return x\n",
    "segfault_at_import": "import ctypes\nctypes.string_at(0)\n\n\ndef relu(x):\n    return x\n",
}


@pytest.fixture(scope="module")
def short_runner() -> Iterator[RunnerProcess]:
    # A 5 s limit keeps the hanging candidate cheap; the memory limit is the runner's --memory-mb.
    process = RunnerProcess("--time-limit", "5", "--memory-mb", "256", "--unsafe-skip-allow-list")
    yield process
    process.close()


def test_destructive_candidates_score_zero_and_the_runner_survives(short_runner: RunnerProcess) -> None:
    names = list(DESTRUCTIVE)
    results = dict(zip(names, short_runner.evaluate_many([("relu", tagged(HEADER + DESTRUCTIVE[name])) for name in names])))
    for name, result in results.items():
        assert result["type"] == "result", (name, result)
        assert result["rewards"]["correctness"]["score"] == 0.0, (name, result["rewards"])
    sandbox = {name: result["sandbox"] for name, result in results.items()}
    assert sandbox["segfault"].startswith("crashed: killed by signal 11"), sandbox
    assert sandbox["segfault_at_import"].startswith("crashed: killed by signal 11"), sandbox
    assert sandbox["infinite_loop"].startswith("timeout"), sandbox
    assert "MemoryError" in results["memory_hog"]["rewards"]["compilation"]["reason"], results["memory_hog"]
    # Inside its PID namespace the candidate sees neither its evaluator nor the runner (getppid() is 0, so the
    # first kill hits only its own namespace): every evaluation completes with a real formatting score.
    assert "No such process" in results["kill_the_runner"]["rewards"]["compilation"]["reason"]
    for name in ("kill_the_evaluator", "kill_the_runner", "exit_process", "orphaned_sleeper"):
        assert results[name]["rewards"]["formatting"]["score"] > 0, (name, results[name])
    # The runner is alive and still grades correctly.
    good = short_runner.evaluate("relu", tagged(get_problem("relu").solution()))
    assert good["rewards"]["correctness"]["score"] == 1.0, good["rewards"]


def test_the_allow_list_rejects_them_before_they_run(runner: RunnerProcess) -> None:
    names = list(DESTRUCTIVE)
    for name, result in zip(names, runner.evaluate_many([("relu", tagged(HEADER + DESTRUCTIVE[name])) for name in names])):
        assert result["sandbox"] == "not run" and result["rewards"]["correctness"]["score"] == 0.0, (name, result)
        assert any(finding.startswith("not_allowed: line ") for finding in result["hacks"]), (name, result["hacks"])


def test_the_sandbox_has_no_network(short_runner: RunnerProcess) -> None:
    assert short_runner.hello["isolation"] == "namespaces"
    # A listener on this machine's loopback: reachable from any process that shares our network,
    # so a connection from the candidate would mean the sandbox has none of its own.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        code = HEADER + f"import socket\n\n\ndef relu(x):\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    return x\n"
        result = short_runner.evaluate("relu", tagged(code))
        with pytest.raises(TimeoutError):
            listener.accept()
    reason = result["rewards"]["compilation"]["reason"]
    assert "Connection" in reason or "OSError" in reason or "unreachable" in reason, reason
