"""`modelpack serve` as a user starts it on the shared digits build: the banner lists every route with a curl line
that works as printed (the Azure app's with the function key it prints, requests without it are a 401), GET / is
a JSON description, a non-loopback --host is warned about, and a killed handler process comes back."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from tests.helpers.processes import children, free_port, wait_for_port

pytestmark = pytest.mark.slow


@contextmanager
def serving(dist, *args: str):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modelpack", "serve", str(dist), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, 120)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 130


def banner(proc: subprocess.Popen, until: str = "Routes:") -> list[str]:
    lines = []
    while not any(line.startswith("  GET ") and line.rstrip().endswith("JSON") for line in lines):
        lines.append(proc.stdout.readline().rstrip("\n"))
        assert lines[-1] or proc.poll() is None, lines
    lines.append(proc.stdout.readline().rstrip("\n"))  # the curl line of GET /
    return lines


def get(url: str, **headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("target", ["lambda", "azure"])
def test_every_route_in_the_banner_has_a_curl_line_that_works(digits_dist, target):
    with serving(digits_dist.out, "--target", target) as (proc, port):
        lines = banner(proc)
        curls = [line.strip() for line in lines if line.strip().startswith("curl ")]
        routes = [line for line in lines if re.match(r"^  (GET|POST) ", line)]
        assert len(curls) == len(routes) >= 5, lines
        for curl in curls:
            out = subprocess.run(curl + " -w '\n%{http_code}'", shell=True, capture_output=True, text=True,
                                 timeout=60, check=True).stdout
            assert out.rsplit("\n", 1)[1] == "200", (curl, out[-300:])
        status, body = get(f"http://127.0.0.1:{port}/")
        description = json.loads(body)
        assert status == 200 and description["model"] == "digits" and description["target"] == target
        if target == "azure":
            key = re.search(r"requests need the function key (\S+)", "\n".join(lines)).group(1)
            assert description["auth"]["level"] == "function"
            assert get(f"http://127.0.0.1:{port}/api/score")[0] == 401
            assert get(f"http://127.0.0.1:{port}/api/v2/models/digits")[0] == 401
            assert get(f"http://127.0.0.1:{port}/api/v2/models/digits", **{"x-functions-key": key})[0] == 200
            assert get(f"http://127.0.0.1:{port}/api/score?code={key}")[0] == 405  # GET on the predict route


def test_a_non_loopback_host_is_warned_about(digits_dist):
    with serving(digits_dist.out, "--host", "0.0.0.0") as (proc, port):
        banner(proc)
        assert get(f"http://127.0.0.1:{port}/v2/health/ready")[0] == 200
    assert "warning: --host 0.0.0.0 listens beyond this machine" in " ".join(proc.stderr.read().split())


def test_a_killed_handler_process_comes_back(digits_dist):
    with serving(digits_dist.out) as (proc, port):
        banner(proc)
        assert get(f"http://127.0.0.1:{port}/v2/health/ready")[0] == 200
        (child,) = children(proc.pid, b"import base64")
        os.kill(child, signal.SIGKILL)
        deadline, statuses = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            statuses.append(get(f"http://127.0.0.1:{port}/v2/health/ready")[0])
            if statuses[-1] == 200:
                break
            time.sleep(0.1)
        assert statuses[-1] == 200 and set(statuses) <= {200, 502, 503}, statuses
        log = []
        while not any("is back" in line for line in log):
            log.append(proc.stdout.readline())
        assert any("died: signal SIGKILL" in line for line in log), log


def test_a_function_key_with_non_ascii_characters_is_a_401(digits_dist):
    """Any bytes a client sends as the key (header or query) get the 401 a wrong key gets, never a 500."""
    with serving(digits_dist.out, "--target", "azure", "--function-key", "right-key") as (proc, port):
        banner(proc)
        attempts = [("/api/v2/models/digits", "x-functions-key: \xe9t\xe9".encode()),
                    ("/api/v2/models/digits", b"x-functions-key: \xff\xfe"),
                    ("/api/v2/models/digits?code=%C3%A9t%C3%A9", b""),
                    ("/api/v2/models/digits?code=%FF", b"")]
        for path, header in attempts:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + header
                             + (b"\r\n" if header else b"") + b"\r\n")
                reply = b"".join(iter(lambda: sock.recv(65536), b""))
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 401 "), (path, header, reply[:300])
            assert "send the function key" in json.loads(body)["error"]
        assert get(f"http://127.0.0.1:{port}/api/v2/models/digits", **{"x-functions-key": "right-key"})[0] == 200
