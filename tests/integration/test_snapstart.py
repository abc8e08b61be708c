"""SnapStart hooks of the generated Lambda handler, driven through the published snapshot-restore-py package as
Lambda's runtime drives them: before-snapshot hooks in reverse order of registration, after-restore hooks in
order, each phase in a fresh process that imported the handler as its init. A real redis-server stands in for a
network client the snapshot must not carry over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelpack.targets.snapstart import write_sample
from tests.helpers.handlers import GOOD, function_dir, log_lines
from tests.helpers.processes import free_port, wait_for_port
from tests.helpers.services import need

LAMBDA = r"""
import json, os, random, sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "without-library":
    sys.modules["snapshot_restore_py"] = None  # as on a runtime that does not ship it
import handler
facts = {"registered": handler.SNAPSTART is not None}
if facts["registered"]:
    import snapshot_restore_py as hooks
    calls = []
    def mine(name):  # a hook of the user's, registered after the handler's
        calls.append((name, handler.HOLDER.loaded, handler.HOLDER.cache._client is None))
    hooks.register_before_snapshot(mine, "user-before")
    hooks.register_after_restore(mine, "user-after")
    cache = handler.HOLDER.cache
    cache._connection().ping()  # a connection opened during init, as a warm-up might
    frozen_client = id(cache._client)
    for func, args, kwargs in reversed(hooks.get_before_snapshot()):
        func(*args, **kwargs)
    facts["after_prepare"] = {"loaded": handler.HOLDER.loaded, "loads": handler.HOLDER.loads,
                              "cache_kept": handler.HOLDER.cache is cache,
                              "lazy_modules": sorted(m for m in ("tensors", "oip", "result_cache") if m in sys.modules)}
    random.seed(7); frozen_random = random.random(); random.seed(7)
    for func, args, kwargs in hooks.get_after_restore():
        func(*args, **kwargs)
    facts["after_restore"] = {"client_dropped": cache._client is None, "random_differs": random.random() != frozen_random,
                              "environment": handler.SNAPSTART["environment"]}
    facts["calls"] = calls
event = {"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
         "headers": {"content-type": "application/json"}, "body": json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]})}
answer = handler.handler(event, None)
facts["status"], facts["loads_after_request"] = answer["statusCode"], handler.HOLDER.loads
if facts["registered"]:
    facts["reconnected"] = cache._client is not None and id(cache._client) != frozen_client
print("FACTS " + json.dumps(facts))
"""


@pytest.fixture
def redis_url():
    port = free_port()
    proc = subprocess.Popen([need("redis-server", "the SnapStart hook tests"), "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_port(port, 10)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def _package(tmp_path: Path, sample=GOOD) -> Path:
    fn = function_dir(tmp_path / "fn", snapstart=True, cache={"kind": "redis", "ttl_s": 30})
    write_sample(fn, {"x": np.asarray(sample, dtype=np.float32)})
    return fn


def _run(fn: Path, mode: str, redis_url: str) -> tuple[dict | None, list[dict], subprocess.CompletedProcess]:
    import os

    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", LAMBDA, str(fn), mode], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    facts = next((json.loads(ln[6:]) for ln in proc.stdout.splitlines() if ln.startswith("FACTS ")), None)
    lines = log_lines("\n".join(ln for ln in proc.stdout.splitlines() if ln.startswith("{")))
    return facts, lines, proc


def _dbsize(url: str) -> int:
    import redis

    return redis.Redis.from_url(url).dbsize()


def test_hooks_prepare_everything_before_the_snapshot_and_renew_the_environment_after(tmp_path, redis_url):
    facts, lines, proc = _run(_package(tmp_path), "with-library", redis_url)
    assert facts is not None, proc.stderr[-2000:]
    assert facts["registered"]
    # Lambda runs before-snapshot hooks in reverse order of registration: the user's, registered after the
    # handler's, ran first and saw no model; the
    # handler's then loaded the model once. After the restore the handler's hook ran first: the user's saw the
    # network client already dropped.
    assert facts["calls"] == [["user-before", False, False], ["user-after", True, True]]
    prepared = facts["after_prepare"]
    assert prepared["loaded"] and prepared["loads"] == 1 and prepared["cache_kept"]
    assert prepared["lazy_modules"] == ["oip", "result_cache", "tensors"]
    restored = facts["after_restore"]
    assert restored["client_dropped"] and restored["random_differs"] and len(restored["environment"]) == 16
    # The first request after the restore: answered, no load, no import, and its line says it was restored.
    assert facts["status"] == 200 and facts["loads_after_request"] == 1
    (line,) = [ln for ln in lines if ln.get("event") == "http"]
    assert line["cold"] is True and line["restored"] is True and line["imported_modules"] == 0
    assert "ModelLoadMs" not in line and line["RestoreHookMs"] >= 0
    # The network client reconnected from the restored environment, and only the client's request was cached.
    assert facts["reconnected"] and line["cache"] == "miss" and _dbsize(redis_url) == 1


def test_a_handler_without_snapshot_restore_py_serves_as_before(tmp_path, redis_url):
    facts, lines, proc = _run(_package(tmp_path), "without-library", redis_url)
    assert facts == {"registered": False, "status": 200, "loads_after_request": 1}
    (line,) = [ln for ln in lines if ln.get("event") == "http"]
    assert line["cold"] is True and "restored" not in line and line["ModelLoadMs"] > 0
    assert line["imported_modules"] > 0  # the lazy path ran in the request itself


def test_a_sample_the_handler_cannot_answer_fails_the_snapshot(tmp_path, redis_url):
    fn = _package(tmp_path, sample=[[0.1, 0.2, 0.3]])  # three values for a four-wide input
    facts, _, proc = _run(fn, "with-library", redis_url)
    assert facts is None and proc.returncode != 0
    assert "answered its shipped sample (application/x-npz) with 400" in proc.stderr
    assert _dbsize(redis_url) == 0


RESTORED = r"""
import json, sys
import handler, snapshot_restore_py as hooks
for func, args, kwargs in reversed(hooks.get_before_snapshot()):
    func(*args, **kwargs)
for func, args, kwargs in hooks.get_after_restore():
    func(*args, **kwargs)
answer = handler.handler({"instances": json.loads(sys.argv[1])}, None)
print("ANSWER " + json.dumps(answer))
"""


@pytest.mark.slow
def test_a_snapstart_build_ships_what_its_hooks_need_and_restores_without_loading(tmp_path, digits_dist):
    """The digits example built with snapstart: true for Lambda's python3.12 (the session build's cache, so only
    the layer and function are new), its zips extracted, and the handler run by python3.12 as Lambda runs it
    (no site, no bytecode written) with the published snapshot-restore-py next to it."""
    import os
    import shutil
    import zipfile

    import snapshot_restore_py
    import yaml

    from modelpack.host.interpreters import find
    from tests.helpers.builds import run_build, variant_predictions, write_digits_recipe
    from tests.helpers.paths import DIGITS

    python = find("3.12")
    if python is None:
        pytest.fail("python3.12 is needed to run a SnapStart handler (Lambda offers SnapStart on 3.12 and later)")
    recipe = write_digits_recipe(tmp_path / "recipe.yaml", optimize={"variants": ["tflite-fp32"]}, targets=[
        {"kind": "lambda-layer", "python": "3.12"}, {"kind": "lambda-function", "snapstart": True}])
    out = tmp_path / "out"
    report = run_build(recipe, out, digits_dist.cache)
    function = next(a for a in report["artifacts"] if a["path"] == "lambda/function.zip")
    assert function["details"]["snapstart"] is True
    props = yaml.safe_load((out / "lambda" / "template.yaml").read_text())["Resources"]["ModelFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"} and props["AutoPublishAlias"] == "live"
    task, opt, lib = tmp_path / "task", tmp_path / "opt", tmp_path / "lib"
    with zipfile.ZipFile(out / "lambda" / "function.zip") as zf:
        zf.extractall(task)
    with zipfile.ZipFile(out / "lambda" / "layer.zip") as zf:
        zf.extractall(opt)
    assert json.loads((task / "modelpack.json").read_text())["snapstart"] is True
    with np.load(task / "snapstart-sample.npz", allow_pickle=False) as npz:  # the build's first evaluation sample
        assert npz.files == ["image"] and npz["image"].shape[0] == 1
    lib.mkdir()
    shutil.copyfile(snapshot_restore_py.__file__, lib / "snapshot_restore_py.py")
    x = np.load(DIGITS / "digits.npz")["x"][5:6]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(str(p) for p in (task, opt / "python", lib))}
    proc = subprocess.run([python, "-S", "-c", RESTORED, json.dumps(x.tolist())], capture_output=True, text=True,
                          env=env, cwd=task, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(next(ln[7:] for ln in proc.stdout.splitlines() if ln.startswith("ANSWER ")))
    expected = variant_predictions(digits_dist, x)
    assert np.allclose(np.asarray(answer["predictions"]), expected, atol=1e-5)
    (line,) = [ln for ln in log_lines("\n".join(ln for ln in proc.stdout.splitlines() if ln.startswith("{")))
               if ln.get("event") == "direct"]
    assert line["cold"] is True and line["restored"] is True and line["imported_modules"] == 0
    assert "ModelLoadMs" not in line and line["InferenceMs"] > 0
