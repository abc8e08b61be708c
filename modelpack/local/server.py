"""`modelpack serve`: a local HTTP server in front of a built package, for curl, browsers and real clients.

The package is unpacked as the platform lays it out (Lambda: the function as the task root and the layer as
/opt; Azure: the app folder with its .python_packages) and its handler runs in one child process of the
package's Python that sees only those files, like one execution environment. Each HTTP request becomes a
Function URL event (Lambda) or an azure.functions.HttpRequest (Azure); requests are handled one at a time by
that child, as one Lambda execution environment handles them. The server listens on loopback by default.
A build with a split model's single chaining function (lambda-split, layout single) and no lambda-function
serves that function, its part layers under /opt beside the runtime layer.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from modelpack.errors import TargetError, UsageError

MAX_BODY = 64 * 1024 * 1024  # the platforms' own limits are far lower; the handler enforces the package's
TEXT_TYPES = ("application/json", "text/", "application/xml")

# Runs inside the child: frames of (4-byte length, JSON header, body) in and out over stdin/stdout; the
# handler's own prints and logs go to stderr.
CHILD = r"""
import base64, json, os, struct, sys
out = os.fdopen(os.dup(1), "wb"); os.dup2(2, 1); inp = sys.stdin.buffer
def read(n):
    data = inp.read(n)
    if len(data) < n: sys.exit(0)
    return data
def send(head, body):
    head = json.dumps(head).encode()
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
            return {"status": 200, "headers": {"content-type": "application/json"}}, json.dumps(result).encode()
        data = result.get("body") or ""
        data = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode()
        return {"status": result["statusCode"], "headers": result.get("headers") or {}}, data
else:
    import azure.functions as func
    import function_app
    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    def call(req, body):
        path = req["path"][len("/api/"):] if req["path"].startswith("/api/") else req["path"].lstrip("/")
        params = {}
        if path.startswith("v2/") or path == "v2":
            name, params = "inference_protocol", {"path": path[3:]}
        elif path == "health":
            name = "health"
        else:
            name = "predict"
        user = functions[name].get_user_function()
        request = func.HttpRequest(method=req["method"], url="http://localhost/api/" + path, body=body,
                                   headers=req["headers"], route_params=params)
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
        data = json.dumps({"error": f"the handler raised {type(exc).__name__}: {str(exc)[:300]}"}).encode()
    send(head, data)
"""


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes


class Child:
    """The package's handler in its own interpreter; `call` sends one request and waits for its answer."""

    def __init__(self, target: str, interpreter: str, env: dict, cwd: Path):
        self.proc = subprocess.Popen([interpreter, "-S", "-c", CHILD, target], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, cwd=cwd)
        self.lock = threading.Lock()
        head, _ = self._receive()
        if not head.get("ready"):
            raise TargetError("the package's handler did not start")

    def _receive(self) -> tuple[dict, bytes]:
        lengths = self.proc.stdout.read(8)
        if len(lengths) < 8:
            self.close()
            raise TargetError(f"the package's handler process exited (code {self.proc.returncode}); its output "
                              "above says why")
        head_len, body_len = struct.unpack(">II", lengths)
        head = json.loads(self.proc.stdout.read(head_len))
        return head, self.proc.stdout.read(body_len)

    def call(self, method: str, path: str, query: str, headers: dict, body: bytes) -> Answer:
        ctype = headers.get("content-type", "application/json").lower()
        request = {"method": method, "path": path, "query": query, "headers": headers,
                   "text": ctype.startswith(TEXT_TYPES) and _utf8(body)}
        head = json.dumps(request).encode()
        with self.lock:
            self.proc.stdin.write(struct.pack(">II", len(head), len(body)) + head + body)
            self.proc.stdin.flush()
            answer, data = self._receive()
        return Answer(answer["status"], {str(k).lower(): str(v) for k, v in answer["headers"].items()}, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def start_child(dist: Path, target: str, workdir: Path) -> Child:
    """Unpack DIST's package for `target` into `workdir` and start its handler."""
    if target == "azure":
        from modelpack.local.azure_app import AzureApp, azure_functions_lib

        app = AzureApp(dist, workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(PYTHONPATH=os.pathsep.join([str(app.root), str(app.root / ".python_packages/lib/site-packages"),
                                               str(azure_functions_lib(app.python))]),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
        return Child("azure", app.interpreter, env, app.root)
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
    return Child("lambda", layout.interpreter, env, layout.task)


def make_server(child: Child, host: str, port: int, log=None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = self.headers.get("content-length") or "0"
            if not length.isdigit() or int(length) > MAX_BODY:
                return self._send(Answer(413, {"content-type": "application/json"},
                                         b'{"error": "request body missing a valid Content-Length or too large"}'))
            body = self.rfile.read(int(length))
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._send(child.call(self.command, path, query, headers, body))

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                if key not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header("-".join(part.capitalize() for part in key.split("-")), value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, fmt: str, *args) -> None:
            if log is not None:
                log(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None


def serve(dist: Path, target: str, host: str, port: int, echo=print) -> None:
    """Run until interrupted."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="modelpack-serve-") as tmp:
        child = start_child(dist, target, Path(tmp))
        try:
            server = make_server(child, host, port, log=lambda line: echo(line))
            bound = server.server_address[1]
            echo(f"serving {dist} ({target}) on http://{host}:{bound}  (Ctrl-C stops)")
            echo(f"  curl -s http://{host}:{bound}/v2/health/ready")
            sys.stdout.flush()
            try:
                server.serve_forever()
            finally:
                server.server_close()
        finally:
            child.close()
