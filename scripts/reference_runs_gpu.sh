#!/usr/bin/env bash
# The reference runs on a machine with an accelerator and JAX, which may have no TensorFlow at all:
# fer_core trains and writes model.keras without it (tests/test_jax_backend.py checks that path on the CPU,
# with TensorFlow hidden, and that the TensorFlow app then serves the model alike). The commands are
# the CPU ones; only the backend differs. Not yet run on an accelerator: none was lent while the committed
# runs were made, so every figure in the README comes from the CPU scripts.
#
#   scripts/reference_runs_gpu.sh [FER_DIR] [CK_DIR] [STAGE]
#
# STAGE default: the default model's command (README, Results), into runs/default-fer_vgg-fer2013-jax,
#                so the committed default model is left alone
# STAGE ck:      scripts/reference_runs_ckplus.sh from DEFAULT_RUN (default: the committed default model);
#                it rewrites runs/kfold-ck-*.json, so `git diff runs` shows how the figures moved
# STAGE all:     both (the default)
set -eu
FER=${1:-../shared/data/fer2013}
CK=${2:-../shared/data/ckplus/CK+48}
STAGE=${3:-all}
# JAX grabs most of the accelerator's memory up front unless told not to
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$STAGE" = default ] || [ "$STAGE" = all ]; then
  python3 -m fer_core train --data "$FER" --backbone fer_vgg --split official --input-size 24 \
    --epochs 80 --batch-size 64 --optimizer adam --lr 1e-3 --schedule cosine --early-stopping 0 --dropout 0.4 \
    --precision mixed_bfloat16 --match-sharpness auto --max-train-seconds 3000 \
    --run-dir runs/default-fer_vgg-fer2013-jax
fi
if [ "$STAGE" = ck ] || [ "$STAGE" = all ]; then
  scripts/reference_runs_ckplus.sh "$CK" "${DEFAULT_RUN:-runs/default-fer_vgg-fer2013}"
fi
