"""The grader's side of the child process: start it, feed it, listen, restart it after a crash.

A submission's code runs in :mod:`nas_lab.grading.runner`, started once per submission in an empty
temporary folder, in fast mode, in its own process group, with a time limit per cell and per
answer call and a memory limit. A cell that ends the child (``os._exit``, a signal, the
out-of-memory killer) or stays silent past the time limit is found by the last "starting cell"
message: the child is restarted without it, at most :data:`MAX_RESTARTS` times. An answer that
does so scores 0 with the reason.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_lab.grading.report import MAX_REASON

STARTUP_SECONDS = 120  # the child imports torch before its first message: slow on a busy machine
GRACE_SECONDS = 15  # the parent's backstop, past the child's own alarm
MAX_RESTARTS = 5  # each restart re-runs the notebook: after this many, the rest scores 0


@dataclass(frozen=True)
class Limits:
    timeout: float = 120.0  # seconds per cell and per answer call
    memory_gib: float = 4.0  # beyond what the libraries map
    checks: str | None = None  # the private checks file, which the child imports too


GONE = object()  # the reader's own sign that the pipe closed: no message a child sends equals it


class Child:
    """One run of :mod:`nas_lab.grading.runner`; its messages arrive through a reader thread."""

    def __init__(self, workdir: str) -> None:
        env = {
            **os.environ,
            "NAS_LAB_FAST": "1",
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        env.pop("NAS_LAB_STRICT", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nas_lab.grading.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
            start_new_session=True,  # its own process group: whatever it forks dies with it
        )
        self.messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(lambda: self.process.stdout.readline(2_000_000), b""):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self.messages.put(message)
        self.messages.put(GONE)  # end of the pipe: the child has died or exited

    def send(self, data: Any) -> bool:
        try:
            pickle.dump(data, self.process.stdin)
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def next(self, seconds: float) -> Any:
        """The next message; None when the child stayed silent for ``seconds``."""
        try:
            return self.messages.get(timeout=seconds)
        except queue.Empty:
            return None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def run_child(
    cells: list[tuple[int, str]],
    answers: dict[str, str],
    inputs: dict[str, list[tuple]],
    limits: Limits,
) -> tuple[dict[str, Any], list[str]]:
    """Run the cells and the answers; restart without whatever killed the child.

    Returns ``{exercise_id: outputs | reason}`` and notes for the feedback file."""
    notes: list[str] = []
    results: dict[str, Any] = {}
    skip: set[int] = set()
    first_lines = {i: _first_line(source) for i, source in cells}
    for _ in range(MAX_RESTARTS + 1):
        todo = {k: v for k, v in inputs.items() if k not in results}
        if not todo:
            break
        with tempfile.TemporaryDirectory(prefix="nas-lab-grade-") as workdir:
            culprit, silent = _attempt(workdir, cells, skip, answers, todo, limits, results, notes)
        if culprit is None:
            break
        kind, key = culprit
        how = f"ran past {limits.timeout:g} s" if silent else "ended the grader's process"
        if kind == "cell":
            skip.add(key)
            notes.append(f"code cell {key} ({first_lines[key]}) {how}; it was skipped")
        elif kind == "call":
            results[key] = f"your function {how} (an infinite loop, a crash or too much memory?)"
        else:
            notes.append(f"the grader's process ended outside any cell ({how})")
            break
    for exercise_id in inputs:
        results.setdefault(
            exercise_id, "the grader gave up on this submission after repeated crashes"
        )
    return results, notes


def _attempt(workdir, cells, skip, answers, todo, limits, results, notes):
    """One child from start to finish or death; returns (what it was doing when it died, silent)."""
    child = Child(workdir)
    job = {
        "cells": [(i, s) for i, s in cells if i not in skip],
        "answers": answers,
        "timeout": limits.timeout,
        "memory_bytes": int(limits.memory_gib * 2**30),
        "checks": str(Path(limits.checks).resolve()) if limits.checks else None,
    }
    current: tuple[str, Any] | None = ("start", None)
    wait = STARTUP_SECONDS
    try:
        if not child.send(job):
            return current, False
        while True:
            message = child.next(wait)
            if message is None or message is GONE:
                return current, message is None
            wait = limits.timeout + GRACE_SECONDS
            event = message.get("event")
            if event == "cell" and isinstance(message.get("index"), int):
                current = ("cell", message["index"])
            elif event == "cell_done":
                current = None
                if message.get("error") and message.get("index") in dict(cells):
                    index = message["index"]
                    error = str(message["error"])[:MAX_REASON]
                    notes.append(f"code cell {index} ({_first_line(dict(cells)[index])}) {error}")
            elif event == "ready":
                current = None
                if not child.send(todo):
                    return None, False
            elif event == "call" and message.get("exercise") in todo:
                current = ("call", message["exercise"])
            elif event == "result" and message.get("exercise") in todo:
                outputs = message.get("outputs")
                results[message["exercise"]] = outputs if isinstance(outputs, list) else []
                current = None
            elif event == "done":
                return None, False
    finally:
        child.kill()


def _first_line(source: str) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    text = lines[0] if lines else "empty"
    return "`" + (text if len(text) <= 50 else text[:47] + "...") + "`"
