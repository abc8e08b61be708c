"""`modelpack serve` speaks HTTP/1.1 strictly and outlives its handler process, driven by real clients (http.client,
raw sockets, curl): chunked bodies are read as such and never desynchronise the connection, conflicting or
non-ASCII Content-Length values and unknown transfer codings are refused, a killed or crashed handler process is
restarted while requests get 502/503 and the log says so; Azure's function key is enforced; GET / describes the
package and GET on the predict route is a 405.

The server and its handler child are modelpack's own (local/server.py, local/handler_child.py) around the shipped
handler files of a tiny ONNX model, run by this interpreter with its site-packages as the runtime layer.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time

import numpy as np
import pytest

from modelpack.local import handler_child
from modelpack.local.handler_child import Package, Supervisor
from modelpack.local.serve_routes import Routes
from modelpack.local.server import Server, answerer
from tests.helpers.handlers import GOOD, function_dir, image_dir, with_azure_app

BODY = json.dumps({"instances": GOOD}).encode()


class Served:
    """A running server: its port, its log lines, its supervisor."""

    def __init__(self, folder, target: str = "lambda", key: str | None = None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(folder), sysconfig.get_paths()["purelib"]])}
        package = Package(target, sys.executable, env, folder, json.loads((folder / "modelpack.json").read_text()))
        self.lines: list[str] = []
        self.supervisor = Supervisor(package, log=self.lines.append)
        routes = Routes(folder, package)
        self.server = Server("127.0.0.1", 0, answerer(self.supervisor, routes, key), log=self.lines.append)
        self.port = self.server.address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method: str, path: str, body: bytes | None = None, **headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"content-type": "application/json", **headers})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def raw(self, data: bytes, wait_s: float = 5.0) -> bytes:
        """Send raw bytes on one connection and read until the server closes it or goes quiet."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait_s) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except TimeoutError:
                pass
        return b"".join(chunks)

    def wait_for(self, text: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r}: {self.lines}")

    def close(self) -> None:
        self.server.close()
        self.supervisor.close()


@pytest.fixture
def served(tmp_path):
    running = []

    def start(folder=None, **kwargs) -> Served:
        running.append(Served(folder or function_dir(tmp_path / "fn"), **kwargs))
        return running[-1]

    yield start
    for server in running:
        server.close()


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def test_a_chunked_body_is_read_as_one_request_on_a_kept_connection(served):
    server = served()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = [BODY[:10], BODY[10:25], BODY[25:]]
    conn.request("POST", "/predict", body=iter(chunks), headers={"content-type": "application/json",
                                                                  "transfer-encoding": "chunked"},
                 encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    first = json.loads(resp.read())["predictions"]
    conn.request("POST", "/predict", body=BODY, headers={"content-type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["predictions"] == first
    conn.close()


def test_pipelined_requests_after_a_chunked_one_are_not_desynchronised(served):
    server = served()
    chunked = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               + f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n")
    plain = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             + f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode() + BODY)
    assert statuses(server.raw(chunked + plain)) == [200, 200]


@pytest.mark.parametrize("headers,status", [
    (b"Content-Length: 10\r\nContent-Length: 12\r\n", 400),
    (b"Content-Length: 10, 12\r\n", 400),
    ("Content-Length: \u0661\u0662\r\n".encode(), 400),
    ("Content-Length: \u00b2\r\n".encode(), 400),
    (b"Content-Length: +12\r\n", 400),
    (b"Content-Length: 99999999999999999999999999\r\n", 400),
    (b"Transfer-Encoding: gzip\r\n", 501),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 501),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 12\r\n", 400),
])
def test_ambiguous_framing_is_refused_and_the_server_goes_on(served, headers, status):
    server = served()
    raw = server.raw(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + headers + b"\r\n"
                     + BODY)
    assert statuses(raw) == [status], raw[:300]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert json.loads(body)["error"] and b"Connection: close" in head
    assert server.request("POST", "/predict", BODY)[0] == 200  # still serving


def test_a_bad_chunk_is_a_400_not_a_hang_or_a_traceback(served):
    server = served()
    raw = server.raw(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    assert statuses(raw) == [400]
    assert server.request("POST", "/predict", BODY)[0] == 200


def test_a_killed_handler_process_is_restarted_and_said_so(served, monkeypatch):
    monkeypatch.setattr(Supervisor, "RESTART_DELAYS_S", (1.5, 0.5))
    server = served()
    assert server.request("POST", "/predict", BODY)[0] == 200
    os.kill(server.supervisor.pid, signal.SIGKILL)  # as the OOM killer does
    server.wait_for("died: signal SIGKILL")
    status, headers, body = server.request("POST", "/predict", BODY)
    assert status == 503 and headers.get("Retry-After") == "1" and "restarting" in json.loads(body)["error"]
    server.wait_for("is back (pid")
    assert server.request("POST", "/predict", BODY)[0] == 200


def test_a_handler_crash_during_a_request_is_a_502_then_a_restart(served):
    server = served()
    pid = server.supervisor.pid
    os.kill(pid, signal.SIGSTOP)  # the next request waits in the handler process ...
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(r=server.request("POST", "/predict", BODY)))
    thread.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGSEGV)  # ... which then dies of a native crash
    os.kill(pid, signal.SIGCONT)
    thread.join(30)
    status, _, body = answer["r"]
    assert status == 502 and "died while answering" in json.loads(body)["error"], body
    server.wait_for("is back (pid")
    assert any("SIGSEGV" in line and "native crash" in line for line in server.lines), server.lines
    assert server.request("POST", "/predict", BODY)[0] == 200


def test_get_root_describes_and_get_predict_is_a_405(served):
    server = served()
    status, _, body = server.request("GET", "/")
    description = json.loads(body)
    assert status == 200 and description["model"] == "tiny" and description["inputs"][0]["name"] == "x"
    assert {"POST /predict", "POST /v2/models/tiny/infer", "GET /v2/health/ready"} <= \
        {f"{r['method']} {r['path']}" for r in description["routes"]}
    status, headers, body = server.request("GET", "/predict")
    assert status == 405 and headers.get("Allow") == "POST" and json.loads(body)["error"]
    status, headers, body = server.request("HEAD", "/predict")  # no body, and the connection stays usable
    assert status == 405 and body == b"" and server.request("POST", "/predict", BODY)[0] == 200


def test_curl_uploads_an_image_form(served, tmp_path):
    from PIL import Image

    server = served(image_dir(tmp_path / "img"))
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(tmp_path / "photo.png")
    proc = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"http://127.0.0.1:{server.port}/predict",
                           "-F", f"image=@{tmp_path / 'photo.png'}"], capture_output=True, text=True, timeout=60,
                          check=True)
    body, code = proc.stdout.rsplit("\n", 1)
    assert code == "200" and len(json.loads(body)["predictions"]) == 1, proc.stdout
    raw = (tmp_path / "photo.png").read_bytes()
    assert json.loads(body)["predictions"] == json.loads(server.request(
        "POST", "/predict", raw, **{"content-type": "image/png"})[2])["predictions"]


def test_an_azure_function_key_is_required_as_the_deployed_app_requires_it(served, tmp_path):
    server = served(with_azure_app(function_dir(tmp_path / "fn"), route="score"), target="azure", key="k3y")
    assert server.request("POST", "/api/score", BODY)[0] == 401
    assert server.request("POST", "/api/score", BODY, **{"x-functions-key": "wrong"})[0] == 401
    assert server.request("POST", "/api/score", BODY, **{"x-functions-key": "k3y"})[0] == 200
    assert server.request("POST", "/api/score?code=k3y", BODY)[0] == 200
    assert server.request("GET", "/api/v2/health/ready")[0] == 401
    assert server.request("GET", "/api/health")[0] == 200  # anonymous, as the app declares it
    assert server.request("POST", "/api/predict", BODY, **{"x-functions-key": "k3y"})[0] == 404


def test_exit_reasons_name_the_signal():
    assert "SIGKILL" in handler_child.exit_reason(-9) and "out of memory" in handler_child.exit_reason(-9)
    assert "native crash" in handler_child.exit_reason(-11) and handler_child.exit_reason(3) == "exit code 3"
