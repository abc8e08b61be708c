"""A container engine through the Docker SDK: reachability, builds with streamed logs, smoke runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# Lambda runs a container image as a non-root user. Smoke runs use a uid:gid that exists nowhere in the image
# (no passwd entry, no home), so a file the image's user cannot read fails the build here, not in the cloud.
NON_ROOT_USER = "993:993"


def connect() -> tuple[Any | None, str]:
    """(client, "") when an engine answers at DOCKER_HOST or the default socket, else (None, why not)."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client, ""
    except Exception as exc:  # any failure to reach the engine is reported, not raised
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, f"no container engine answered at DOCKER_HOST or the default socket ({text})"


def build(client: Any, context: Path, tag: str, log) -> dict:
    """Build `context` as `tag`, streaming the build log to `log(line)`; return id, size and seconds."""
    from docker.errors import APIError, BuildError

    t = time.perf_counter()
    try:
        for chunk in client.api.build(path=str(context), tag=tag, rm=True, decode=True, network_mode="none"):
            if "stream" in chunk and chunk["stream"].strip():
                log(chunk["stream"].rstrip())
            if "error" in chunk:
                raise BuildError(chunk["error"], [])
    except (APIError, BuildError) as exc:
        raise RuntimeError(f"the image build failed: {str(exc)[:300]}") from None
    image = client.images.get(tag)
    return {"image_id": image.id, "size_bytes": int(image.attrs.get("Size", 0)), "build_s": round(time.perf_counter() - t, 2)}


def run(client: Any, tag: str, command: list[str], entrypoint: str = "python3",
        files: Path | None = None, user: str = NON_ROOT_USER) -> tuple[str, float]:
    """Run `command` as `user` in a fresh container with networking disabled (and `files` mounted read-only
    at /modelpack-smoke); return its output and seconds."""
    from docker.errors import ContainerError

    t = time.perf_counter()
    volumes = {str(files): {"bind": "/modelpack-smoke", "mode": "ro"}} if files else None
    try:
        out = client.containers.run(tag, command, entrypoint=entrypoint, network_mode="none", remove=True,
                                    stdout=True, stderr=True, volumes=volumes, user=user)
    except ContainerError as exc:  # a non-zero exit: the caller reads what it printed and says why
        out = exc.stderr or f"exit status {exc.exit_status}".encode()
    return out.decode(errors="replace"), time.perf_counter() - t
