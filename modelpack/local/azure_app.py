"""Call a built Azure Functions package the way the Python worker would, in a clean interpreter.

The zip is extracted to a temporary directory; a fresh interpreter of the app's Python version sees only the
package's .python_packages, the app folder and the azure-functions library. It imports function_app, finds
the registered functions, builds azure.functions.HttpRequest objects and calls them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from modelpack.errors import TargetError, UsageError
from modelpack.host import interpreters
from modelpack.host.childproc import pip, pip_tail, read, scrubbed_env, write_source
from modelpack.local.tools import CACHE
from modelpack.local.unzip import UnzipBudget, safe_extract
from modelpack.report.records import dist_report

AZURE_FUNCTIONS_VERSION = "1.26.0"

MARKER = "MODELPACK_AZURE"

# The Functions host's routing, run in the app's interpreter by `modelpack invoke` and `modelpack serve` alike:
# the app's own route (matched exactly, not as a part of the path), then v2/{*path}, then health; any other
# path is the host's 404.
ROUTING = r"""
def azure_route(path, route):
    path = (path[len("/api/"):] if path.startswith("/api/") else path.lstrip("/")).rstrip("/")
    if path == route:
        return "predict", path, {}
    if path == "v2" or path.startswith("v2/"):
        return "inference_protocol", path, {"path": path[3:]}
    if path == "health":
        return "health", path, {}
    return None, path, {}
def no_function(path, route):
    return {"error": f"no function of this app answers /api/{path}; POST to /api/{route}"}
"""

_CALL = ROUTING + r"""
import base64, json, sys, threading, traceback
import azure.functions as func
def failure(exc):
    # What the worker logs for an unhandled exception; the host answers the request with HTTP 500.
    return {"status": 500, "raised": True, "mimetype": None,
            "body": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                     "stackTrace": traceback.format_exception(exc)[-3:]}}
try:
    import function_app
    functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
    boot = None
except Exception as exc:
    function_app, functions, boot = None, {}, exc
calls = json.load(sys.stdin)
route = str(function_app.AZURE.get("route", "predict")).strip("/") if function_app else "predict"
def one(call):
    if boot is not None:
        return failure(boot)
    if "path" in call:  # a request path, routed as the host does (None: the app's own route)
        name, path, params = azure_route(call["path"] or route, route)
        if name is None:
            return {"status": 404, "body": no_function(path, route), "mimetype": "application/json",
                    "raised": False}
        call = {**call, "function": name, "route": path, "route_params": params}
    body = call.get("body")
    if "body_b64" in call:
        raw = base64.b64decode(call["body_b64"])
    else:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else b""
    req = func.HttpRequest(method=call.get("method", "POST"), url="/api/" + call.get("route", ""), body=raw,
                           headers=call.get("headers", {"content-type": "application/json"}),
                           route_params=call.get("route_params") or {})
    try:
        resp = functions[call.get("function", "predict")](req)
    except Exception as exc:
        return failure(exc)
    text = resp.get_body().decode()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = text
    return {"status": resp.status_code, "body": payload, "mimetype": resp.mimetype, "raised": False}
if calls and calls[0].get("concurrent"):
    n = calls[0]["concurrent"]; results = [None] * n; barrier = threading.Barrier(n)
    def worker(i):
        barrier.wait(); results[i] = one(calls[0])
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    [t.start() for t in threads]; [t.join() for t in threads]
else:
    import time
    def timed(call):
        t = time.perf_counter(); result = one(call)
        return {**result, "ms": (time.perf_counter() - t) * 1e3}
    results = [timed(c) for c in calls]
answer = {"results": results, "functions": sorted(functions), "loads": function_app.HOLDER.loads if function_app else 0}
""" + write_source(MARKER, "answer") + "\n"


def azure_functions_lib(python: str) -> Path:
    """azure-functions and its dependencies (pure Python) installed once into a cache folder."""
    dest = CACHE / "azure-functions" / AZURE_FUNCTIONS_VERSION
    if (dest / ".complete").exists():
        return dest
    proc = pip(["install", "--quiet", "--target", str(dest), f"azure-functions=={AZURE_FUNCTIONS_VERSION}"])
    if proc.returncode != 0:
        raise TargetError(f"could not install azure-functions: {pip_tail(proc)}")
    (dest / ".complete").touch()
    return dest


class AzureApp:
    """An extracted function app; `call([...])` runs requests through its registered functions."""

    def __init__(self, dist: Path, workdir: Path):
        art = next((a for a in dist_report(dist)["artifacts"] if a.get("target") == "azure-functions"), None)
        if art is None:
            raise UsageError(f"{dist}: no Azure Functions package here; add an azure-functions target.")
        self.python = art["details"]["python"]
        self.interpreter = interpreters.find(self.python)
        if self.interpreter is None:
            raise UsageError(f"the app targets Python {self.python}, which is not installed here.")
        self.root = workdir / "wwwroot"
        # Azure states no unzipped limit of its own; modelpack's apps are built like Lambda layers and stay
        # well below Lambda's, so that bound keeps a hostile archive from filling the disk.
        safe_extract(dist / art["path"], self.root,
                     UnzipBudget(why="modelpack invoke unpacks no larger function app than a Lambda function"))

    def call(self, calls: list[dict]) -> dict:
        env = scrubbed_env([str(self.root), str(self.root / ".python_packages/lib/site-packages"),
                            str(azure_functions_lib(self.python))])
        proc = subprocess.run([self.interpreter, "-S", "-c", _CALL], input=json.dumps(calls), capture_output=True,
                              text=True, env=env, cwd=self.root, timeout=300, check=False)
        self.stderr = proc.stderr  # the app's log lines (`modelpack invoke --logs`)
        answer = read(proc.stdout, MARKER)
        if answer is not None:
            return answer
        err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise TargetError(f"the function app failed: {(err or ['no output'])[-1][:400]}")
