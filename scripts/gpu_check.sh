#!/usr/bin/env bash
# The GPU path on a machine with a CUDA GPU, within a 7-minute timeout: the benchmark's overhead,
# data and utilisation sections under trainer=gpu (bf16-mixed, channels-last, pinned memory,
# 4 persistent workers), printing examples/s, the framework/hand-written ratio and the model
# FLOP utilisation against this GPU's measured bf16 matmul peak. The overhead is 9 whole-epoch
# pairs in alternating order, as on CPU (docs/performance.md).
#
#   scripts/gpu_check.sh                 # after `make install`; figures in outputs/benchmark/gpu.md
#   COMPILE=1 scripts/gpu_check.sh       # the same with model.compile=true
#
# What a sweep costs in GPU-hours is a longer, separate pass (every fusion, one-epoch jobs):
#   .venv/bin/python scripts/benchmark_sweep_cost.py --device cuda   # GPU rows of docs/scaling.md
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
"$python" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible: this check needs one"
print(torch.cuda.get_device_name(), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
extra=()
if [[ "${COMPILE:-0}" == 1 ]]; then extra+=(--compile); fi
exec timeout 420 "$python" scripts/benchmark.py --device cuda --sections overhead data utilisation \
    --repeats 3 --pairs 9 --batches 30 --out outputs/benchmark/gpu.json "${extra[@]}"
