"""Push a built image to `<registry>/<repository>` through the Docker SDK and return the pushed digest."""

from __future__ import annotations

import re
from typing import Any

DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def destination(repository: str, tag: str) -> tuple[str, str]:
    """(repository, tag) for pushing the image tagged `tag` (name:version) to `repository`."""
    return repository, tag.rsplit(":", 1)[1]


def push(client: Any, tag: str, repository: str) -> dict:
    """Tag `tag` as repository:version, push it, and return reference and digest; RuntimeError says why not."""
    repo, version = destination(repository, tag)
    client.images.get(tag).tag(repo, version)
    registry = repo.split("/", 1)[0].rsplit(":", 1)[0]
    # Docker treats loopback registries as plain HTTP already; podman's Docker API needs to be told.
    params = {"tag": version, **({"tlsVerify": "false"} if registry in LOOPBACK else {})}
    api = client.api
    response = api._post(api._url("/images/{0}/push", repo), params=params, stream=True,
                         headers={"X-Registry-Auth": "e30="})  # "{}": credentials come from the engine's own config
    api._raise_for_status(response)
    digest = None
    for chunk in api._stream_helper(response, decode=True):
        if "error" in chunk:
            raise RuntimeError(f"pushing {repo}:{version} failed: {str(chunk['error'])[:300]}")
        digest = (chunk.get("aux") or {}).get("Digest") or digest
        found = DIGEST.search(str(chunk.get("status", "")))
        digest = found.group(1) if found else digest
    if digest is None:
        raise RuntimeError(f"pushing {repo}:{version} ended without a digest from the registry")
    return {"reference": f"{repo}:{version}", "digest": digest, "pinned": f"{repo}@{digest}"}
