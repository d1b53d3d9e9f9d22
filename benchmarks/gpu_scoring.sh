#!/usr/bin/env bash
# Layouts on a GPU: padded, packed and shared-prefix scoring (mask-free attention, and the dense
# 4-D-mask fallback for comparison) of randomly initialised Llama-shaped scorers (1B and 8B,
# bfloat16, SDPA) on HH pairs and GRPO-style groups (16 responses to one long prompt). Prints
# tokens/s, the fraction of the bf16 matmul peak measured in the same run, and peak memory.
#
# Prepare on a machine that has ../shared/data (real HH rows + SmolLM2's tokenizer):
#     .venv/bin/python benchmarks/layout_scoring.py --prepare .gpu
# then, on the GPU machine, from the repository root (carry .gpu along):
#     bash benchmarks/gpu_scoring.sh                   # SIZES=1b,8b by default
#     SIZES=1b LAYOUTS=padded,packed,shared bash benchmarks/gpu_scoring.sh
# On a CPU, tiny shapes and made-up rows, in seconds (what the test suite runs):
#     bash benchmarks/gpu_scoring.sh --cpu-smoke
# The older naive/padded/shared/packed comparison on real HH, GSM8K and MT-Bench rows is
# `benchmarks/scoring.py --device cuda` (see docs/performance.md).
set -euo pipefail
PY=${PYTHON:-python3}
DIR=${GPU_DIR:-.gpu}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if [ "${1:-}" = "--cpu-smoke" ]; then
  exec "$PY" benchmarks/layout_scoring.py "$@"
fi
if [ ! -f "$DIR/layouts.json" ] || [ ! -d "$DIR/tokenizer" ]; then
  echo "error: $DIR/layouts.json or $DIR/tokenizer missing; run benchmarks/layout_scoring.py --prepare $DIR first" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" benchmarks/layout_scoring.py --device cuda --dir "$DIR" \
  --sizes "${SIZES:-1b,8b}" --layouts "${LAYOUTS:-padded,packed,shared,packed-dense,shared-dense}" \
  --budget "${BUDGET:-262144}" --pack-length "${PACK:-8192}" --gemm-size 8192 "$@"
