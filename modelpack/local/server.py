"""`modelpack serve`: a local HTTP/1.1 server in front of a built package, for curl, browsers and real clients.

HTTP is spoken by h11, strictly: chunked request bodies are read as such (other transfer codings are a 501),
two different Content-Length values or one that is not ASCII digits are a 400, a request with both
Content-Length and Transfer-Encoding is a 400 (the ambiguity request smuggling lives on), and an error closes
the connection, so a malformed request never desynchronises the next one. Each connection has its thread; the
requests go one at a time to the package's handler in its child process (local/handler_child.py), which is
restarted if it dies. `GET /` describes what is served; an Azure app with `auth_level: function` or `admin` wants
the function key the banner prints (`x-functions-key` header or `code` query parameter), as the deployed app
does. The server listens on loopback unless told otherwise.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

import h11

from modelpack.errors import UsageError
from modelpack.local.handler_child import Answer, Package, Supervisor, Unavailable, unpack
from modelpack.local.serve_routes import Routes, is_loopback

MAX_BODY = 64 * 1024 * 1024  # the platforms' own limits are far lower; the handler enforces the package's
MAX_HEADERS = 64 * 1024
IDLE_S = 120  # an idle keep-alive connection is closed after this long
JSON_TYPE = "application/json"


def _json(status: int, obj: dict, **headers: str) -> Answer:
    return Answer(status, {"content-type": JSON_TYPE, **headers}, json.dumps(obj, allow_nan=False).encode())


class RequestTooLarge(Exception):
    pass


class Server:
    """Accepts connections on (host, port) and answers each request through `answer(method, target, headers,
    body)`; stops when `close()` is called or `serve_forever` is interrupted."""

    def __init__(self, host: str, port: int, answer: Callable[[str, str, dict, bytes], Answer],
                 log: Callable[[str], None] | None = None):
        try:
            families = [info[0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
            family = socket.AF_INET if socket.AF_INET in families else families[0]  # localhost: 127.0.0.1 first
            self.sock = socket.create_server((host, port), family=family, reuse_port=False)
        except (OSError, UnicodeError) as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({getattr(exc, 'strerror', None) or exc}); choose "
                             "another --host or --port.") from None
        self.address = self.sock.getsockname()
        self.answer, self.log = answer, log or (lambda line: None)
        self._closed = threading.Event()

    def serve_forever(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self._closed.is_set():
                    return
                raise
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _connection(self, sock: socket.socket) -> None:
        sock.settimeout(IDLE_S)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        try:
            while not self._closed.is_set():
                try:
                    request = self._read(conn, sock)
                except h11.RemoteProtocolError as exc:
                    self._refuse(conn, sock, exc.error_status_hint, f"malformed HTTP/1.1 request: {exc}")
                    return
                except RequestTooLarge as exc:
                    self._refuse(conn, sock, 413, str(exc))
                    return
                if request is None:
                    return
                event, body = request
                method, target = event.method.decode("ascii", "replace"), event.target.decode("latin-1")
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                start = time.perf_counter()
                try:
                    answer = self.answer(method, target, headers, body)
                except Exception as exc:  # never a dropped connection: the client gets a JSON 500
                    answer = _json(500, {"error": f"modelpack serve failed: {type(exc).__name__}: {exc}"})
                self.log(f"{method} {target[:200]} -> {answer.status} ({(time.perf_counter() - start) * 1e3:.1f} ms)")
                self._send(conn, sock, answer, head=method == "HEAD")
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (OSError, h11.LocalProtocolError):
            return  # the client went away, or its connection cannot go on
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _read(self, conn: h11.Connection, sock: socket.socket) -> tuple[h11.Request, bytes] | None:
        request, chunks, size = None, [], 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if request is not None and conn.they_are_waiting_for_100_continue:
                    sock.sendall(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                try:
                    data = sock.recv(256 * 1024)
                except TimeoutError:
                    if request is None:
                        return None  # an idle keep-alive connection
                    raise
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                names = {name.lower() for name, _ in event.headers}
                if b"content-length" in names and b"transfer-encoding" in names:
                    raise h11.RemoteProtocolError("both Content-Length and Transfer-Encoding", error_status_hint=400)
                length = next((int(v) for k, v in event.headers if k.lower() == b"content-length"), 0)
                if length > MAX_BODY:
                    raise RequestTooLarge(f"request body of {length} bytes; modelpack serve takes at most {MAX_BODY}")
                request = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    raise RequestTooLarge(f"request body over {MAX_BODY} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return request, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    def _send(self, conn: h11.Connection, sock: socket.socket, answer: Answer, head: bool = False) -> None:
        skip = ("content-length", "connection", "transfer-encoding")
        headers = [("-".join(p.capitalize() for p in k.split("-")), v) for k, v in answer.headers.items()
                   if k.lower() not in skip]
        headers.append(("Content-Length", str(len(answer.body))))
        if self._closed.is_set():
            headers.append(("Connection", "close"))
        sock.sendall(conn.send(h11.Response(status_code=answer.status, headers=headers, reason=_reason(answer.status))))
        sock.sendall((b"" if head else conn.send(h11.Data(data=answer.body))) + conn.send(h11.EndOfMessage()))

    def _refuse(self, conn: h11.Connection, sock: socket.socket, status: int, message: str) -> None:
        self.log(f"refused a request: {status} {message}")
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = json.dumps({"error": message}, allow_nan=False).encode()
        with contextlib.suppress(OSError, h11.LocalProtocolError):
            sock.sendall(conn.send(h11.Response(status_code=status, reason=_reason(status), headers=[
                ("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))), ("Connection", "close")])))
            sock.sendall(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def answerer(supervisor: Supervisor, routes: Routes, key: str | None) -> Callable[[str, str, dict, bytes], Answer]:
    """What the server does with one request: describe, authenticate, then hand it to the handler process."""

    def answer(method: str, target: str, headers: dict, body: bytes) -> Answer:
        path, _, query = target.partition("?")
        if path in ("", "/") and method == "GET":
            return _json(200, routes.description())
        if key is not None and routes.needs_key(path):
            given = headers.get("x-functions-key") or (parse_qs(query).get("code") or [None])[0]
            # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500).
            if not given or not secrets.compare_digest(given.encode("utf-8", "surrogatepass"), key.encode()):
                return _json(401, {"error": f"this app's auth_level is {routes.auth_level}: send the function key "
                                            "modelpack serve printed, as the x-functions-key header or the code "
                                            "query parameter"})
        try:
            return supervisor.call(method, path, query, headers, body)
        except Unavailable as exc:
            return _json(exc.status, {"error": str(exc)}, **({"retry-after": "1"} if exc.status == 503 else {}))

    return answer


def serve(dist: Path, target: str, host: str, port: int, echo=print, warn=None, function_key: str | None = None
          ) -> None:
    """Run until interrupted."""
    import tempfile

    warn = warn or (lambda line: print(line, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="modelpack-serve-") as tmp:
        package: Package = unpack(dist, target, Path(tmp))
        routes = Routes(dist, package)
        key = (function_key or secrets.token_urlsafe(32)) if routes.auth_level in ("function", "admin") else None
        supervisor = Supervisor(package, log=lambda line: echo(line))
        try:
            server = Server(host, port, answerer(supervisor, routes, key), log=lambda line: echo(line))
            for line in routes.banner(host, server.address[1], key):
                echo(line)
            if not is_loopback(host):
                warn(f"warning: --host {host} listens beyond this machine: anyone who can reach it on port "
                     f"{server.address[1]} can call the model{' (with the function key above)' if key else ''}. "
                     "modelpack serve is for trying a package, not for production traffic.")
            sys.stdout.flush()
            try:
                server.serve_forever()
            finally:
                server.close()
        finally:
            supervisor.close()
