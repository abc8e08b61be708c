"""The recipe's `serving` section: how handlers turn requests other than tensors into the model's input."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from modelpack.recipe.base import Strict, resolve_path

FAST_DECODERS_MIN_NUMBERS = 4096  # fast_decoders: auto ships them for inputs this big (64x64 pixels) or images
IMAGE_MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes to 120 MB of RGB; bigger is refused by default


class ImageSpec(Strict):
    """Accept image/jpeg and image/png bodies (and {"b64": ...} strings in JSON) for a single-image-input model."""

    size: tuple[int, int] = Field(description="Height and width the image is resized to (the model's input).")
    resize: Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"] = Field(
        "bilinear", description="Resampling filter of the resize.")
    channels: Literal["rgb", "bgr", "grayscale"] = Field(
        "rgb", description="Channel order handed to `scale` (caffe converts RGB to BGR itself, as Keras does).")
    scale: Literal["raw", "unit", "tf", "torch", "caffe"] = Field(
        "unit", description="Pixel scaling as keras.applications' preprocess_input modes: raw 0..255, unit [0, 1], "
                            "tf [-1, 1], torch ImageNet mean/std, caffe BGR minus ImageNet means.")
    max_pixels: int = Field(IMAGE_MAX_PIXELS, ge=1, le=400_000_000,
                            description="Images with more pixels are refused (413) before they are decoded.")


class ServingSpec(Strict):
    """What the generated handlers accept beyond JSON and binary tensors, and how they name classes."""

    image: ImageSpec | None = Field(None, description="Decode and preprocess images; ships Pillow in the package.")
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] | str | None = Field(
        None, description="Class names in the order of the scored output's classes (a list, or a text file with one "
                          "name per line, relative to the recipe): classification responses then name each "
                          "prediction's class (`classes`) and every top_k entry (`label`).")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str] | str | None, info: ValidationInfo) -> list[str] | str | None:
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError(f"class names listed twice: {', '.join(sorted({n for n in v if v.count(n) > 1}))}")
        return resolve_path(v, info) if isinstance(v, str) else v
    fast_decoders: bool | Literal["auto"] = Field(
        "auto", description="Ship orjson and pybase64 (0.6 MB unzipped, 0.25 MB zipped) so big JSON bodies parse about 3x and "
                            "base64 bodies (Function URL, API Gateway) decode about 40x faster; imported on the first "
                            "body of 64 KiB or more. auto: when the model takes images or at least "
                            f"{FAST_DECODERS_MIN_NUMBERS} numbers per sample.")
