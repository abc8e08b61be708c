"""Binary tensors: NumPy's .npy (one array) and .npz (one array per input name) in requests and responses.

Shipped inside every generated handler; depends only on numpy and the standard library. Nothing is ever
unpickled: the .npy header is read as a Python literal by numpy's own header parser, object and structured
dtypes are refused, and the array is a view of the request's bytes (no copy) unless its dtype differs from
the model's. An .npz member may not unpack to more bytes than a full batch of the model's inputs.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from errors import RequestError
from numpy.lib import format as npy_format
from payload import checked, shape_text

NPY = "application/x-npy"
NPZ = "application/x-npz"
NUMERIC_KINDS = "biuf"
NPZ_MEMBER_MAX = 256 * 1024 * 1024  # with free dimensions the input spec bounds nothing; this does


def read_npy(body: bytes, spec: dict, max_batch: int) -> np.ndarray:
    """One array of `spec`'s shape (batch first) from .npy bytes, checked like a JSON request."""
    name = spec["name"]
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream, max_header_size=4096)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream, max_header_size=4096)
        else:
            raise ValueError(f"version {version}")
    except (ValueError, SyntaxError, TypeError, OverflowError, EOFError) as exc:
        raise RequestError(f"input '{name}' is not a readable .npy array: {str(exc)[:160]}") from None
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise RequestError(f"input '{name}' has dtype {str(dtype)[:40]}; send numbers of dtype {spec['dtype']}")
    check_shape(shape, spec, max_batch)
    offset = stream.tell()
    count = 1
    for d in shape:
        count *= int(d)
    if len(body) - offset != count * dtype.itemsize:
        raise RequestError(f"input '{name}' declares shape {list(shape)} of {dtype.name} ({count * dtype.itemsize} "
                           f"bytes) but carries {len(body) - offset} bytes of data")
    arr = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return checked(arr, spec)


def check_shape(shape, spec: dict, max_batch: int) -> None:
    want, name = spec["shape"], spec["name"]
    shape = tuple(shape)
    if len(shape) != len(want) or any(w is not None and w != d for w, d in zip(want[1:], shape[1:])):
        raise RequestError(f"input '{name}' has shape {list(shape)}; expected {shape_text(want)} "
                           "(first dimension: batch)")
    if shape[0] < 1:
        raise RequestError(f"input '{name}' is an empty batch")
    if shape[0] > max_batch:
        raise RequestError(f"batch is larger than the limit of {max_batch}", status=413)


def read_npz(body: bytes, inputs: list[dict], max_batch: int) -> dict[str, np.ndarray]:
    """One array per model input from an .npz archive (members `<input name>.npy`, stored or deflated)."""
    names = [spec["name"] for spec in inputs]
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise RequestError(f"request body is not a readable .npz archive: {str(exc)[:160]}") from None
    if sorted(members) != sorted(names):
        raise RequestError(f"the .npz archive must hold exactly the arrays {names}; it holds "
                           f"{sorted(members)[:8]}")
    arrays = {}
    for spec in inputs:
        info = members[spec["name"]]
        limit = min(4096 + max_batch * _sample_bytes(spec), NPZ_MEMBER_MAX)
        if info.file_size > limit:
            raise RequestError(f"input '{spec['name']}' unpacks to {info.file_size} bytes, more than a batch of "
                               f"{max_batch} can hold", status=413)
        try:
            with archive.open(info) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
            raise RequestError(f"input '{spec['name']}' cannot be unpacked: {str(exc)[:160]}") from None
        if len(data) > limit:
            raise RequestError(f"input '{spec['name']}' unpacks to more bytes than a batch of {max_batch} can hold",
                               status=413)
        arrays[spec["name"]] = read_npy(data, spec, max_batch)
    return arrays


def _sample_bytes(spec: dict) -> int:
    """The most bytes one sample of this input takes as .npy data (8-byte numbers, unknown dims at 4096)."""
    size = 8
    for d in spec["shape"][1:]:
        size *= 4096 if d is None else int(d)
    return size


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    npy_format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


def npz_bytes(named: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, array in named.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, npy_bytes(array))
    return out.getvalue()
