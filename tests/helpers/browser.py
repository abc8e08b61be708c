"""Load a page in headless Chromium with every request the browser makes routed through a recording proxy.

The page is served as http://report.test/<name>; the proxy answers that one URL from disk and refuses everything
else (404 for plain http, 403 for CONNECT), recording each request. So a page that asks for anything besides
itself (a relative image, a web font, a CDN script) shows up in `requests`, and cannot silently succeed.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.services import need

HOST = "report.test"


def chromium() -> str:
    return shutil.which("chromium-browser") or need("chromium", "the browser tests")


@dataclass
class Visit:
    dom: str
    screenshot: Path
    pdf: Path
    requests: list[str] = field(default_factory=list)  # every request the page made, "METHOD url"
    background: list[str] = field(default_factory=list)  # the browser's own (update checks), not the page's


def _proxy(page: Path, seen: list[tuple[str, bool]]) -> http.server.ThreadingHTTPServer:
    body = page.read_bytes()

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            # A page's requests name it as Referer (or are for its own host); Chromium's own update and
            # clock checks carry neither.
            mine = bool(self.headers.get("Referer")) or self.path.startswith(f"http://{HOST}/")
            seen.append((f"{self.command} {self.path}", mine))
            if self.path == f"http://{HOST}/{page.name}":
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def do_CONNECT(self):  # noqa: N802
            seen.append((f"CONNECT {self.path}", self.path.startswith(HOST)))
            self.send_error(403)

        do_POST = do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def visit(page: Path, out_dir: Path, width: int = 1280, height: int = 2400) -> Visit:
    """DOM after load, a full screenshot, and a print to PDF (which applies the @media print rules)."""
    seen: list[tuple[str, bool]] = []
    server = _proxy(page, seen)
    url = f"http://{HOST}/{page.name}"
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--metrics-recording-only", "--mute-audio",
            f"--proxy-server=http://127.0.0.1:{server.server_address[1]}", "--proxy-bypass-list=<-loopback>",
            f"--user-data-dir={out_dir / 'chromium-profile'}", "--virtual-time-budget=3000"]
    shot, pdf = out_dir / f"{page.stem}-screenshot.png", out_dir / f"{page.stem}-print.pdf"
    try:
        dom = _run(base + ["--dump-dom", url]).stdout
        _run(base + [f"--window-size={width},{height}", f"--screenshot={shot}", url])
        _run(base + ["--no-pdf-header-footer", f"--print-to-pdf={pdf}", url])
    finally:
        server.shutdown()
        server.server_close()
    return Visit(dom=dom, screenshot=shot, pdf=pdf, requests=[r for r, mine in seen if mine],
                 background=[r for r, mine in seen if not mine])


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result

def check_in_browser(page, tmp_path, charts=("report", "cold", "memory")) -> None:
    """Chromium loads `page` asking for nothing but the page itself, renders every section and chart, prints."""
    seen = visit(page, tmp_path)
    print(f"\nreport.html screenshot: {seen.screenshot}\nprinted: {seen.pdf}")
    assert seen.requests == [f"GET http://report.test/{page.name}"] * 3, seen.requests  # no other, none failed
    sections = ["variants", "budgets", "artifacts"] + (["memory"] if "memory" in charts else [])
    for anchor in [f'id="{s}"' for s in sections] + [f'id="{c}-chart"' for c in charts]:
        assert anchor in seen.dom
    assert seen.dom.count("src=\"data:image/png;base64,") == len(charts)
    assert seen.screenshot.read_bytes()[:4] == b"\x89PNG" and seen.screenshot.stat().st_size > 50_000
    assert seen.pdf.read_bytes()[:5] == b"%PDF-"


def solid_runs(png: Path, colour: str, min_width: int = 30, tolerance: int = 6) -> list[tuple[int, int, int]]:
    """(row, first column, last column) of every horizontal run of at least `min_width` pixels of `colour`
    (#rrggbb, each channel within `tolerance`) in a screenshot: the bars and lines a person sees."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    want = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    match = np.all(np.abs(pixels - want) <= tolerance, axis=2)
    runs = []
    for y in np.flatnonzero(match.any(axis=1)):
        row = np.concatenate([[0], match[y].astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(row))
        runs += [(int(y), int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_width]
    return runs


def bars(png: Path, colour: str, min_height: int = 6, min_width: int = 3) -> list[tuple[int, int, int, int]]:
    """Solid rectangles of `colour` (top, bottom, left, right), from rows of equal runs stacked together."""
    found: list[list[int]] = []
    for y, x0, x1 in sorted(solid_runs(png, colour, min_width=min_width)):
        last = found[-1] if found else None
        if last and y == last[1] + 1 and abs(x0 - last[2]) <= 1 and abs(x1 - last[3]) <= 1:
            last[1] = y
        else:
            found.append([y, y, x0, x1])
    return [tuple(b) for b in found if b[1] - b[0] + 1 >= min_height]
