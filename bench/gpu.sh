#!/usr/bin/env bash
# The GPU benchmark (bench/gpu.py) as one command that finishes within 5 minutes on one GPU.
#   bash bench/gpu.sh                               # on a GPU machine, from the repository root
#   VAEKIT_GPU_BENCH_QUICK=1 bash bench/gpu.sh      # a quick check on a CPU (numbers mean nothing)
# Uses $PYTHON (default python3) with vaekit importable (installed, or PYTHONPATH=src).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="${here}/../src${PYTHONPATH:+:${PYTHONPATH}}"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L || true
exec timeout 290 "${PYTHON:-python3}" "${here}/gpu.py" "$@"
