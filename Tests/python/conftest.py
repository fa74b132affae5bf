"""Shared fixtures of the swiftrcnn pytest suite.

`isolated` runs code in a separate worker process, so that a crash or hang on bad input fails that one test
instead of taking down the runner. Parity tests compare against torchvision (the oracle), which the test command
installs; tests never skip when it is missing.
"""
import json
import os
import select
import subprocess
import sys

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

_WORKER = r"""
import json, sys
import numpy as np
import swiftrcnn
from swiftrcnn import ops
for line in sys.stdin:
    code = json.loads(line)
    ns = {"np": np, "ops": ops, "swiftrcnn": swiftrcnn}
    try:
        exec(code, ns)
        out = ["ok", repr(ns.get("result"))]
    except BaseException as e:
        out = [type(e).__name__, str(e)]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


class Isolated:
    """A long-lived child Python that executes snippets (with `np`, `ops`, `swiftrcnn` in scope)."""

    def __init__(self):
        self.proc = None

    def _ensure(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(__file__) + "/..")

    def run(self, code: str, timeout: float = 60.0):
        """Returns (exception type name or "ok", message). A dead worker gives ("crash", ...), a stuck one
        ("hang", ...); the worker is restarted for the next call."""
        self._ensure()
        self.proc.stdin.write(json.dumps(code) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return "hang", f"no answer within {timeout} s"
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            self.proc = None
            return "crash", f"worker exited with {rc} (negative: killed by signal {-rc})"
        return tuple(json.loads(line))

    def expect_error(self, code: str, exc_type: type, *fragments: str, timeout: float = 60.0) -> str:
        kind, message = self.run(code, timeout)
        assert kind == exc_type.__name__, f"expected {exc_type.__name__}, got {kind}: {message}\n--- code:\n{code}"
        for f in fragments:
            assert f in message, f"{f!r} not in error message {message!r}"
        return message

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def isolated():
    worker = Isolated()
    yield worker
    worker.close()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
