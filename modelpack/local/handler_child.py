"""The package's handler in a child process for `modelpack serve`, restarted when it dies.

The package is unpacked as the platform lays it out (Lambda: the function as the task root and the layer as
/opt; Azure: the app folder with its .python_packages) and its handler runs in one child process of the
package's Python that sees only those files, like one execution environment; requests reach it one at a time.
A split model's single chaining function (lambda-split, layout single) is served when no lambda-function was
built. When the child dies (out of memory, a native crash, a kill) the supervisor says so in the log, answers
meanwhile with 502 (the request that was running) or 503 (the ones that arrive while it restarts), and starts
a new one.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelpack.errors import TargetError, UsageError
from modelpack.local.azure_app import ROUTING

TEXT_TYPES = ("application/json", "text/", "application/xml")

# Runs inside the child: frames of (4-byte length, JSON header, body) in and out over stdin/stdout; the
# handler's own prints and logs go to stderr.
CHILD = ROUTING + r"""
import base64, json, os, struct, sys
out = os.fdopen(os.dup(1), "wb"); os.dup2(2, 1); inp = sys.stdin.buffer
def read(n):
    data = inp.read(n)
    if len(data) < n: sys.exit(0)
    return data
def send(head, body):
    head = json.dumps(head, allow_nan=False).encode()
    out.write(struct.pack(">II", len(head), len(body)) + head + body); out.flush()
TARGET = sys.argv[1]
if TARGET == "lambda":
    import handler
    def call(req, body):
        text = req["text"]
        event = {"version": "2.0", "routeKey": "$default", "rawPath": req["path"], "rawQueryString": req["query"],
                 "headers": req["headers"], "requestContext": {"http": {"method": req["method"], "path": req["path"],
                 "sourceIp": "127.0.0.1"}}, "isBase64Encoded": not text,
                 "body": body.decode() if text else base64.b64encode(body).decode()}
        result = handler.handler(event, None)
        if not isinstance(result, dict) or "statusCode" not in result:  # Function URLs answer such a value as JSON
            data = json.dumps(result, allow_nan=False).encode()  # strict: a NaN is the 500 below, never served
            return {"status": 200, "headers": {"content-type": "application/json"}}, data
        data = result.get("body") or ""
        data = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode()
        return {"status": result["statusCode"], "headers": result.get("headers") or {}}, data
else:
    import urllib.parse
    import azure.functions as func
    import function_app
    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    route = str(function_app.AZURE.get("route", "predict")).strip("/")
    def call(req, body):
        name, path, params = azure_route(req["path"], route)
        if name is None:
            message = no_function(path, route)
            return {"status": 404, "headers": {"content-type": "application/json"}}, json.dumps(message, allow_nan=False).encode()
        user = functions[name].get_user_function()
        query = dict(urllib.parse.parse_qsl(req["query"]))
        request = func.HttpRequest(method=req["method"], url="http://localhost/api/" + path, body=body,
                                   headers=req["headers"], params=query, route_params=params)
        resp = user(request)
        headers = dict(resp.headers)
        headers["content-type"] = resp.mimetype or "application/json"
        return {"status": resp.status_code, "headers": headers}, resp.get_body()
send({"ready": True}, b"")
while True:
    head_len, body_len = struct.unpack(">II", read(8))
    req = json.loads(read(head_len)); body = read(body_len)
    try:
        head, data = call(req, body)
    except Exception as exc:
        head = {"status": 500, "headers": {"content-type": "application/json"}}
        data = json.dumps({"error": f"the handler raised {type(exc).__name__}: {str(exc)[:300]}"},
                          allow_nan=False).encode()
    send(head, data)
"""


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes


class ChildDied(Exception):
    """The handler process exited while (or before) it answered a request."""


@dataclass(frozen=True)
class Package:
    """An unpacked package: what to run, where, and the handler's config (modelpack.json)."""

    target: str
    interpreter: str
    env: dict
    cwd: Path
    config: dict


class Child:
    """The package's handler in its own interpreter; `call` sends one request and waits for its answer."""

    def __init__(self, package: Package):
        self.proc = subprocess.Popen([package.interpreter, "-S", "-c", CHILD, package.target], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=package.env, cwd=package.cwd)
        head, _ = self._receive()
        if not head.get("ready"):
            raise TargetError("the package's handler did not start")

    def _receive(self) -> tuple[dict, bytes]:
        lengths = self.proc.stdout.read(8)
        if len(lengths) < 8:
            self.proc.wait()
            raise ChildDied(exit_reason(self.proc.returncode))
        head_len, body_len = struct.unpack(">II", lengths)
        head = json.loads(self.proc.stdout.read(head_len))
        body = self.proc.stdout.read(body_len)
        if len(body) < body_len:
            self.proc.wait()
            raise ChildDied(exit_reason(self.proc.returncode))
        return head, body

    def call(self, method: str, path: str, query: str, headers: dict, body: bytes) -> Answer:
        ctype = headers.get("content-type", "application/json").lower()
        request = {"method": method, "path": path, "query": query, "headers": headers,
                   "text": ctype.startswith(TEXT_TYPES) and _utf8(body)}
        head = json.dumps(request, allow_nan=False).encode()
        try:
            self.proc.stdin.write(struct.pack(">II", len(head), len(body)) + head + body)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.proc.wait()
            raise ChildDied(exit_reason(self.proc.returncode)) from None
        answer, data = self._receive()
        return Answer(answer["status"], {str(k).lower(): str(v) for k, v in answer["headers"].items()}, data)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (killed: out of memory, or stopped from outside)" if name == "SIGKILL" else \
            " (a native crash)" if name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE") else ""
        return f"signal {name}{hint}"
    return f"exit code {code}"


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Unavailable(Exception):
    """No handler process can take the request: `status` 502 (it died under it) or 503 (restarting)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Supervisor:
    """One child at a time, restarted when it dies; a watcher notices a death between requests too."""

    RESTART_DELAYS_S = (0.0, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, package: Package, log: Callable[[str], None]):
        self.package, self.log = package, log
        self._lock = threading.Lock()  # one request at a time, as one execution environment takes them
        self._state = threading.Condition()
        try:
            self._child: Child | None = Child(package)
        except ChildDied as exc:  # the package cannot run here: the user's to fix, not a modelpack failure
            raise UsageError(f"the {package.target} package's handler process died while starting ({exc}); the "
                             "lines above are its own output and say why. Check the package with `modelpack "
                             "invoke`, and rebuild it if its files were changed; a process killed for memory needs "
                             "more free memory on this machine.") from None
        self._closing = False
        self.restarts = 0
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="modelpack-serve-watch")
        self._watcher.start()

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.proc.pid if child is not None else None

    def call(self, method: str, path: str, query: str, headers: dict, body: bytes) -> Answer:
        with self._lock:
            child = self._child
            if child is None or not child.alive:
                raise Unavailable(503, "the handler process is restarting; try again in a moment")
            try:
                return child.call(method, path, query, headers, body)
            except ChildDied as exc:
                self._died(child, str(exc))
                raise Unavailable(502, f"the handler process died while answering ({exc}); it is being "
                                       "restarted") from None

    def _died(self, child: Child, reason: str) -> None:
        with self._state:
            if self._child is not child:
                return  # already noticed
            self._child = None
            self._state.notify_all()
        self.log(f"the handler process (pid {child.proc.pid}) died: {reason}; restarting it")

    def _watch(self) -> None:
        while not self._closing:
            child = self._child
            if child is not None and not child.alive:
                self._died(child, exit_reason(child.proc.returncode))
            if self._child is None and not self._closing:
                self._restart()
            time.sleep(0.2)

    def _restart(self) -> None:
        for delay in self.RESTART_DELAYS_S:
            if self._closing:
                return
            time.sleep(delay)
            started = time.monotonic()
            try:
                child = Child(self.package)
            except (ChildDied, TargetError, OSError) as exc:
                self.log(f"the handler process did not start again ({exc}); retrying")
                continue
            with self._state:
                self._child = child
            self.restarts += 1
            self.log(f"the handler process is back (pid {child.proc.pid}, started in "
                     f"{time.monotonic() - started:.1f} s)")
            return
        self.log("the handler process keeps dying at start; requests get 503 until modelpack serve is restarted")
        self._closing = True

    def close(self) -> None:
        self._closing = True
        child = self._child
        if child is not None:
            child.close()


def unpack(dist: Path, target: str, workdir: Path) -> Package:
    """Unpack DIST's package for `target` into `workdir`: what a child needs to run its handler."""
    if target == "azure":
        from modelpack.local.azure_app import AzureApp, azure_functions_lib

        app = AzureApp(dist, workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(PYTHONPATH=os.pathsep.join([str(app.root), str(app.root / ".python_packages/lib/site-packages"),
                                               str(azure_functions_lib(app.python))]),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
        return Package("azure", app.interpreter, env, app.root, _config(app.root))
    if target != "lambda":
        raise UsageError(f"--target {target}: modelpack serve runs lambda or azure packages.")
    from modelpack.local.lambda_emulator import LambdaEmulator
    from modelpack.local.split_chain import SplitChain
    from modelpack.targets.handler_check import handler_env

    function, layers = "lambda/function.zip", ()
    if not (dist / function).is_file() and (dist / "lambda" / "split").is_dir():  # a split model's chaining function
        chain = SplitChain(dist, workdir)
        if not chain.single:
            raise UsageError(f"{dist}: this split model runs as one function per part, chained by Step Functions; "
                             "modelpack serve runs one function. Run the chain with `modelpack invoke`, or build "
                             "the lambda-split target with `layout: single` to serve it.")
        function, layers = "lambda/split/function.zip", chain.layers
    # Unpacks the layer(s) and the function; the emulator itself is not started.
    layout = LambdaEmulator(dist, workdir, function, layers)
    env = handler_env(layout.task, layout.opt)
    env.update(AWS_LAMBDA_FUNCTION_NAME=dist.name, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024")
    return Package("lambda", layout.interpreter, env, layout.task, _config(layout.task))


def _config(folder: Path) -> dict:
    try:
        return json.loads((folder / "modelpack.json").read_text())
    except (OSError, ValueError) as exc:
        raise TargetError(f"{folder}: the package has no readable modelpack.json ({exc})") from None
