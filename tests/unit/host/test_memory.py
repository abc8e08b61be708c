"""The build's memory record: the whole process tree's peak per stage, children that came and went included."""

from __future__ import annotations

import json
import subprocess
import sys

from modelpack.host.memory import TreeMemory, tree_rss_bytes

MIB = 1024 * 1024

# A fresh interpreter, so the kernel's largest-finished-child figure starts from this test's own children.
SCRIPT = r"""
import json, subprocess, sys, time
from modelpack.host.memory import TreeMemory
HOLD = "import time; b = bytearray(%d); b[::4096] = b'x' * len(b[::4096]); time.sleep(%s)"
usage = TreeMemory(interval_s=0.05)
with usage.running():
    with usage.stage("idle"):
        time.sleep(0.3)
    with usage.stage("long child"):
        subprocess.run([sys.executable, "-c", HOLD % (300 * 2**20, "1.0")], check=True)
    with usage.stage("brief child"):
        subprocess.run([sys.executable, "-c", HOLD % (400 * 2**20, "0")], check=True)
print(json.dumps(usage.record()))
"""


def test_each_stage_records_the_tree_peak_including_children_too_brief_to_sample():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    record = json.loads(out.stdout.strip().splitlines()[-1])
    peaks = record["peak_rss_mb"]
    assert set(peaks) == set(record["seconds"]) == {"idle", "long child", "brief child"}
    assert peaks["idle"] < 200
    assert peaks["long child"] >= 300  # sampled while the child held its 300 MiB
    assert peaks["brief child"] >= 400  # gone before a sample: the kernel's figure for finished children
    assert record["peak_rss_mb_max"] == max(peaks.values())
    assert record["seconds"]["long child"] >= 1.0


def test_tree_rss_counts_this_process():
    assert tree_rss_bytes() > 10 * MIB


def test_record_is_empty_but_well_formed_without_stages():
    assert TreeMemory().record() == {"peak_rss_mb": {}, "peak_rss_mb_max": None, "seconds": {}}
