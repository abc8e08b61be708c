"""Binary tensors: NumPy's .npy (one array) and .npz (one array per input name) in requests and responses.

Shipped inside every generated handler; depends only on numpy and the standard library. Nothing is ever
unpickled: the .npy header is read as a Python literal by numpy's own header parser, object and structured
dtypes are refused, and the array is a view of the request's bytes (no copy) unless its dtype differs from
the model's. An .npz archive's directory is measured from its end record before zipfile reads it (a few
entries per model input, never thousands), and a member may not unpack to more bytes than a full batch of the
model's inputs. Whatever numpy's header parser, zipfile or zlib raise on damaged bytes is a 4xx naming the input.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile

import numpy as np
from errors import RequestError, decoding
from numpy.lib import format as npy_format
from payload import checked, shape_text

NPY = "application/x-npy"
NPZ = "application/x-npz"
NUMERIC_KINDS = "biuf"
NPZ_MEMBER_MAX = 256 * 1024 * 1024  # with free dimensions the input spec bounds nothing; this does
DIRECTORY_ENTRY_MAX = 1024  # bytes of central directory per member: 46 fixed + name + extra fields + comment
END_RECORD, END_RECORD_64, LOCATOR_64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"


def read_npy(body: bytes, spec: dict, max_batch: int) -> np.ndarray:
    """One array of `spec`'s shape (batch first) from .npy bytes, checked like a JSON request."""
    name = spec["name"]
    stream = io.BytesIO(body)
    with decoding(f"input '{name}' (an .npy header)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's literal parser raises what it likes, and warns on Python 2 headers
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream, max_header_size=4096)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream, max_header_size=4096)
        else:
            raise RequestError(f"input '{name}' is not a readable .npy array: version {version} is unknown")
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
    """A declared shape (.npy header, OIP tensor) against the input's: dimensions are non-negative integers
    (never booleans or floats), as many as the input has, the known ones equal."""
    want, name = spec["shape"], spec["name"]
    shape = tuple(shape)
    if not all(type(d) is int and d >= 0 for d in shape):
        raise RequestError(f"input '{name}': its shape {[str(d)[:20] for d in shape[:8]]} must hold non-negative "
                           f"integers; expected {shape_text(want)} (first dimension: batch)")
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
    check_directory(body, len(names))
    with decoding("the .npz archive"):
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
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
        with decoding(f"input '{spec['name']}' (an .npz member)"):  # encrypted, damaged, unknown compression
            with archive.open(info) as member:
                data = member.read(limit + 1)
        if len(data) > limit:
            raise RequestError(f"input '{spec['name']}' unpacks to more bytes than a batch of {max_batch} can hold",
                               status=413)
        arrays[spec["name"]] = read_npy(data, spec, max_batch)
    return arrays


def check_directory(body: bytes, members: int) -> None:
    """Refuse an archive whose end record declares more members, or a bigger directory, than an .npz of
    `members` arrays has, before zipfile builds an object for every entry (100,000 entries of 56 bytes
    each are 5.6 MB of body and 40 MB of objects)."""
    at = body.rfind(END_RECORD, max(0, len(body) - 22 - 65_535))
    if at < 0 or len(body) < at + 22:
        raise RequestError("the body is not an .npz archive (no zip end record); send np.savez output")
    entries, size = struct.unpack_from("<HI", body, at + 10)
    locator = at - 20
    if locator >= 0 and body[locator:locator + 4] == LOCATOR_64:  # ZIP64: the real counts are in its record
        offset = struct.unpack_from("<Q", body, locator + 8)[0]
        if offset + 56 > len(body) or body[offset:offset + 4] != END_RECORD_64:
            raise RequestError("the .npz archive's ZIP64 end record is damaged")
        entries, size = struct.unpack_from("<QQ", body, offset + 32)
    if entries > members or size > members * DIRECTORY_ENTRY_MAX:
        raise RequestError(f"the .npz archive declares {entries} members in a {size}-byte directory; this model "
                           f"takes {members} array(s), one member each", status=413)


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
