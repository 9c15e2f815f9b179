"""bench/gpu.sh, the prepared GPU benchmark, runs end to end in its quick CPU mode."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_quick_mode_prints_its_table():
    env = dict(os.environ, VAEKIT_GPU_BENCH_QUICK="1", PYTHON=sys.executable)
    r = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh")], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "QUICK MODE" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("| vk.")]
    assert [row.split("|")[1:3] for row in rows] == [
        [" vk.fit batch 200 ", " float32 "],
        [" vk.fit batch 200 ", " bfloat16 "],
        [" vk.fit batch 1024 ", " float32 "],
        [" vk.fit batch 1024 ", " bfloat16 "],
        [" vk.log_likelihood 16 x 64 ", " float32 "],
    ]
    for row in rows:  # every measured time is a positive number
        cells = [c.strip() for c in row.split("|")[3:5]]
        assert all(re.fullmatch(r"\d+\.\d+", c) and float(c) > 0 for c in cells), row
