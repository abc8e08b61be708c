"""A careless --out must never delete the user's files: every case is refused before any work starts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.errors import UsageError
from modelpack.files.output import atomic_output_dir, write_manifest
from tests.helpers.paths import DIGITS, ROOT

MODELPACK = ROOT / ".venv" / "bin" / "modelpack"


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` and its sha256: what must survive a refused build."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's project folder: recipe, model, data and a file of their own, as a real project has them."""
    folder = tmp_path / "work" / "project"
    folder.mkdir(parents=True)
    shutil.copyfile(DIGITS / "model.keras", folder / "model.keras")
    shutil.copyfile(DIGITS / "digits.npz", folder / "digits.npz")
    (folder / "notes.txt").write_text("my notes\n")
    recipe = {"name": "victim", "model": {"path": "model.keras"}, "data": {"path": "digits.npz"},
              "optimize": {"variants": ["tflite-fp32"]}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return folder


def build(recipe: Path, out: str | None, *extra: str):
    args = ["build", str(recipe), *(["--out", out] if out is not None else []), *extra]
    return CliRunner().invoke(cli, args)


def assert_refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "nothing was built or deleted" in result.output, result.output
    for word in words:
        assert word in result.output, result.output
    assert "Traceback" not in result.output


def test_out_is_the_project_folder(project):
    before = snapshot(project.parent)
    assert_refused(build(project / "recipe.yaml", str(project)), f"--out {project}", "recipe's folder")
    assert snapshot(project.parent) == before


def test_out_dot_from_inside_the_project(project, monkeypatch):
    monkeypatch.chdir(project)
    before = snapshot(project.parent)
    assert_refused(build(Path("recipe.yaml"), "."), "--out .")
    assert snapshot(project.parent) == before


def test_out_is_a_parent_of_the_project(project):
    (project.parent / "other.txt").write_text("another file of the user's\n")
    before = snapshot(project.parent.parent)
    assert_refused(build(project / "recipe.yaml", str(project.parent)), "contains the recipe's folder")
    assert_refused(build(project / "recipe.yaml", str(project / "..")), "contains the recipe's folder")
    assert snapshot(project.parent.parent) == before


def test_out_is_the_root(project):
    assert_refused(build(project / "recipe.yaml", "/"), "--out /", "root of the file system")


def test_out_is_a_symlink_to_the_project(project, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(project)
    before = snapshot(project)
    assert_refused(build(project / "recipe.yaml", str(link)), "recipe's folder")
    assert snapshot(project) == before and link.is_symlink()


def test_out_is_the_working_directory_elsewhere(project, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep\n")
    monkeypatch.chdir(elsewhere)
    assert_refused(build(project / "recipe.yaml", "."), "current directory")
    assert_refused(build(project / "recipe.yaml", ".."), "--out .. contains")
    assert (elsewhere / "keep.txt").read_text() == "keep\n"


def test_out_is_the_model_or_the_data(project):
    before = snapshot(project)
    refused = build(project / "recipe.yaml", str(project / "model.keras"))
    assert refused.exit_code == 2 and "model.keras' is a file" in refused.output, refused.output
    data_dir = project / "data"
    data_dir.mkdir()
    shutil.move(project / "digits.npz", data_dir / "digits.npz")
    recipe = yaml.safe_load((project / "recipe.yaml").read_text())
    recipe["data"]["path"] = "data/digits.npz"
    (project / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert_refused(build(project / "recipe.yaml", str(data_dir)), "contains the data")
    assert (data_dir / "digits.npz").is_file() and (project / "model.keras").read_bytes() == (DIGITS / "model.keras").read_bytes()
    assert set(snapshot(project)) == (set(before) - {"digits.npz"}) | {"data/digits.npz"}


def test_out_is_the_cache_or_inside_it(project, tmp_path):
    cache = tmp_path / "caches" / "cache"
    (cache / "entry").mkdir(parents=True)
    (cache / "entry" / "f").write_text("cached\n")
    for out, why in ((cache, "is the cache"), (cache / "entry", "lies inside the cache"),
                     (cache.parent, "contains the cache")):
        assert_refused(build(project / "recipe.yaml", str(out), "--cache-dir", str(cache)), why)
    assert (cache / "entry" / "f").read_text() == "cached\n"


def test_out_holds_files_modelpack_did_not_write(project, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work\n")
    assert_refused(build(project / "recipe.yaml", str(foreign)), "did not write")
    # A manifest.json of another tool (a web app's) is not a modelpack manifest.
    (foreign / "manifest.json").write_text(json.dumps({"name": "my app", "icons": []}))
    assert_refused(build(project / "recipe.yaml", str(foreign)), "did not write")
    # A modelpack output with a file added by hand: that file is the user's.
    write_manifest(foreign)
    (foreign / "added-later.txt").write_text("mine\n")
    assert_refused(build(project / "recipe.yaml", str(foreign)), "added-later.txt")
    assert (foreign / "thesis.tex").read_text() == "years of work\n" and (foreign / "added-later.txt").exists()


def test_out_is_a_file(project, tmp_path):
    target = tmp_path / "plain-file"
    target.write_text("data\n")
    refused = build(project / "recipe.yaml", str(target))
    assert refused.exit_code == 2 and "is a file" in refused.output, refused.output
    assert target.read_text() == "data\n"


def test_default_output_folder_is_checked_too(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dist = tmp_path / "dist" / "victim"
    dist.mkdir(parents=True)
    (dist / "important.txt").write_text("not modelpack's\n")
    result = build(project / "recipe.yaml", None, "--cache-dir", str(tmp_path / "c"))
    assert_refused(result, "default output folder dist/victim", "important.txt")
    assert (dist / "important.txt").exists()


def test_refusal_comes_before_any_work(project, tmp_path):
    """A real process: refused in well under the time TensorFlow alone takes to import; nothing created."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    start = time.monotonic()
    proc = subprocess.run([str(MODELPACK), "build", str(project / "recipe.yaml"), "--out", str(project),
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TMPDIR": str(tmp)})
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert f"--out {project} is the recipe's folder" in proc.stderr
    assert elapsed < 5, elapsed
    assert not (tmp_path / "cache").exists() and list(tmp.iterdir()) == []
    assert not list(project.parent.glob(".project.*"))


def test_files_added_during_a_build_are_not_deleted(tmp_path):
    """The check runs again just before the old output is replaced."""
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError, match="late.txt"):
        with atomic_output_dir(out) as staging:
            (staging / "report.json").write_text("{}")
            (out / "late.txt").write_text("written while the build ran\n")
    assert (out / "late.txt").read_text() == "written while the build ran\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the staging folder is gone


def test_empty_folder_and_own_output_are_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with atomic_output_dir(out) as staging:
        (staging / "a.txt").write_text("first\n")
    write_manifest(out)
    with atomic_output_dir(out) as staging:
        (staging / "b.txt").write_text("second\n")
    assert [p.name for p in out.iterdir()] == ["b.txt"]


def test_sam_and_publish_files_are_carried_over_and_a_foreign_file_is_named(tmp_path):
    """What sam and publish write after a build is the user's: a rebuild keeps it; anything else still blocks,
    named by its path, with a folder that is not the refused one to build into instead."""
    out = tmp_path / "out"
    with atomic_output_dir(out) as staging:
        (staging / "lambda").mkdir()
        (staging / "lambda" / "template.yaml").write_text("first\n")
    write_manifest(out)
    (out / "lambda" / ".aws-sam" / "build").mkdir(parents=True)
    (out / "lambda" / ".aws-sam" / "build.toml").write_text("# sam\n")
    (out / "lambda" / "samconfig.toml").write_text("version = 0.1\n")
    (out / "publish.json").write_text("{}\n")
    with atomic_output_dir(out) as staging:
        (staging / "lambda").mkdir()
        (staging / "lambda" / "template.yaml").write_text("second\n")
        write_manifest(staging)
    assert (out / "lambda" / "template.yaml").read_text() == "second\n"
    assert (out / "lambda" / ".aws-sam" / "build.toml").read_text() == "# sam\n"
    assert (out / "lambda" / "samconfig.toml").exists() and (out / "publish.json").exists()
    (out / "lambda" / "notes.txt").write_text("mine\n")
    with pytest.raises(UsageError) as refused:
        with atomic_output_dir(out):
            pass
    message = str(refused.value)
    assert f"Move {out}/lambda/notes.txt out of the folder" in message and f"--out {tmp_path}/out-2" in message


@pytest.mark.slow
def test_sam_build_in_the_output_then_rebuild(digits_dist, tmp_path):
    """`sam build` where the build put template.yaml, then `modelpack build` again: the rebuild succeeds, keeps
    .aws-sam, and SAM's built template names the new zips."""
    from tests.helpers.builds import copy_dist
    from tests.helpers.sam import sam_cli

    dist = copy_dist(digits_dist, tmp_path / "copy")
    proc = subprocess.run([sam_cli(), "build"], cwd=dist.out / "lambda", capture_output=True, text=True,
                          timeout=300, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = dist.out / "lambda" / ".aws-sam" / "build" / "template.yaml"
    before = built.read_text()
    result = build(dist.recipe, str(dist.out), "--cache-dir", str(dist.cache))
    assert result.exit_code == 0, result.output
    assert "kept from the previous output" in result.output and "lambda/.aws-sam" in result.output
    assert built.read_text() == before
    code_uri = yaml.safe_load(before)["Resources"]["ModelFunction"]["Properties"]["CodeUri"]
    assert (built.parent / code_uri).resolve() == (dist.out / "lambda" / "function.zip").resolve()


@pytest.mark.slow
def test_sigterm_cleans_up_and_keeps_previous_output(digits_recipe, tmp_path):
    """SIGTERM while the worker runs: exit 143, no staging or temporary folders, no child left running,
    the previous output unchanged."""
    recipe = digits_recipe(optimize={"variants": ["tflite-fp32"]}, targets=[])
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"previous": true}\n')
    write_manifest(out)
    before = snapshot(out)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([str(MODELPACK), "build", str(recipe), "--out", str(out), "--no-cache", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + 120
    children: list[int] = []
    while time.monotonic() < deadline and not children:
        if list(tmp_path.glob(".out.*.building")) and list(tmp.glob("modelpack-*/worker.log")):
            children = _children(proc.pid)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert children, "the build never started its worker"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines() == ["terminated (SIGTERM): stopped and cleaned up; no output was changed."]
    assert not list(tmp_path.glob(".out.*")), list(tmp_path.iterdir())
    assert list(tmp.iterdir()) == []
    assert snapshot(out) == before
    time.sleep(0.2)
    assert not [pid for pid in children if _running(pid)], "a worker process outlived the build"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

