"""What every publish target takes and returns, and how a planned call is shown in a dry run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelpack.errors import EXIT_BUDGET, ModelpackError, UsageError


class PublishError(ModelpackError):
    """The cloud (or registry) refused a call; nothing modelpack wrote locally changed."""


class ServiceRefused(PublishError):
    """The cloud service refused a call: the command ran and the service said no, so, like a failed check, exit 1
    with the service's own message and what publish had created before."""

    exit_code = EXIT_BUDGET


@dataclass(frozen=True)
class PublishOptions:
    dist: Path
    function_name: str | None = None
    region: str | None = None
    s3_bucket: str | None = None
    role: str | None = None
    alias: str = "live"
    repository: str | None = None
    dry_run: bool = False


@dataclass
class PublishResult:
    """What was published: the endpoint (if any), the identifiers, and what the user must still do."""

    target: str
    endpoint: str | None = None
    resources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Echo = Callable[[str], None]


def show_call(echo: Echo, service: str, operation: str, **params) -> None:
    """One planned API call as a dry run prints it: `lambda.create_function FunctionName=... MemorySize=...`."""
    shown = " ".join(f"{k}={_short(v)}" for k, v in params.items())
    echo(f"{service}.{operation} {shown}".rstrip())


def _short(value) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if hasattr(value, "read"):  # an open file, streamed by the call
        return f"<{Path(value.name).name}>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def dist_file(dist: Path, rel: str, what: str) -> Path:
    path = dist / rel
    if not path.is_file():
        raise UsageError(f"{dist}: {rel} is missing, so there is no {what} to publish. Build a recipe with that "
                         f"target first (modelpack build RECIPE --out {dist}) and publish its output folder.")
    return path
