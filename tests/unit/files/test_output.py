"""Deterministic zips, atomic output directories, the manifest and the step cache."""

from __future__ import annotations

import json
import os
import zipfile

import pytest

from modelpack.files.cache import Cache, cache_key
from modelpack.files.output import atomic_output_dir, sha256_file, write_manifest, write_zip


def make_tree(root):
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("b = 1\n")
    (root / "pkg" / "sub" / "a.bin").write_bytes(os.urandom(0) + b"\x00\x01")
    (root / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "run.sh", 0o700)


def test_zip_is_byte_identical_and_normalised(tmp_path):
    for name in ("one", "two"):
        make_tree(tmp_path / name)
    os.utime(tmp_path / "two" / "pkg" / "b.py", (1, 1))  # different mtimes must not matter
    z1 = write_zip(tmp_path / "one", tmp_path / "one.zip")
    z2 = write_zip(tmp_path / "two", tmp_path / "two.zip")
    assert sha256_file(z1) == sha256_file(z2)
    with zipfile.ZipFile(z1) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        assert modes["run.sh"] == 0o755 and modes["pkg/b.py"] == 0o644
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        assert not any(n.startswith("/") or ".." in n for n in names)


def test_atomic_output_replaces_on_success(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "old.txt").write_text("old")
    write_manifest(out)  # a folder modelpack wrote: the only kind it replaces
    with atomic_output_dir(out) as staging:
        (staging / "new.txt").write_text("new")
        assert not (out / "new.txt").exists()
    assert (out / "new.txt").exists() and not (out / "old.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["dist"]


def test_atomic_output_keeps_previous_on_failure(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "old.txt").write_text("old")
    write_manifest(out)
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out) as staging:
            (staging / "half.txt").write_text("partial")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["dist"]


def test_manifest_lists_every_file(tmp_path):
    make_tree(tmp_path)
    manifest = json.loads(write_manifest(tmp_path).read_text())["files"]
    assert set(manifest) == {"pkg/b.py", "pkg/sub/a.bin", "run.sh"}
    assert manifest["pkg/b.py"]["sha256"] == sha256_file(tmp_path / "pkg" / "b.py")


def test_cache_roundtrip_and_damaged_entry_is_dropped(tmp_path):
    cache = Cache(tmp_path / "cache")
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.onnx").write_bytes(b"model-bytes")
    key = cache_key("onnx-fp32", "abc", {"opset": 17})
    assert cache.get(key) is None
    entry = cache.put(key, src)
    assert cache.get(key) == entry
    (entry / "model.onnx").write_bytes(b"tampered")
    assert cache.get(key) is None
    assert not entry.exists()


def test_cache_key_depends_on_every_part():
    assert cache_key("a", 1, {"x": 1}) == cache_key("a", 1, {"x": 1})
    assert cache_key("a", 1, {"x": 1}) != cache_key("a", 1, {"x": 2})


def test_zipped_size_is_the_size_of_the_zip_without_writing_it(tmp_path):
    from modelpack.files.output import zipped_size

    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "random.bin").write_bytes(os.urandom(3_000_000))
    (tmp_path / "tree" / "text.txt").write_text("hello " * 10_000)
    for source in (tmp_path / "tree", tmp_path / "tree" / "text.txt"):
        written = write_zip(source, tmp_path / "out.zip").stat().st_size
        assert zipped_size(source) == written


def test_zips_stream_their_files(tmp_path, monkeypatch):
    """A model of hundreds of MB is never read whole: every read is a bounded chunk."""
    from pathlib import Path

    reads = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real_read_bytes(self))
    (tmp_path / "big.bin").write_bytes(os.urandom(5_000_000))
    path = write_zip(tmp_path / "big.bin", tmp_path / "big.zip")
    assert reads == []
    with zipfile.ZipFile(path) as zf:
        assert zf.read("big.bin") == (tmp_path / "big.bin").read_bytes()
