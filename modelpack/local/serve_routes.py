"""What `modelpack serve` tells a user about the package it serves: the routes with a curl line each (as
`func start` lists its functions), the JSON answer of `GET /`, and which paths want the Azure function key."""

from __future__ import annotations

import ipaddress
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path

from modelpack.local.handler_child import Package

FORMATS = ["application/json (TensorFlow Serving: instances or inputs)", "application/x-npy", "application/x-npz"]
IMAGE_FORMATS = ["image/jpeg", "image/png", "multipart/form-data (file fields)",
                 'application/json with {"b64": ...} instances']


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    what: str
    curl: str  # the request's options after the URL (empty for a plain GET)


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is on this machine only (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


class Routes:
    def __init__(self, dist: Path, package: Package):
        self.dist, self.package = dist, package
        config = package.config
        self.name = str(config.get("name", dist.name))
        azure = config.get("azure") if isinstance(config.get("azure"), dict) else {}
        self.azure = package.target == "azure"
        self.route = str(config.get("route") or azure.get("route") or "predict").strip("/")
        self.auth_level = str(azure.get("auth_level", "function")) if self.azure else None
        self.image = bool(config.get("image"))
        self.prefix = "/api" if self.azure else ""

    def needs_key(self, path: str) -> bool:
        if self.auth_level not in ("function", "admin"):
            return False
        return path.rstrip("/") not in ("/api/health", "/health", "")

    def _event(self, name: str) -> str | None:
        path = self.dist / "events" / name
        return shlex.quote(str(path)) if path.is_file() else None

    def routes(self) -> list[Route]:
        p, name = self.prefix, self.name
        predict = f"{p}/{self.route}"
        found = []
        for file, ctype in (("predict.json", "application/json"), ("predict.npy", "application/x-npy")):
            event = self._event(file)
            if event:
                found.append(Route("POST", predict, f"TensorFlow Serving predict ({ctype})",
                                   f"-H 'content-type: {ctype}' --data-binary @{event}"))
        image = self._event("image.png")
        if self.image and image:
            found.append(Route("POST", predict, "an image upload (multipart/form-data; image/png and image/jpeg "
                                                "bodies too)", f"-F image=@{image}"))
        if not found:
            found.append(Route("POST", predict, "TensorFlow Serving predict", "-H 'content-type: application/json' "
                                                                            "-d '{\"instances\": [...]}'"))
        oip = self._event("oip.json")
        found.append(Route("POST", f"{p}/v2/models/{name}/infer", "Open Inference Protocol inference",
                           f"-H 'content-type: application/json' --data-binary @{oip}" if oip else
                           "-H 'content-type: application/json' -d '{\"inputs\": [...]}'"))
        found += [Route("GET", f"{p}/v2/health/ready", "readiness (loads the model)", ""),
                  Route("GET", f"{p}/v2/models/{name}", "model metadata (inputs, outputs)", "")]
        if self.azure:
            found.append(Route("GET", "/api/health", "the app's health check (anonymous)", ""))
        found.append(Route("GET", "/", "this list, as JSON", ""))
        return found

    def description(self) -> dict:
        config = self.package.config
        return {"model": self.name, "variant": config.get("variant"), "target": self.package.target,
                "inputs": [{k: spec.get(k) for k in ("name", "shape", "dtype")} for spec in config.get("inputs", [])],
                "outputs": [{k: spec.get(k) for k in ("name", "shape", "dtype")} for spec in config.get("outputs", [])],
                "max_batch": config.get("max_batch"), "formats": FORMATS + (IMAGE_FORMATS if self.image else []),
                "routes": [{"method": r.method, "path": r.path, "what": r.what} for r in self.routes()],
                "auth": ({"level": self.auth_level, "key": "x-functions-key header or code query parameter"}
                         if self.auth_level in ("function", "admin") else None)}

    def banner(self, host: str, port: int, key: str | None) -> list[str]:
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}"
        what = "Azure function app" if self.azure else "Lambda function"
        lines = [f"serving {self.dist} ({what} '{self.name}', {self.package.config.get('variant')}) on {base}  "
                 "(Ctrl-C stops)"]
        auth = ""
        if key is not None:
            lines.append(f"auth_level {self.auth_level}: requests need the function key {key}")
            auth = f"-H 'x-functions-key: {key}' "
        lines.append("Routes:")
        for r in self.routes():
            lines.append(f"  {r.method:<4} {base}{r.path}  {r.what}")
            needs = auth if self.needs_key(r.path) and r.path != "/" else ""
            lines.append(f"       curl -s {base}{r.path} {needs}{r.curl}".rstrip())
        if self.azure:
            lines.append("The app's paths also work without their /api prefix.")
        return lines
