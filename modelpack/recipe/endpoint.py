"""How a Lambda target is reached over HTTP: the `endpoint`, `auth` and `cors` options of its template."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from modelpack.recipe.base import Strict

Endpoint = Literal["function-url", "http-api", "none"]
ROUTE = r"^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}$"
OIP_HEADS = ("health", "models")


def route_problem(route: str, azure: bool = False) -> str | None:
    """Why a predict `route` cannot work, or None. Handlers match routes segment by segment and answer the Open
    Inference Protocol themselves under a `v2` segment followed by health or models (or nothing), so a route
    may not be one of those paths; an Azure app's own functions also take /api/v2/... and /api/health."""
    segments = route.split("/")
    if "" in segments:
        return f"route '{route}' has an empty path segment (a leading, trailing or doubled /); write it as a/b/c"
    for i, segment in enumerate(segments):
        if segment == "v2" and (i + 1 == len(segments) or segments[i + 1] in OIP_HEADS):
            return (f"route '{route}' is an Open Inference Protocol path (/v2, /v2/health/..., /v2/models/...), "
                    "which the handler answers itself; choose a route that is not one, e.g. ml/v2/predict")
    if azure and segments[0] == "v2":
        return (f"route '{route}' lies under /api/v2/, which the app's Open Inference Protocol function takes "
                "whole; choose a route outside it, e.g. ml/v2/predict")
    if azure and route == "health":
        return "route 'health' is the app's health check (/api/health); choose another route"
    return None


def checked_route(route: str, azure: bool = False) -> str:
    problem = route_problem(route, azure)
    if problem is not None:
        raise ValueError(problem)
    return route


class CorsSpec(Strict):
    """Cross-origin settings of the endpoint (browsers calling it directly)."""

    allow_origins: list[str] = Field(min_length=1, description="Origins allowed to call, e.g. [https://example.org].")
    allow_methods: list[Literal["POST", "GET", "*"]] = Field(
        default_factory=lambda: ["POST"], description="HTTP methods allowed cross-origin.")
    allow_headers: list[str] = Field(default_factory=lambda: ["content-type"], description="Request headers allowed.")
    max_age_s: int = Field(300, ge=0, le=86_400, description="Seconds a browser may cache the preflight answer.")


class EndpointOptions(Strict):
    """Mixin of the Lambda targets whose template exposes the model over HTTP."""

    auth: Literal["iam", "none"] = Field(
        "iam", description="iam: callers sign requests with AWS credentials (SigV4); none: anyone with the URL may "
                           "call (explicit opt-in).")
    cors: CorsSpec | None = Field(None, description="CORS settings of the endpoint; off unless given.")
    route: str = Field("predict", pattern=ROUTE,
                       description="POST route the handler predicts on (also a function URL's root); the HTTP "
                                   "API's route with endpoint: http-api.")

    @field_validator("route")
    @classmethod
    def _route(cls, v: str) -> str:
        return checked_route(v)

    @model_validator(mode="after")
    def _endpoint_options(self) -> EndpointOptions:
        endpoint = getattr(self, "endpoint", None)
        if endpoint == "none" and self.cors is not None:
            raise ValueError("cors needs an endpoint; drop cors or set endpoint: function-url or http-api")
        if endpoint == "none" and self.auth == "none":
            raise ValueError("auth: none opens an endpoint, but endpoint is none; drop auth or choose an endpoint")
        return self
