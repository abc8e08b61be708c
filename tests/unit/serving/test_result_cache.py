"""The handlers' result cache (modelpack/serving/common/result_cache.py), without a server."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.helpers.serving import serving_module


@pytest.fixture(scope="module")
def result_cache():
    return serving_module("result_cache")


def test_request_key_depends_on_values_dtype_shape_and_model(result_cache):
    a = {"x": np.zeros((1, 4), np.float32)}
    key = result_cache.request_key("m1", a)
    assert key == result_cache.request_key("m1", {"x": np.zeros((1, 4), np.float32)})
    assert key != result_cache.request_key("m2", a)
    assert key != result_cache.request_key("m1", {"x": np.zeros((1, 4), np.float64)})
    assert key != result_cache.request_key("m1", {"x": np.zeros((2, 2), np.float32)})
    assert key != result_cache.request_key("m1", {"x": np.ones((1, 4), np.float32)})


def test_memory_cache_evicts_least_recently_used(result_cache):
    cache = result_cache.MemoryCache(max_items=2, ttl_s=60)
    cache.put("a", {"v": 1})
    cache.put("b", {"v": 2})
    assert cache.get("a") == {"v": 1}  # a is now the most recent
    cache.put("c", {"v": 3})
    assert cache.get("b") is None and cache.get("a") == {"v": 1} and cache.get("c") == {"v": 3}
    assert (cache.counters.hits, cache.counters.misses) == (3, 1)


def test_memory_cache_honours_ttl(result_cache):
    cache = result_cache.MemoryCache(max_items=10, ttl_s=0.05)
    cache.put("a", {"v": 1})
    assert cache.get("a") == {"v": 1}
    time.sleep(0.08)
    assert cache.get("a") is None


def test_redis_without_url_warns_once_and_serves_uncached(result_cache):
    warnings = []
    cache = result_cache.make({"kind": "redis", "ttl_s": 5}, "0" * 64, warnings.append)
    assert cache.get("k") is None
    cache.put("k", {"v": 1})
    assert cache.get("k") is None and cache.counters.misses == 2
    assert len(warnings) == 1 and "REDIS_URL is not set" in warnings[0]


def test_redis_unreachable_degrades_and_backs_off(result_cache):
    warnings = []
    cache = result_cache.RedisCache("redis://127.0.0.1:1/0", 5, "p:", warnings.append)
    started = time.perf_counter()
    assert [cache.get("k") for _ in range(5)] == [None] * 5
    cache.put("k", {"v": 1})
    assert time.perf_counter() - started < 2  # one failed attempt, then left alone
    assert len(warnings) == 1 and "unavailable" in warnings[0] and cache.counters.errors == 1
