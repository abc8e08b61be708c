"""Processes and ports: the children a test's own process started, free loopback ports, waiting for a server."""

from __future__ import annotations

import socket
import time
from pathlib import Path


def children(parent: int, marker: bytes = b"") -> list[int]:
    """Pids whose parent is `parent` and whose command line holds `marker`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # the name in parentheses may hold spaces
            if ppid == parent and marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    """Return once something listens on loopback `port` (a server a test started)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")
