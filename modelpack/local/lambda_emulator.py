"""Run a built Lambda function and its layers the way Lambda runs them, on this machine.

The layer is laid out as /opt and the function as the task root in a temporary directory; the handler
runs under the AWS Lambda Runtime Interface Emulator with awslambdaric, in an interpreter of the target
Python that sees only those directories (and awslambdaric). Both listen on loopback only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from modelpack.errors import TargetError, UsageError
from modelpack.host import interpreters
from modelpack.local.tools import emulator, runtime_client
from modelpack.local.unzip import UnzipBudget, safe_extract
from modelpack.report.records import ArtifactRecord
from modelpack.targets.handler_check import handler_env


def raised(response: object) -> str | None:
    """`errorType: errorMessage` when `response` is the runtime's report of an unhandled error, else None.

    The emulator answers 200 either way; the body of a raised handler (or one that failed to import) is
    awslambdaric's error object, which modelpack's handlers never return.
    """
    if isinstance(response, dict) and "errorType" in response and "errorMessage" in response:
        return f"{response['errorType']}: {response['errorMessage']}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LambdaEmulator:
    """The emulator running one extracted function + layer; `invoke(event)` posts to it."""

    def __init__(self, dist: Path, workdir: Path, function: str = "lambda/function.zip", extra_layers: tuple = ()):
        artifacts = ArtifactRecord.read_all(dist / "report.json")
        layer = next((a for a in artifacts if a.target == "lambda-layer"), None)
        if layer is None or not any(a.path == function for a in artifacts):
            raise UsageError(f"{dist}: no Lambda layer and function here; add lambda-layer and lambda-function targets.")
        self.python, self.arch = layer.details["python"], layer.details["arch"]
        if self.arch != interpreters.host_arch():
            raise UsageError(f"the layer is built for {self.arch} but this machine is {interpreters.host_arch()}; "
                             f"build a twin with `arch: {interpreters.host_arch()}` to check it here.")
        self.interpreter = interpreters.find(self.python)
        if self.interpreter is None:
            raise UsageError(f"the layer targets Python {self.python}, which is not installed here; build a twin "
                             f"for {interpreters.host_python()} or install python{self.python}.")
        self.opt, self.task = workdir / "opt", workdir / "task"
        budget = UnzipBudget()
        for archive in (layer.path, *extra_layers):
            safe_extract(dist / archive, self.opt, budget)
        safe_extract(dist / function, self.task, budget)
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self._lines: list[str] = []  # the emulator's and the handler's output, read as it comes
        self._seen = 0

    def __enter__(self) -> LambdaEmulator:
        ric = runtime_client(self.python, self.interpreter)
        env = handler_env(self.task, self.opt)
        env["PYTHONPATH"] += os.pathsep + str(ric)
        env.update(AWS_LAMBDA_FUNCTION_NAME="modelpack-invoke", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024")
        self.proc = subprocess.Popen(
            [str(emulator(self.arch)), "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{_free_port()}", self.interpreter, "-S", "-m", "awslambdaric",
             "handler.handler"],
            cwd=self.task, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise TargetError("the Lambda runtime emulator did not start listening within 30 s")

    def invoke(self, event: object, timeout_s: float = 120) -> tuple[object, float]:
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"
        req = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                body = resp.read()
        except urllib.error.URLError as exc:
            raise TargetError(f"invoking through the emulator failed: {exc}") from None
        return json.loads(body), (time.perf_counter() - t) * 1e3

    def _read_output(self) -> None:
        """Collect the output line by line (also keeps a chatty handler from filling the pipe and blocking)."""
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    def new_log_lines(self, settle_s: float = 0.1) -> list[str]:
        """The output lines written since the last call (the runtime's START/END/REPORT and the handler's)."""
        time.sleep(settle_s)  # the runtime prints END/REPORT just after it answers
        lines, self._seen = self._lines[self._seen:], len(self._lines)
        return lines

    def logs(self) -> str:
        return "\n".join(self._lines)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)

