"""Shared helpers of the benchmark scripts: MNIST from ``$VAEKIT_DATA_DIR`` and the machine."""

from __future__ import annotations

import gzip
import os
import platform

import numpy as np


def data_dir() -> str:
    d = os.environ.get("VAEKIT_DATA_DIR")
    if not d:
        here = os.path.dirname(os.path.abspath(__file__))
        d = os.path.normpath(os.path.join(here, "..", "..", "shared", "data"))
    return d


def mnist_binarized(n: int = 60000) -> np.ndarray:
    """The first ``n`` MNIST training images, ``[n, 784]`` float32, binarized at 0.5."""
    path = os.path.join(data_dir(), "mnist", "train-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: set VAEKIT_DATA_DIR to the folder holding mnist/.")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, count, rows, cols = np.frombuffer(raw[:16], ">i4")
    if magic != 2051:
        raise SystemExit(f"{path} is not an IDX image file (magic {magic}).")
    x = np.frombuffer(raw[16:], np.uint8).reshape(count, rows * cols)[:n]
    return (x / 255.0 > 0.5).astype(np.float32)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical cpus"
