"""The recipe's `targets[]` entries: one pydantic model per target kind, and their discriminated union.

They live with the recipe, not with the target implementations, so reading and validating a recipe loads
no packaging code; each module under modelpack.targets builds from the spec of its kind defined here.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from modelpack import limits
from modelpack.recipe.base import Strict
from modelpack.recipe.endpoint import ROUTE, Endpoint, EndpointOptions, checked_route

PythonVersion = Literal["3.10", "3.11", "3.12", "3.13", "3.14"]
S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]+)$")
BLOB_URL = re.compile(r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/(?P<container>[a-z0-9-]{3,63})"
                      r"/(?P<blob>[^\s?]+)(\?.*)?$")
LambdaMemory = Annotated[int, Field(ge=limits.LAMBDA_MEMORY_MB[0], le=limits.LAMBDA_MEMORY_MB[1])]


class TargetSpecBase(Strict):
    """Recipe options common to every target; subclasses add `kind: Literal[...]` and their own fields."""

    kind: str

    def identity(self) -> str:
        """What makes two targets of one kind different (duplicates are refused)."""
        return self.kind


class LambdaLayerSpec(TargetSpecBase):
    """A Lambda layer zip with the runtime under python/ (and optionally the model under model/)."""

    kind: Literal["lambda-layer"]
    python: PythonVersion = Field("3.12", description="Lambda Python runtime the layer is built for.")
    arch: Literal["x86_64", "arm64"] = Field("x86_64", description="Lambda architecture.")
    runtime: Literal["onnxruntime", "litert"] | None = Field(
        None, description="Inference runtime; default: the one the selected variant's format needs."
    )
    versions: dict[str, str] = Field(default_factory=dict, description="Pinned versions, e.g. {onnxruntime: 1.16.3}.")
    model_in: Literal["layer", "function"] = Field("function", description="Ship the model in the layer or the function.")
    interpreter: str | None = Field(
        None, description="Python of the target version, for bytecode and verification; default: found on PATH/pyenv."
    )

    def identity(self) -> str:
        return f"lambda-layer({self.python}, {self.arch})"


class ResultCacheSpec(Strict):
    """Recent predictions per input hash, in the execution environment or shared through Redis."""

    kind: Literal["memory", "redis"] = Field(description="memory: per environment; redis: shared through REDIS_URL.")
    max_items: int = Field(1024, ge=1, le=10_000_000, description="Entries kept (memory), least recently used evicted.")
    ttl_s: int = Field(300, ge=1, le=30 * 86_400, description="Seconds an entry is served.")


class ResponseSpec(TargetSpecBase):
    """Limits and extras of the responses a target's handler gives, the same for every serving target."""

    top_k: int | None = Field(None, ge=1, le=100, description="Add the top-k classes to responses (classification).")
    max_batch: int = Field(64, ge=1, le=100_000, description="Largest batch one request may send.")

    def response_options(self) -> dict:
        """The handler config entries these fields become (modelpack.json)."""
        return {"top_k": self.top_k, "max_batch": self.max_batch}


class ServedSpec(ResponseSpec):
    """Options of targets whose handler serves the model."""

    SOURCE: ClassVar[tuple[re.Pattern, str]] = (S3_URL, "s3://bucket/key")

    model_source: str | None = Field(
        None, description="Download the model at cold start from object storage instead of packaging it "
                          "(Lambda: s3://bucket/key; Azure: https://<account>.blob.core.windows.net/<container>/<blob>).")
    upload: bool = Field(False, description="Upload the selected model to model_source during the build.")
    cache: ResultCacheSpec | None = Field(None, description="Cache recent predictions per input; off unless given.")

    @field_validator("model_source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        pattern, example = cls.SOURCE
        if v is not None and not pattern.match(v):
            raise ValueError(f"'{v}' is not a model source of this target; write {example}")
        return v

    @model_validator(mode="after")
    def _upload_needs_source(self) -> ServedSpec:
        if self.upload and not self.model_source:
            raise ValueError("upload: true needs model_source (where to upload the model)")
        return self


class MonitoringSpec(Strict):
    """CloudWatch alarms and a dashboard for the function, added to template.yaml."""

    alarms: bool = Field(True, description="Alarms on errors, throttles, p99 duration, cold-start rate and model load time.")
    dashboard: bool = Field(True, description="A CloudWatch dashboard with the function's and the handler's metrics.")
    topic: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$",
                              description="SNS topic ARN the alarms notify; default: alarms without actions.")
    p99_ms: float | None = Field(None, gt=0, description="p99 Duration alarm threshold, ms; default: the recipe's "
                                 "max_p99_ms, else max_p95_ms budget (no alarm without either).")
    cold_start_rate: float = Field(0.2, gt=0, le=1, description="Alarm when this share of invocations starts cold (15 min).")
    model_load_ms: float = Field(5000, gt=0, description="Alarm when a cold start's ModelLoadMs exceeds this.")


class LambdaFunctionSpec(ServedSpec, EndpointOptions):
    """A Lambda function zip whose handler serves the selected variant."""

    kind: Literal["lambda-function"]
    endpoint: Endpoint = Field("function-url", description="How the template exposes the function over HTTP: a "
                               "function URL, an API Gateway HTTP API, or none.")
    load: Literal["lazy", "init"] = Field("lazy", description="Load the model on first request, or at init.")
    memory_mb: LambdaMemory | Literal["auto"] = Field(
        1024, description="MemorySize; 'auto' takes the balanced recommendation of measure.memory."
    )
    timeout_s: int = Field(30, ge=1, le=limits.LAMBDA_TIMEOUT_S, description="Timeout in seconds.")
    sam: bool = Field(True, description="Write template.yaml (AWS SAM) for the layer and the function.")
    provisioned_concurrency: int | None = Field(None, ge=1, description="ProvisionedConcurrencyConfig in the template.")
    warmer_schedule: str | None = Field(
        None, pattern=r"^(rate|cron)\(.+\)$", description="Schedule event that keeps the function warm, e.g. rate(5 minutes)."
    )
    monitoring: MonitoringSpec | None = Field(None, description="CloudWatch alarms and dashboard in template.yaml; off "
                                              "unless given.")
    snapstart: bool = Field(False, description="Lambda SnapStart (python3.12+): published versions resume from a "
                            "snapshot taken after the handler imported everything, loaded and verified the model and "
                            "answered a shipped sample; AutoPublishAlias live in the template.")

    @model_validator(mode="after")
    def _snapstart_compatible(self) -> LambdaFunctionSpec:
        if self.snapstart and self.provisioned_concurrency:
            raise ValueError("snapstart and provisioned_concurrency cannot both be set: Lambda refuses SnapStart on a "
                             "function version with provisioned concurrency. Keep one (modelpack tune weighs them "
                             "against the observed traffic).")
        return self


class LambdaSplitSpec(ResponseSpec, EndpointOptions):
    """Lambda packaging of a split model (needs optimize.split and a lambda-layer target)."""

    kind: Literal["lambda-split"]
    endpoint: Endpoint | None = Field(
        None, description="function-url or http-api on the function (single layout), http-api to the state machine "
                          "(per-part layout), or none; default: function-url (single), http-api (per-part).")
    layout: Literal["single", "per-part"] = Field(
        "single", description="single: one function runs every part; per-part: a function per part chained by "
                              "a Step Functions state machine.")
    parts_in: Literal["function", "layers"] = Field(
        "function", description="single layout: parts inside the function zip, or one Lambda layer per part.")
    memory_mb: LambdaMemory = Field(1024, description="MemorySize of each function.")
    timeout_s: int = Field(30, ge=1, le=limits.LAMBDA_TIMEOUT_S, description="Timeout of each function, seconds.")

    def identity(self) -> str:
        return f"lambda-split({self.layout})"

    @model_validator(mode="after")
    def _state_machine_endpoint(self) -> LambdaSplitSpec:
        if self.layout == "per-part" and self.endpoint == "function-url":
            raise ValueError("a per-part layout is called through its state machine, which has no function URL; "
                             "use endpoint: http-api (or none)")
        return self

    def effective_endpoint(self) -> str:
        return self.endpoint or ("http-api" if self.layout == "per-part" else "function-url")


class AzureFunctionsSpec(ServedSpec):
    """An Azure Functions (Linux, Python v2 model) app folder and its deployment zip."""

    SOURCE: ClassVar = (BLOB_URL, "https://<account>.blob.core.windows.net/<container>/<blob>")

    kind: Literal["azure-functions"]
    python: Literal[limits.AZURE_PYTHONS] = Field("3.11", description="Functions Python version.")  # type: ignore[valid-type]
    route: str = Field("predict", pattern=ROUTE, description="POST route under /api/.")
    auth_level: Literal["anonymous", "function", "admin"] = Field("function", description="HTTP auth level.")
    app_name: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{2,60}$", description="Function app name (for docs).")
    max_request_mb: float = Field(10, gt=0, le=100, description="Larger request bodies get 413.")
    versions: dict[str, str] = Field(default_factory=dict, description="Pinned runtime versions.")
    interpreter: str | None = Field(None, description="Python of the target version, for bytecode and verification.")

    def identity(self) -> str:
        return f"azure-functions({self.python})"

    @field_validator("route")
    @classmethod
    def _route(cls, v: str) -> str:
        return checked_route(v, azure=True)


class ImageSpecBase(ResponseSpec):
    """Options shared by both container images."""

    python: Literal["3.10", "3.11", "3.12", "3.13"] = Field("3.12", description="Python version of the base image.")
    base_image: str | None = Field(None, description="Base image; default: the platform's official Python image.")
    glibc: str | None = Field(None, pattern=r"^2\.\d{2}$", description="glibc of the base image, e.g. '2.36'; "
                              "default: known for the official bases, else 2.28.")
    build: bool | Literal["required"] = Field(
        False, description="Build and smoke-test the image; 'required' fails the build when no engine answers."
    )
    versions: dict[str, str] = Field(default_factory=dict, description="Pinned runtime versions.")
    push: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9.-]*(:[0-9]{1,5})?/[a-z0-9][a-z0-9._/-]*$",
        description="Push the built image to <registry>/<repository> (tagged with the build's version); the report "
                    "records the pushed digest.")

    def identity(self) -> str:
        return f"{self.kind}({self.python})"


class LambdaImageSpec(ImageSpecBase):
    """A Lambda container image (up to 10 GB)."""

    kind: Literal["lambda-image"]
    snapstart: bool = Field(False, description="Refused: Lambda SnapStart does not run container images.")

    @field_validator("snapstart")
    @classmethod
    def _no_snapstart(cls, v: bool) -> bool:
        if v:
            raise ValueError("Lambda SnapStart does not support container images; package the model as a "
                             "lambda-function target (zip, python3.12 or later) to use snapstart: true")
        return v


class AzureImageSpec(ImageSpecBase):
    """An Azure Functions container image (Premium, Dedicated, Container Apps)."""

    kind: Literal["azure-image"]
    route: str = Field("predict", pattern=ROUTE, description="POST route under /api/.")
    auth_level: Literal["anonymous", "function", "admin"] = Field("function", description="HTTP auth level.")

    @field_validator("route")
    @classmethod
    def _route(cls, v: str) -> str:
        return checked_route(v, azure=True)


# Every target kind and its options, in build order (layers before the functions that use them);
# modelpack.targets.catalog registers one implementation per kind.
TARGET_SPECS: dict[str, type[TargetSpecBase]] = {
    "lambda-layer": LambdaLayerSpec,
    "lambda-function": LambdaFunctionSpec,
    "lambda-split": LambdaSplitSpec,
    "azure-functions": AzureFunctionsSpec,
    "lambda-image": LambdaImageSpec,
    "azure-image": AzureImageSpec,
}
TargetSpec = Annotated[
    LambdaLayerSpec | LambdaFunctionSpec | LambdaSplitSpec | AzureFunctionsSpec | LambdaImageSpec | AzureImageSpec,
    Field(discriminator="kind"),
]
