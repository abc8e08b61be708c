"""Faults a careless or hostile package must not hide: a handler that raises, an archive that unpacks to
gigabytes, a memory size chosen by timing noise, files only root can read, and a smoke run as root."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack import limits
from modelpack.cli.main import cli
from modelpack.errors import UsageError
from modelpack.files.output import normalize_modes
from modelpack.host import engine
from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.lambda_emulator import raised
from modelpack.local.unzip import UnzipBudget, safe_extract
from tests.helpers.builds import SMALL_MEASURE, digits_data
from tests.helpers.paths import DIGITS, ROOT

BASE = "localhost/modelpack-base:bookworm"
CAP = limits.LAMBDA_UNZIPPED_TOTAL_BYTES


# ---------------------------------------------------------------- crafted archives (no build needed)

def _zeros_zip(path: Path, size: int, name: str = "payload.bin") -> Path:
    """One deflated entry of `size` zero bytes: about a thousandth of that on disk."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w") as zf, zf.open(info, "w") as f:
        left = size
        while left:
            f.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A zip whose one entry declares, and really holds, one byte more than Lambda unpacks."""
    return _zeros_zip(tmp_path_factory.mktemp("bomb") / "bomb.zip", CAP + 1)


def _lying_copy(bomb: Path, dest: Path, declared: int) -> Path:
    """The bomb with its entry's uncompressed size rewritten (local header and central directory)."""
    data = bytearray(bomb.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    assert data[:4] == b"PK\x03\x04" and central > 0
    struct.pack_into("<I", data, 22, declared)
    struct.pack_into("<I", data, central + 24, declared)
    dest.write_bytes(data)
    return dest


def _files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_bomb_is_refused_by_its_declared_size_before_anything_is_written(bomb, tmp_path):
    assert bomb.stat().st_size < 1_000_000  # a few hundred KB that would unpack to 250 MiB
    with pytest.raises(UsageError) as err:
        safe_extract(bomb, tmp_path / "x")
    assert str(bomb) in err.value.message and f"{CAP} bytes" in err.value.message and "declares" in err.value.message
    assert not (tmp_path / "x").exists() or _files(tmp_path / "x") == {}


def test_bomb_that_lies_about_its_size_is_refused(bomb, tmp_path):
    liar = _lying_copy(bomb, tmp_path / "liar.zip", 1000)
    with zipfile.ZipFile(liar) as zf:
        assert zf.infolist()[0].file_size == 1000  # the declared size passes the check
    with pytest.raises(UsageError) as err:
        safe_extract(liar, tmp_path / "x")
    assert str(liar) in err.value.message
    assert sum(_files(tmp_path / "x").values()) <= 1000  # never more than it declared


def test_archives_of_one_function_count_together(tmp_path):
    layer = _zeros_zip(tmp_path / "layer.zip", 600_000)
    function = _zeros_zip(tmp_path / "function.zip", 600_000)
    budget = UnzipBudget(limit=1_000_000)
    safe_extract(layer, tmp_path / "opt", budget)
    assert budget.used == 600_000
    with pytest.raises(UsageError) as err:
        safe_extract(function, tmp_path / "task", budget)
    assert str(function) in err.value.message and "before it" in err.value.message


def test_unpacked_bytes_are_counted_whatever_the_zip_declared():
    # A reader that yields more than the entry declared (zipfile truncates to the declared size today; the count
    # does not rely on that) stops at the cap.
    budget, out = UnzipBudget(limit=3 << 20), io.BytesIO()
    with pytest.raises(UsageError) as err:
        budget.copy(io.BytesIO(bytes(4 << 20)), out, Path("evil.zip"))
    assert "evil.zip: unpacks to more than" in err.value.message and len(out.getvalue()) <= 3 << 20


def test_only_the_runtime_error_object_counts_as_raised():
    assert raised({"errorMessage": "boom", "errorType": "RuntimeError", "stackTrace": []}) == "RuntimeError: boom"
    assert raised({"errorMessage": "Unable to import module 'handler'", "errorType": "Runtime.ImportModuleError",
                   "requestId": "", "stackTrace": []}).startswith("Runtime.ImportModuleError: Unable to import")
    assert raised({"error": "expected [batch, 8, 8, 1]", "statusCode": 400}) is None  # answered, not raised
    assert raised([1, 2]) is None and raised(None) is None


def test_normalize_modes_opens_private_trees(tmp_path):
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "data.txt").write_text("x")
    (tree / "a" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "a" / "data.txt", 0o600)
    os.chmod(tree / "a" / "run.sh", 0o700)
    os.chmod(tree / "a" / "b", 0o700)
    os.chmod(tree / "a", 0o700)
    os.chmod(tree, 0o700)
    os.symlink("/etc/passwd", tree / "a" / "link")
    before = os.stat("/etc/passwd").st_mode
    normalize_modes(tree)
    modes = {p.relative_to(tree).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in tree.rglob("*")
             if not p.is_symlink()}
    assert modes == {"a": 0o755, "a/b": 0o755, "a/data.txt": 0o644, "a/run.sh": 0o755}
    assert stat.S_IMODE(tree.stat().st_mode) == 0o755 and os.stat("/etc/passwd").st_mode == before


def test_engine_script_reads_the_mirror_from_apt_sources(tmp_path):
    script = ROOT / "scripts" / "container-engine.sh"

    def mirror(files: dict[str, str]) -> subprocess.CompletedProcess:
        etc = tmp_path / f"apt{len(list(tmp_path.iterdir()))}"
        (etc / "sources.list.d").mkdir(parents=True)
        for name, text in files.items():
            (etc / name).write_text(text)
        return subprocess.run(["bash", str(script), "mirror"], capture_output=True, text=True, check=False,
                              env={**os.environ, "MODELPACK_APT_ETC": str(etc)})

    deb822 = mirror({"sources.list.d/debian.sources": (
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# URIs: http://old.invalid/debian\nURIs: http://mirror.invalid/debian/\nSuites: bookworm\n")})
    assert deb822.returncode == 0 and deb822.stdout.strip() == "http://mirror.invalid/debian"
    classic = mirror({"sources.list": "# deb http://old.invalid/debian bookworm main\n"
                                      "deb [arch=amd64 signed-by=/k.gpg] http://classic.invalid/pub/debian bookworm main\n"})
    assert classic.stdout.strip() == "http://classic.invalid/pub/debian"
    none = mirror({"sources.list.d/other.sources": "Types: deb\nURIs: https://vendor.invalid/apt\n"})
    assert none.returncode == 2 and none.stdout == "" and "no Debian mirror found" in none.stderr


def test_repository_names_no_package_mirror():
    out = subprocess.run(["git", "grep", "-nE", "https?://", "--", "*.sh", "scripts", ".ci"], cwd=ROOT,
                         capture_output=True, text=True, check=False).stdout
    assert [ln for ln in out.splitlines() if "://localhost" not in ln and "://127.0.0.1" not in ln] == []


# ---------------------------------------------------------------- one digits build for the rest

@pytest.fixture(scope="module")
def engine_host(container_engine):
    return container_engine


def _recipe(path: Path, memory_runs: int) -> Path:
    data = digits_data(measure={**SMALL_MEASURE, "memory": {"sizes_mb": [256, 512, 1769], "runs": memory_runs,
                                                            "cold_runs": 1}},
                       optimize={"variants": ["tflite-fp32"], "split": {"parts": 2}})
    image = {"python": host_python(), "base_image": BASE, "glibc": "2.36", "build": True}
    data["targets"] = [
        {"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
        {"kind": "lambda-function", "memory_mb": "auto"},
        {"kind": "azure-functions", "python": host_python()},
        {"kind": "lambda-split", "layout": "per-part"},
        {"kind": "lambda-image", **image},
        {"kind": "azure-image", **image},
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def built(engine_host, digits_dist, tmp_path_factory):
    """The session build's variant split in two, with every target; built with the session's cache, so the
    conversion, its measurements and the Lambda and Azure site-packages are reused."""
    tmp = tmp_path_factory.mktemp("faults")
    recipe = _recipe(tmp / "recipe.yaml", 40)
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp / "out"),
                                      "--cache-dir", str(digits_dist.cache)])
    assert result.exit_code == 0, result.output
    return {"out": tmp / "out", "tmp": tmp, "report": json.loads((tmp / "out" / "report.json").read_text()),
            "cache": digits_dist.cache}


def _copy(built, tmp_path: Path, *parts: str) -> Path:
    """A copy of the dist with only report.json and `parts`, to tamper with."""
    dist = tmp_path / "dist"
    dist.mkdir()
    shutil.copyfile(built["out"] / "report.json", dist / "report.json")
    for part in parts:
        src = built["out"] / part
        (dist / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dist / part)
    return dist


def _patch_zip(archive: Path, member: str, old: str, new: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            if info.filename == member:
                assert old.encode() in data
                data = data.replace(old.encode(), new.encode(), 1)
            zf.writestr(info, data)


RAISE = "    if isinstance(event, dict) and event.get('explode'):\n        raise RuntimeError('handler exploded')\n"


def _events(tmp_path: Path) -> list[str]:
    with np.load(DIGITS / "digits.npz") as npz:
        good = {"instances": npz["x"][:1].tolist()}
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps({**good, "explode": True}))
    return ["--event", str(tmp_path / "good.json"), "--event", str(tmp_path / "bad.json")]


@pytest.mark.slow
def test_invoke_exits_1_when_the_lambda_handler_raises(built, tmp_path):
    dist = _copy(built, tmp_path, "lambda/layer.zip", "lambda/function.zip")
    ok = CliRunner().invoke(cli, ["invoke", str(dist), *_events(tmp_path)[:2]])
    assert ok.exit_code == 0, ok.output
    _patch_zip(dist / "lambda" / "function.zip", "handler.py", "def handler(event, context):\n",
               "def handler(event, context):\n" + RAISE)
    result = CliRunner().invoke(cli, ["invoke", str(dist), *_events(tmp_path)])
    assert result.exit_code == 1, result.output
    assert '"predictions"' in result.output  # the good event's answer is printed
    assert '"errorType": "RuntimeError"' in result.output and '"errorMessage": "handler exploded"' in result.output
    assert "the handler raised on 1 of 2 event(s): bad.json: RuntimeError: handler exploded" in result.output


@pytest.mark.slow
def test_invoke_exits_1_when_the_azure_function_raises(built, tmp_path):
    dist = _copy(built, tmp_path, "azure/functionapp.zip")
    old = "def predict(req: func.HttpRequest) -> func.HttpResponse:\n"
    _patch_zip(dist / "azure" / "functionapp.zip", "function_app.py", old,
               old + "    if b'explode' in req.get_body():\n        raise RuntimeError('function exploded')\n")
    result = CliRunner().invoke(cli, ["invoke", str(dist), "--target", "azure", *_events(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "# good.json: HTTP 200" in result.output and "# bad.json: HTTP 500" in result.output
    assert "bad.json: RuntimeError: function exploded" in result.output

    broken = tmp_path / "broken"
    broken.mkdir()
    dist = _copy(built, broken, "azure/functionapp.zip")  # an app that fails while it is imported
    _patch_zip(dist / "azure" / "functionapp.zip", "function_app.py", "import json\n",
               "import json\nraise ImportError('no such runtime')\n")
    result = CliRunner().invoke(cli, ["invoke", str(dist), "--target", "azure", *_events(tmp_path)[:2]])
    assert result.exit_code == 1 and "# good.json: HTTP 500" in result.output, result.output
    assert "good.json: ImportError: no such runtime" in result.output


@pytest.mark.slow
def test_invoke_exits_1_when_a_split_part_raises(built, tmp_path):
    dist = _copy(built, tmp_path, "lambda/layer.zip", "lambda/split")
    _patch_zip(dist / "lambda" / "split" / "part2.zip", "handler.py", "def handler(event, context):\n",
               "def handler(event, context):\n    raise RuntimeError('part exploded')\n")
    result = CliRunner().invoke(cli, ["invoke", str(dist), "--target", "lambda-split", *_events(tmp_path)[:2]])
    assert result.exit_code == 1, result.output
    assert '"state": "Part2"' in result.output and "RuntimeError: part exploded" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("target,archive", [("lambda", "lambda/function.zip"), ("azure", "azure/functionapp.zip")])
def test_invoke_refuses_a_zip_bomb_with_exit_2(built, bomb, tmp_path, target, archive):
    dist = _copy(built, tmp_path, "lambda/layer.zip", archive)
    shutil.copyfile(bomb, dist / archive)
    result = CliRunner().invoke(cli, ["invoke", str(dist), "--target", target, *_events(tmp_path)[:2]])
    assert result.exit_code == 2, result.output
    assert str(dist / archive) in result.output and f"{CAP} bytes" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_every_published_folder_and_file_is_readable_by_all(built):
    out = built["out"]
    dirs, files = [out], []
    for p in out.rglob("*"):
        (dirs if p.is_dir() else files).append(p)
    bad_dirs = [p for p in dirs if stat.S_IMODE(p.stat().st_mode) != 0o755]
    bad_files = [p for p in files if stat.S_IMODE(p.stat().st_mode) not in (0o644, 0o755)]
    assert bad_dirs == [] and bad_files == []
    # The trees copied out of the cache are among them, and executables keep their bit.
    for tree in ("images/lambda-image/python", "images/azure-image/app/.python_packages/lib/site-packages",
                 "azure/functionapp/.python_packages/lib/site-packages"):
        assert (out / tree).is_dir() and stat.S_IMODE((out / tree).stat().st_mode) == 0o755
    assert any(stat.S_IMODE(p.stat().st_mode) == 0o755 and p.suffix == ".so" for p in files)
    assert len(files) > 100


@pytest.mark.slow
def test_image_smoke_runs_as_a_non_root_user(built):
    for kind in ("lambda-image", "azure-image"):
        image = next(a for a in built["report"]["artifacts"] if a["target"] == kind)["details"]["image"]
        assert image["smoke"]["ok"] is True and image["smoke"]["user"] == engine.NON_ROOT_USER


@pytest.mark.slow
def test_a_root_only_file_fails_the_non_root_smoke_run(engine_host, tmp_path):
    """What a root smoke run would miss: a folder only its owner can enter."""
    context = tmp_path / "ctx"
    (context / "pkg" / "private").mkdir(parents=True)
    (context / "pkg" / "private" / "mod.py").write_text("ANSWER = 42\n")
    os.chmod(context / "pkg" / "private", 0o700)
    (context / "Dockerfile").write_text(f"FROM {BASE}\nCOPY pkg/ /opt/pkg/\n")
    client, why = engine.connect()
    assert client is not None, why
    tag = "modelpack-redteam-perms:latest"
    engine.build(client, context, tag, lambda line: None)
    command = ["-c", "import sys; sys.path.insert(0, '/opt/pkg/private'); import mod; print('ANSWER', mod.ANSWER)"]
    try:
        as_root, _ = engine.run(client, tag, command, user="0:0")
        as_lambda, _ = engine.run(client, tag, command)
    finally:
        client.images.remove(tag, force=True)
    assert "ANSWER 42" in as_root
    assert "ANSWER 42" not in as_lambda and ("ModuleNotFoundError" in as_lambda or "PermissionError" in as_lambda)


@pytest.mark.slow
def test_auto_memory_is_the_same_on_fresh_measurements(built):
    """Fresh memory measurements (a different run count, so nothing is reused) write the same template."""
    tmp = built["tmp"]
    recipe = _recipe(tmp / "recipe-again.yaml", 41)
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp / "again"), "--cache-dir", str(built["cache"])])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp / "again" / "report.json").read_text())
    assert again["memory"]["rows"] != built["report"]["memory"]["rows"]  # measured anew
    assert built["report"]["memory"]["recommendations"]["balanced"] == 256  # microseconds: the smallest size
    template = (built["out"] / "lambda" / "template.yaml").read_bytes()
    assert b"MemorySize: 256" in template and (tmp / "again" / "lambda" / "template.yaml").read_bytes() == template
