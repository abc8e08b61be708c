"""How a Lambda target is reached over HTTP: the `endpoint`, `auth` and `cors` options of its template."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modelpack.recipe.base import Strict

Endpoint = Literal["function-url", "http-api", "none"]


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
    route: str = Field("predict", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}$",
                       description="POST route of the HTTP API (endpoint: http-api).")

    @model_validator(mode="after")
    def _endpoint_options(self) -> EndpointOptions:
        endpoint = getattr(self, "endpoint", None)
        if endpoint == "none" and self.cors is not None:
            raise ValueError("cors needs an endpoint; drop cors or set endpoint: function-url or http-api")
        if endpoint == "none" and self.auth == "none":
            raise ValueError("auth: none opens an endpoint, but endpoint is none; drop auth or choose an endpoint")
        return self
