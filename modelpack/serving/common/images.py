"""Image requests: JPEG and PNG bodies (or {"b64": ...} strings in JSON) decoded and preprocessed as the recipe's
serving.image section says, into the model's input array.

Shipped inside a handler only when the recipe asks for images, with Pillow beside it; imported by routes.py on
the first image request, so JSON and tensor traffic never pays for Pillow's import. An image's pixel count is
read from its header and refused above `max_pixels` before any pixel is decoded (decompression bombs), and
only the formats the config names are opened.

Scaling modes follow keras.applications' preprocess_input: raw (0..255), unit ([0, 1]), tf ([-1, 1]),
torch ([0, 1] then ImageNet mean/std per RGB channel), caffe (RGB to BGR, then the ImageNet BGR means subtracted).
"""

from __future__ import annotations

import binascii
import io
import warnings

import numpy as np
from decoders import b64decode
from errors import RequestError
from payload import checked

FORMATS = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG"}
TORCH_MEAN, TORCH_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def _pillow():
    from PIL import Image

    return Image


def decode(data: bytes, image: dict, name: str) -> np.ndarray:
    """One image as float32 pixels [H, W, C] (C = 1 or 3), resized and scaled, not yet in the model's layout."""
    Image = _pillow()
    Image.MAX_IMAGE_PIXELS = int(image["max_pixels"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=sorted(set(FORMATS.values()))) as img:
                width, height = img.size
                if width * height > image["max_pixels"]:
                    raise RequestError(f"input '{name}': the image is {width}x{height} pixels, more than the "
                                       f"limit of {image['max_pixels']}", status=413)
                if img.format == "JPEG":  # decode at the smallest scale that still covers the target size
                    img.draft("RGB", (image["size"][1], image["size"][0]))
                mode = "L" if image["channels"] == "grayscale" else "RGB"
                img = img.convert(mode)
                target = (int(image["size"][1]), int(image["size"][0]))
                if img.size != target:
                    img = img.resize(target, getattr(Image.Resampling, image["resize"].upper()))
                pixels = np.asarray(img, dtype=np.float32)
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(f"input '{name}': image refused: {str(exc)[:160]}", status=413) from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.UnidentifiedImageError) as exc:
        raise RequestError(f"input '{name}' is not a readable JPEG or PNG image: {str(exc)[:160]}") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return scale(pixels, image)


def scale(pixels: np.ndarray, image: dict) -> np.ndarray:
    mode = image["scale"]
    if image["channels"] == "bgr" and mode != "caffe":
        pixels = pixels[..., ::-1]
    if mode == "unit":
        return pixels / 255.0
    if mode == "tf":
        return pixels / 127.5 - 1.0
    if mode == "torch":
        return (pixels / 255.0 - TORCH_MEAN[: pixels.shape[-1]]) / TORCH_STD[: pixels.shape[-1]]
    if mode == "caffe":
        return pixels[..., ::-1] - CAFFE_MEAN_BGR[: pixels.shape[-1]]
    return pixels


def arrays(config: dict, bodies: list, kind: str | None = None) -> dict[str, np.ndarray]:
    """The model's single input from a batch of encoded images, in its layout (NHWC or NCHW) and dtype."""
    spec, image = config["inputs"][0], config["image"]
    if kind is not None and kind not in FORMATS:
        raise RequestError(f"send images as image/jpeg or image/png, not {kind[:40]}", status=415)
    max_batch = int(config.get("max_batch", 1024))
    if not bodies or len(bodies) > max_batch:
        raise RequestError(f"send between 1 and {max_batch} images")
    batch = np.stack([decode(b, image, spec["name"]) for b in bodies])
    want = spec["shape"]
    if len(want) == 4 and want[1] == batch.shape[-1] and want[3] != batch.shape[-1]:
        batch = batch.transpose(0, 3, 1, 2)  # channels-first model
    return {spec["name"]: checked(batch, spec)}


def b64_images(request: dict) -> list[bytes] | None:
    """The encoded images of a TF Serving JSON request whose instances are {"b64": ...} strings, else None."""
    rows = request.get("instances")
    if rows is None and isinstance(request.get("inputs"), (list, dict)):
        rows = request["inputs"] if isinstance(request["inputs"], list) else [request["inputs"]]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and set(r) == {"b64"} for r in rows):
        return None
    images = []
    for row in rows:
        if not isinstance(row["b64"], str):
            raise RequestError('"b64" must be a base64 string')
        try:
            images.append(b64decode(row["b64"]))
        except (binascii.Error, ValueError):
            raise RequestError('"b64" does not hold valid base64') from None
    return images
