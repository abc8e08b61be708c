"""Recent predictions keyed by a hash of the checked input arrays.

Shipped inside generated handlers; standard library only, plus the redis client for `kind: redis` (added to
the package only when that kind is configured).

memory: per execution environment, least recently used entries evicted beyond max_items, each kept ttl_s.
redis:  shared across environments through REDIS_URL, entries expire after ttl_s. Any Redis failure is
        logged as a warning and the request goes on uncached; Redis is left alone for a few seconds after a
        failure so an outage does not add a timeout to every request. An entry that is not strict JSON or
        fails the caller's check (model sha256, shape of the result) is a miss with one warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict

REDIS_TIMEOUT_S = 0.25
REDIS_RETRY_S = 5.0


def request_key(model_sha256: str, arrays: dict) -> str:
    """The same checked inputs (names, dtypes, shapes, bytes) for the same model give the same key."""
    h = hashlib.sha256(model_sha256.encode())
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


class Counters:
    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.errors = 0


class MemoryCache:
    kind = "memory"

    def __init__(self, max_items: int, ttl_s: float):
        self.max_items, self.ttl_s = max_items, ttl_s
        self._items: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self._lock = threading.Lock()
        self.counters = Counters()

    def get(self, key: str, check=None) -> dict | None:
        """The entry under `key`; `check` is unused: these entries never left this process."""
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] > now:
                self._items.move_to_end(key)
                self.counters.hits += 1
                return item[1]
            if item is not None:
                del self._items[key]
            self.counters.misses += 1
            return None

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


class RedisCache:
    kind = "redis"

    def __init__(self, url: str | None, ttl_s: float, prefix: str, warn):
        self.url, self.ttl_s, self.prefix, self._warn = url, ttl_s, prefix, warn
        self._client = None
        self._down_until = 0.0
        self.counters = Counters()

    def _connection(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=REDIS_TIMEOUT_S,
                                                socket_connect_timeout=REDIS_TIMEOUT_S)
        return self._client

    def reset(self) -> None:
        """Forget the connection (one opened by another environment, after a SnapStart restore): the next use
        opens a new one."""
        self._client = None
        self._down_until = 0.0

    def _failed(self, exc: Exception) -> None:
        self.counters.errors += 1
        self._down_until = time.monotonic() + REDIS_RETRY_S
        self._warn(f"result cache unavailable, serving without it for {REDIS_RETRY_S:g} s: "
                   f"{type(exc).__name__}: {str(exc)[:160]}")

    def get(self, key: str, check=None) -> dict | None:
        """The entry under `key`, or None. Anything else can write to a shared Redis, so an entry that is not
        strict JSON, or that `check(value)` finds a problem with, is a miss with one warning."""
        if not self.url or time.monotonic() < self._down_until:
            self.counters.misses += 1
            return None
        try:
            raw = self._connection().get(self.prefix + key)
        except Exception as exc:  # any client or network failure degrades to no cache
            self._failed(exc)
            self.counters.misses += 1
            return None
        if raw is None:
            self.counters.misses += 1
            return None
        try:
            value = json.loads(raw, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            value, problem = None, f"not strict JSON ({str(exc)[:80]})"
        else:
            try:
                problem = check(value) if check is not None else None
            except Exception as exc:  # a value no check foresaw is still only a miss
                problem = f"unreadable ({type(exc).__name__})"
        if problem is not None:
            self.counters.misses += 1
            self.counters.errors += 1
            self._warn(f"result cache entry {key[:16]} is ill-formed ({problem}); treated as a miss and replaced")
            return None
        self.counters.hits += 1
        return value

    def put(self, key: str, value: dict) -> None:
        if not self.url or time.monotonic() < self._down_until:
            return
        try:
            text = json.dumps(value, allow_nan=False)
        except ValueError:  # never cache what could not be served as strict JSON
            return
        try:
            self._connection().set(self.prefix + key, text, ex=max(1, int(self.ttl_s)))
        except Exception as exc:
            self._failed(exc)


def make(config: dict | None, model_sha256: str, warn):
    """The cache a handler's config asks for, or None."""
    if not config:
        return None
    if config["kind"] == "memory":
        return MemoryCache(int(config.get("max_items", 1024)), float(config.get("ttl_s", 300)))
    url = os.environ.get("REDIS_URL")
    if not url:
        warn("result cache kind redis, but REDIS_URL is not set: serving without a cache")
    return RedisCache(url, float(config.get("ttl_s", 300)), f"modelpack:{model_sha256[:16]}:", warn)
