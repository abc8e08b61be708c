"""Image requests: JPEG and PNG bodies (or {"b64": ...} strings in JSON) decoded and preprocessed as the recipe's
serving.image section says, into the model's input array.

Shipped inside a handler only when the recipe asks for images, with Pillow beside it; imported by routes.py on
the first image request, so JSON and tensor traffic never pays for Pillow's import. Every image's pixel count is
read from its header before any pixel is decoded, and the request is refused (413) when they add up to more
than `max_pixels`: the budget holds for the whole batch (decompression bombs, and batches of small files that
each declare a huge image), and only the formats the config names are opened. 16-bit greyscale PNGs are scaled
to the 0..255 range of 8-bit images, not clipped. multipart/form-data bodies (an HTML form, `curl -F`) carry
their images as file fields.

Scaling modes follow keras.applications' preprocess_input: raw (0..255), unit ([0, 1]), tf ([-1, 1]),
torch ([0, 1] then ImageNet mean/std per RGB channel), caffe (RGB to BGR, then the ImageNet BGR means subtracted).
"""

from __future__ import annotations

import binascii
import io
import warnings
from email.message import Message
from email.parser import BytesHeaderParser

import numpy as np
from decoders import b64decode
from errors import RequestError
from payload import checked

FORMATS = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG"}
TORCH_MEAN, TORCH_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit greyscale PNGs open as one of these
WIDE_SCALE = 255.0 / 65535.0
# Parts a multipart/form-data body may hold beyond one per image of the batch (text fields of an HTML form): the
# parts are counted before any is parsed, so thousands of tiny parts cost no more than this many.
FORM_OTHER_PARTS = 16


def _pillow():
    from PIL import Image

    return Image


def _open(data: bytes, image: dict):
    Image = _pillow()
    Image.MAX_IMAGE_PIXELS = int(image["max_pixels"])
    return Image.open(io.BytesIO(data), formats=sorted(set(FORMATS.values())))


def _readable(name: str, call, *args):
    """call(*args) with Pillow's errors turned into the request's: 413 for a bomb, 400 for unreadable bytes."""
    Image = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return call(*args)
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(f"input '{name}': image refused: {str(exc)[:160]}", status=413) from None
    except MemoryError:
        raise RequestError(f"input '{name}': the image is too large to decode", status=413) from None
    except Exception as exc:  # OSError, SyntaxError, zlib.error, struct.error ...: damaged bytes
        raise RequestError(f"input '{name}' is not a readable JPEG or PNG image: {type(exc).__name__}: "
                           f"{str(exc)[:160]}") from None


def pixel_count(data: bytes, image: dict) -> int:
    """Width times height as the image's header declares it; nothing is decoded."""
    with _open(data, image) as img:
        width, height = img.size
    return width * height


def decode(data: bytes, image: dict, name: str) -> np.ndarray:
    """One image as float32 pixels [H, W, C] (C = 1 or 3), resized and scaled, not yet in the model's layout."""
    pixels = _readable(name, _decode, data, image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return scale(pixels, image)


def _decode(data: bytes, image: dict) -> np.ndarray:
    Image = _pillow()
    target = (int(image["size"][1]), int(image["size"][0]))
    resample = getattr(Image.Resampling, image["resize"].upper())
    with _open(data, image) as img:
        if img.format == "JPEG":  # decode at the smallest scale that still covers the target size
            img.draft("RGB", (image["size"][1], image["size"][0]))
        if img.mode in WIDE_MODES:  # 0..65535 greyscale: scaled into 0..255 as a float image, then resized
            wide = Image.fromarray(np.asarray(img, dtype=np.float32) * np.float32(WIDE_SCALE), mode="F")
            if wide.size != target:
                wide = wide.resize(target, resample)
            pixels = np.asarray(wide, dtype=np.float32)
            return pixels if image["channels"] == "grayscale" else np.repeat(pixels[:, :, None], 3, axis=2)
        img = img.convert("L" if image["channels"] == "grayscale" else "RGB")
        if img.size != target:
            img = img.resize(target, resample)
        return np.asarray(img, dtype=np.float32)


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
        raise RequestError(f"send between 1 and {max_batch} images", status=413 if bodies else 400)
    budget, name = int(image["max_pixels"]), spec["name"]
    total = 0
    for i, data in enumerate(bodies):  # every header first: nothing is decoded when the batch is over budget
        total += _readable(name, pixel_count, data, image)
        if total > budget:
            which = "the image" if len(bodies) == 1 else f"the first {i + 1} of {len(bodies)} images"
            raise RequestError(f"input '{name}': {which} declare {total} pixels, more than the limit of {budget} "
                               "for one request", status=413)
    batch = np.stack([decode(b, image, name) for b in bodies])
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


def form_files(content_type: str, body: bytes, max_batch: int) -> list[bytes]:
    """The file fields of a multipart/form-data body (an HTML form, `curl -F image=@photo.jpg`), in order; a body
    of more than `max_batch` + FORM_OTHER_PARTS parts is refused (413) before any part is read."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        raise RequestError("a multipart/form-data body needs the boundary its Content-Type names")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    limit = max_batch + FORM_OTHER_PARTS
    parts = body.split(delimiter, limit + 1)[1:]  # the preamble, then at most limit + 1 parts: bounded work
    if len(parts) > limit and not parts[limit].startswith(b"--"):
        raise RequestError(f"the multipart/form-data body holds more than {limit} parts, the limit ({max_batch} "
                           f"images plus {FORM_OTHER_PARTS} other fields); send fewer parts", status=413)
    files = []
    for part in parts:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise RequestError("a part of the multipart/form-data body has no header block")
        fields = BytesHeaderParser().parsebytes(head.lstrip(b"\r\n") + b"\r\n\r\n")
        disposition = Message()
        disposition["content-disposition"] = fields.get("content-disposition", "")
        kind = str(fields.get("content-type", "")).split(";")[0].strip().lower()
        if disposition.get_param("filename", header="content-disposition") is not None or kind.startswith("image/"):
            files.append(content[:-2] if content.endswith(b"\r\n") else content)
    if not files:
        raise RequestError("the multipart/form-data body holds no file field; send the image as a file, e.g. "
                           "curl -F image=@photo.jpg")
    return files
