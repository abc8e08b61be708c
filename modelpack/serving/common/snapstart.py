"""Lambda SnapStart: what the handler does before Lambda snapshots it and after each restore from that snapshot.

Shipped inside generated handlers; imported only when modelpack.json says "snapstart": true. The hooks are
registered through snapshot_restore_py, which Lambda's Python 3.12+ runtimes include; where it is missing (a
local run, another host) nothing is registered and the handler serves as it would without SnapStart.

Before the snapshot (once, when a version is published): import every module a request may need, load and
verify the model, and answer the shipped sample (snapstart-sample.npz) through the handler's own request path,
as an .npz body and as JSON, with the result cache set aside, so the model's pages are touched and every lazy
path has run once. The snapshot then holds all of it: the first request after a restore imports and loads
nothing.
After each restore (every new execution environment): reseed the random generators, which the snapshot froze
for every environment alike; drop network clients (the Redis result cache, boto3's default session) so they
connect again from this environment on first use; and draw a fresh environment id, checked to differ from the
one the snapshot held.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import random
import sys
import time

SAMPLE = "snapstart-sample.npz"
# Request-path modules imported on first use; each that the package carries is imported before the snapshot.
LAZY = ("oip", "tensors", "images", "result_cache", "orjson", "pybase64", "PIL.Image")
STATE = {"registered": False, "prepared": False, "restored": False, "prepare_ms": None, "restore_ms": None,
         "environment": os.urandom(8).hex()}


def register(holder, base_dir: str, route: str, limit: int) -> bool:
    """Register the two hooks; False (and nothing registered) when snapshot_restore_py is not there."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(prepare, holder, base_dir, route, limit)
    register_after_restore(restore, holder)
    STATE["registered"] = True
    return True


def prepare(holder, base_dir: str, route: str, limit: int) -> None:
    """Everything a first request would do, done once before the snapshot. Raises when the sample cannot be
    answered: Lambda then fails the version's publication instead of snapshotting a handler that cannot serve."""
    started = time.perf_counter()
    for name in LAZY:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # not in this package: no request can need it
    import routes

    holder.get()
    with open(os.path.join(base_dir, SAMPLE), "rb") as f:
        npz = f.read()
    import numpy as np

    with np.load(io.BytesIO(npz), allow_pickle=False) as arrays:
        body = json.dumps({"inputs": {name: arrays[name].tolist() for name in arrays.files}}, allow_nan=False)
    cache, holder.cache = holder.cache, None  # the sample is no client's request: nothing cached, no connection
    try:
        for media, payload in (("application/x-npz", npz), ("application/json", body)):
            try:
                reply = routes.handle(holder, "POST", "/" + route, {"content-type": media}, payload, limit)
                status, said = reply.status, reply.body
            except Exception as exc:  # what a request would have answered as a 4xx or 5xx
                status, said = getattr(exc, "status", 500), f"{type(exc).__name__}: {exc}"
            if status != 200:
                raise RuntimeError(f"the handler answered its shipped sample ({media}) with {status}: "
                                   f"{str(said)[:300]}")
    finally:
        holder.cache = cache
    STATE["prepared"] = True
    STATE["prepare_ms"] = (time.perf_counter() - started) * 1e3


def restore(holder) -> None:
    """Make this environment its own: fresh random state, no connection opened by another, a new id."""
    started = time.perf_counter()
    frozen = STATE["environment"]
    random.seed()  # from os.urandom
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()
    cache = getattr(holder, "cache", None)
    if cache is not None and hasattr(cache, "reset"):
        cache.reset()
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None
    STATE["environment"] = os.urandom(8).hex()
    if STATE["environment"] == frozen:  # the kernel's generator came back from the snapshot too
        raise RuntimeError("os.urandom repeated its value across a restore; refusing to serve with shared randomness")
    STATE["restored"] = True
    STATE["restore_ms"] = (time.perf_counter() - started) * 1e3
