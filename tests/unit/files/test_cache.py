"""The step cache's folder and its upkeep: `modelpack cache info|prune|clean` and the size cap."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.files.cache import Cache, default_cache_dir, parse_size


def fill(root, n: int, size: int = 100_000) -> list[str]:
    """n entries of `size` bytes, entry i last used at time 1000 + i."""
    cache, keys = Cache(root), []
    for i in range(n):
        src = root.parent / f"src{i}"
        src.mkdir()
        (src / "blob").write_bytes(bytes([i]) * size)
        key = f"{i:032x}"
        os.utime(cache.put(key, src) / "entry.json", (1000 + i, 1000 + i))
        keys.append(key)
    return keys


def test_one_default_folder_per_user(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELPACK_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "modelpack" / "builds"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "modelpack" / "builds"
    monkeypatch.setenv("MODELPACK_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_info_prune_clean_keep_what_modelpack_did_not_write(tmp_path):
    root = tmp_path / "cache"
    keys = fill(root, 4)
    (root / "notes.txt").write_text("mine")  # not the cache's: never removed
    (root / "my-folder").mkdir()
    Cache(root).get(keys[0])  # a hit makes the oldest entry the most recently used
    runner = CliRunner()
    info = json.loads(runner.invoke(cli, ["cache", "info", "--cache-dir", str(root), "--json"]).stdout)
    assert info["entries"] == 4 and info["bytes"] > 400_000
    result = runner.invoke(cli, ["cache", "prune", "--cache-dir", str(root), "--max-size", "250kB", "--json"])
    assert result.exit_code == 0, result.output
    pruned = json.loads(result.stdout)
    assert pruned["removed"] == 2 and pruned["entries"] == 2 and pruned["bytes"] <= 250_000
    assert sorted(p.name for p in root.iterdir() if p.name in keys) == sorted([keys[0], keys[3]])  # LRU went
    result = runner.invoke(cli, ["cache", "clean", "--cache-dir", str(root)])
    assert result.exit_code == 0 and "removed 2 entries" in result.output
    assert sorted(p.name for p in root.iterdir()) == ["my-folder", "notes.txt"]


def test_clean_removes_the_folder_when_only_entries_were_there(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPACK_CACHE_DIR", str(tmp_path / "builds"))
    fill(tmp_path / "builds", 2)
    result = CliRunner().invoke(cli, ["cache", "clean"])
    assert result.exit_code == 0 and not (tmp_path / "builds").exists()


def test_bad_size_is_a_sentence_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["cache", "prune", "--cache-dir", str(tmp_path), "--max-size", "lots"])
    assert result.exit_code == 2 and "size 'lots' is not understood" in result.output
    assert parse_size("1.5GiB") == 1610612736 and parse_size("500MB") == 500_000_000


def test_put_keeps_an_entry_already_there(tmp_path):
    root, src = tmp_path / "cache", tmp_path / "src"
    src.mkdir()
    (src / "blob").write_bytes(b"x" * 1000)
    cache, key = Cache(root), "ab" * 16
    first = cache.put(key, src)
    inode = first.stat().st_ino
    assert cache.put(key, src) == first and first.stat().st_ino == inode  # not removed and written again
    assert [p.name for p in root.iterdir() if p.name != ".modelpack-lock"] == [key]  # no temporary copy left


def _put_many(root: str, src: str, key: str, n: int) -> None:
    for _ in range(n):
        Cache(Path(root)).put(key, Path(src))


def test_builds_putting_the_same_key_at_once_never_remove_a_live_entry(tmp_path):
    root, src = tmp_path / "cache", tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"part{i}").write_bytes(bytes([i]) * 20_000)
    cache, key = Cache(root), "cd" * 16
    cache.put(key, src)
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_put_many, args=(str(root), str(src), key, 40)) for _ in range(2)]
    for w in writers:
        w.start()
    misses = 0
    while any(w.is_alive() for w in writers):  # this process reads meanwhile: the entry must stay whole
        misses += cache.get(key) is None
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert misses == 0
    assert sorted(p.name for p in root.iterdir() if p.name != ".modelpack-lock") == [key]


def test_a_cache_dir_that_is_a_file_is_a_usage_error(tmp_path, monkeypatch):
    from tests.helpers.paths import DIGITS

    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("MODELPACK_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    for args in (["cache", "info"], ["cache", "prune", "--max-size", "1GB"], ["cache", "clean"],
                 ["build", str(DIGITS / "recipe.yaml"), "--out", str(tmp_path / "out")]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"the step cache {tmp_path / 'cache'} is not a folder" in " ".join(result.output.split())
        assert "MODELPACK_CACHE_DIR" in result.output
    assert (tmp_path / "cache").read_text() == "not a folder" and not (tmp_path / "out").exists()
