#!/usr/bin/env bash
# Scoring throughput on a GPU: naive padded pipeline vs engine (sorted, shared prompts, packed)
# with a randomly initialised Llama-shaped decoder in bfloat16 (SDPA attention), and the
# fraction of the GPU's measured bf16 matmul peak.
#
# Prepare on a machine that has ../shared/data (real HH, GSM8K and MT-Bench rows + a tokenizer):
#     .venv/bin/python benchmarks/scoring.py --prepare-gpu .gpu --pairs 1000 --bo4 300 --bo16 60
# then, on the GPU machine, from the repository root (SIZE=1b|3b|8b, default 1b):
#     bash benchmarks/gpu_scoring.sh
set -euo pipefail
PY=${PYTHON:-python3}
DIR=${GPU_DIR:-.gpu}
SIZE=${SIZE:-1b}
MODEL=${MODEL_DIR:-/tmp/rewardkit-llama-$SIZE}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if [ ! -f "$DIR/workloads.json" ] || [ ! -d "$DIR/tokenizer" ]; then
  echo "error: $DIR/workloads.json or $DIR/tokenizer missing; run benchmarks/scoring.py --prepare-gpu $DIR first" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name(0))"
[ -d "$MODEL" ] || "$PY" benchmarks/scoring.py --make-random-model "$SIZE" --tokenizer "$DIR/tokenizer" --out "$MODEL"
"$PY" benchmarks/scoring.py --device cuda --workloads-file "$DIR/workloads.json" \
  --models "classifier:$MODEL" --dtypes bfloat16 --gemm-size 8192 \
  --budget "${BUDGET:-262144}" --max-batch-size 1024 --pack-length "${PACK:-4096}" \
  --max-length 4096 --naive-batch 8 --precision-specs '' "$@"
