"""`modelpack publish --target lambda-image|azure-image`: push the image a build made and smoke-tested."""

from __future__ import annotations

import json
from functools import partial

from modelpack.errors import UsageError
from modelpack.publish.base import Echo, PublishError, PublishOptions, PublishResult, show_call


def _publish(kind: str, options: PublishOptions, echo: Echo) -> PublishResult:
    report = json.loads((options.dist / "report.json").read_text())
    art = next((a for a in report.get("artifacts", []) if a["target"] == kind), None)
    if art is None:
        raise UsageError(f"{options.dist} has no {kind} target; add `- kind: {kind}` to the recipe's targets and build.")
    details = art.get("details") or {}
    repository = options.repository or details.get("push_to")
    if not repository:
        raise UsageError(f"publish --target {kind} needs a destination: pass --repository REGISTRY/REPOSITORY or set "
                         f"`push: REGISTRY/REPOSITORY` on the {kind} target.")
    if not details.get("image"):
        raise UsageError(f"{options.dist}: the {kind} image was not built (only its context); rebuild with "
                         "`modelpack build RECIPE --images` (or `build: true` on the target), then publish.")
    tag = details["tag"]
    result = PublishResult(kind)
    if options.dry_run:
        show_call(echo, "docker", "tag", image=tag, repository=repository, tag=tag.rsplit(":", 1)[1])
        show_call(echo, "docker", "push", repository=repository, tag=tag.rsplit(":", 1)[1])
        return result
    from modelpack.host import engine
    from modelpack.targets import image_push

    client, why = engine.connect()
    if client is None:
        raise PublishError(f"publish --target {kind}: {why}")
    try:
        client.images.get(tag)
    except Exception:
        raise UsageError(f"the engine at DOCKER_HOST has no image {tag}; publish on the machine that built it, or "
                         "rebuild with --images.") from None
    try:
        pushed = image_push.push(client, tag, repository)
    except RuntimeError as exc:
        raise PublishError(str(exc)) from None
    result.resources.update(pushed)
    result.endpoint = None
    result.notes.append(f"deploy the image by digest: {pushed['pinned']}")
    return result


publish_lambda_image = partial(_publish, "lambda-image")
publish_azure_image = partial(_publish, "azure-image")
