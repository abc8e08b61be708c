"""multipart/form-data bodies (modelpack/serving/common/images.py form_files): the number of parts is bounded
before any part is parsed."""

from __future__ import annotations

import pytest

from tests.helpers.serving import serving_module

images = serving_module("images")
FORM = "multipart/form-data; boundary=XyZ"


def body(files: int, fields: int) -> bytes:
    parts = [b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
             b"Content-Type: image/png\r\n\r\nPNG" + bytes([i % 256]) + b"\r\n" for i in range(files)]
    parts += [b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n'] * fields
    return b"".join(parts) + b"--XyZ--\r\n"


def test_a_form_at_the_limit_is_read():
    files = images.form_files(FORM, body(4, images.FORM_OTHER_PARTS), max_batch=4)
    assert files == [b"PNG\x00", b"PNG\x01", b"PNG\x02", b"PNG\x03"]


def test_thousands_of_tiny_parts_are_refused_naming_the_limit():
    with pytest.raises(images.RequestError) as refused:
        images.form_files(FORM, body(1, 20_000), max_batch=4)
    limit = 4 + images.FORM_OTHER_PARTS
    assert refused.value.status == 413 and f"more than {limit} parts" in str(refused.value)
    with pytest.raises(images.RequestError, match="more than"):
        images.form_files(FORM, body(4, images.FORM_OTHER_PARTS + 1), max_batch=4)  # one part too many
