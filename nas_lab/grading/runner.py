"""The grader's child process: run one submission's code, call its answers, report plain data.

``nas-lab grade`` (:mod:`nas_lab.grading`) starts ``python -m nas_lab.grading.runner`` once per
submission, in an empty temporary folder. Everything here runs next to the student's code, so
nothing here is trusted: the child only *reports* what the answers returned, and the parent draws
the inputs, computes the reference and decides. The protocol:

1. parent -> child (stdin, pickle): the job: code cells ``[(index, source)]``, the answer names
   ``{exercise_id: function_name}``, the time limit, the memory limit, a private checks file;
2. child -> parent (stdout, one JSON object per line): ``{"event": "cell", "index": i}`` before
   each cell and ``{"event": "cell_done", "index": i, "error": reason | null}`` after it, then
   ``{"event": "ready"}``;
3. parent -> child (stdin, pickle): the fresh inputs ``{exercise_id: [args, ...]}``;
4. child -> parent: ``{"event": "call", "exercise": id}`` before each answer runs, and
   ``{"event": "result", "exercise": id, "outputs": [{"ok": true, "value": ...} |
   {"ok": false, "reason": "..."}]}`` after; finally ``{"event": "done"}``.

Pickle flows only from parent to child, never back. Before any student code runs, the child keeps
private copies of its stdin and stdout and points file descriptors 0, 1 and 2 at ``/dev/null``:
what the student prints, warns or reads cannot disturb the protocol.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

# Bound now, before any submission runs: patching `json.dumps` later cannot reach the protocol.
dumps, loads = json.dumps, json.loads
MAX_OUTPUT_CHARS = 1_000_000  # one answer's output, as JSON: more is not an answer, it is a flood


class TimeLimit(BaseException):
    """Raised by the alarm; a BaseException so that a student's `except Exception` cannot eat it."""


# ---------------------------------------------------------------------------------------------
# Plain data: what an answer returned, in a form JSON carries and the parent can compare.
# ---------------------------------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """Numbers, strings, lists and string-keyed dicts; numpy and torch values converted.

    Raises TypeError for anything else (a model, a generator, a file). The parent sends the
    reference's output through the same function, so both sides compare in one form."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars, tensors
        return to_plain(value.tolist())
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_plain(v) for k, v in value.items()}
    raise TypeError(f"a {type(value).__name__}, which is not plain data")


def round_trip(value: Any) -> Any:
    """``value`` as it arrives after a JSON round trip (tuples become lists, keys strings)."""
    return json.loads(json.dumps(to_plain(value)))


# ---------------------------------------------------------------------------------------------
# The child's side of the protocol.
# ---------------------------------------------------------------------------------------------


class Channel:
    """The private pipes to the parent, kept before fds 0-2 are handed to /dev/null."""

    def __init__(self) -> None:
        self.inbox: BinaryIO = os.fdopen(os.dup(0), "rb")
        self.outbox: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)

    def receive(self) -> Any:
        return pickle.load(self.inbox)  # from the parent only: never from a submission

    def send(self, **event: Any) -> None:
        self.outbox.write(dumps(event) + "\n")
        self.outbox.flush()


def _alarm(signum: int, frame: Any) -> None:
    raise TimeLimit


def limited(seconds: float, run: Callable[[], Any]) -> Any:
    """Run ``run()``; raise TimeLimit after ``seconds`` of wall-clock time."""
    signal.signal(signal.SIGALRM, _alarm)  # again each time: a submission may have replaced it
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def describe(error: BaseException, seconds: float) -> str:
    if isinstance(error, TimeLimit):
        return f"ran past the time limit of {seconds:g} s"
    if isinstance(error, MemoryError):
        return "ran out of memory (the grader's memory limit)"
    if isinstance(error, SyntaxError):
        return f"has a syntax error on line {error.lineno}: {error.msg}"
    return f"raised {type(error).__name__}: {error}"


def preload() -> None:
    """Import the heavy libraries before the clock starts: every cell then pays only for itself."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import nas_lab.checks  # noqa: F401  the registry, imported once before the clock


def limit_memory(extra_bytes: int) -> None:
    """Cap the address space at what the libraries map already plus ``extra_bytes``."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    limit = mapped + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class NoIPython:
    """Stands in for ``get_ipython()``: magics and shell lines become calls that do nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def no_check(*args: Any, **kwargs: Any) -> None:
    """The student's own `check(...)` calls cost nothing: the parent grades."""


def run_cells(channel: Channel, cells: list[tuple[int, str]], seconds: float) -> dict:
    import matplotlib.pyplot as plt

    namespace: dict[str, Any] = {"__name__": "__main__", "get_ipython": NoIPython}
    for index, source in cells:
        channel.send(event="cell", index=index)
        error = None
        try:
            code = compile(source, f"<code cell {index}>", "exec")
            limited(seconds, lambda code=code: exec(code, namespace))
        except BaseException as err:  # noqa: BLE001  a failing cell is recorded, never fatal
            error = describe(err, seconds)
        plt.close("all")
        channel.send(event="cell_done", index=index, error=error)
    return namespace


def answer_outputs(ex: Any, answer: Any, cases: list[tuple], seconds: float) -> list[dict]:
    """Each input's output as plain data, up to the first failure."""
    from nas_lab.checks import run_answer

    module = getattr(answer, "__module__", None) or ""
    if module.startswith("nas_lab"):
        reason = f"uses the library's own implementation ({module}); write your own"
        return [{"ok": False, "reason": reason}]
    outputs = []
    for args in cases:
        try:
            ran, got = limited(seconds, lambda args=args: run_answer(ex, answer, args))
            if ran:
                text = dumps(to_plain(got))
                if len(text) > MAX_OUTPUT_CHARS:
                    ran, got = False, "returned an output too large to be an answer"
                else:
                    got = loads(text)
        except TypeError as err:
            ran, got = False, f"returned {err}: return numbers, strings, lists or dicts"
        except BaseException as err:  # noqa: BLE001
            ran, got = (
                False,
                f"on input ({ex.describe(args)}) your function {describe(err, seconds)}",
            )
        outputs.append({"ok": True, "value": got} if ran else {"ok": False, "reason": got})
        if not ran:
            break
    return outputs


def main() -> None:
    channel = Channel()
    job = channel.receive()
    preload()
    import nas_lab
    import nas_lab.checks

    registry = nas_lab.checks.load_all()
    if job.get("checks"):
        import runpy

        runpy.run_path(job["checks"])
    registry = dict(registry)  # a private copy: what the submission does to the registry later
    nas_lab.check = nas_lab.checks.check = no_check
    limit_memory(job["memory_bytes"])
    seconds = job["timeout"]
    namespace = run_cells(channel, job["cells"], seconds)
    channel.send(event="ready")
    inputs = channel.receive()
    for exercise_id, cases in inputs.items():
        channel.send(event="call", exercise=exercise_id)
        name = job["answers"][exercise_id]
        if name not in namespace:
            outputs = [{"ok": False, "reason": f"no function named `{name}` was defined"}]
        else:
            outputs = answer_outputs(registry[exercise_id], namespace[name], cases, seconds)
        channel.send(event="result", exercise=exercise_id, outputs=outputs)
    channel.send(event="done")
    os._exit(0)  # threads or handlers a submission left behind must not keep the child alive


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
