#!/usr/bin/env bash
# The headline recipes on a machine with an accelerator and JAX, which may have no TensorFlow at all:
# fer_core trains and writes model.keras without it (tests/test_jax_backend.py checks that path on the CPU,
# with TensorFlow hidden, and that the TensorFlow app then serves the model alike). The commands are the CPU
# ones of scripts/reference_runs.sh with a longer budget; only the backend differs. Not yet run on an
# accelerator: none was lent while the committed runs were made.
#
#   scripts/reference_runs_gpu.sh [BUDGET_SECONDS]       (default 3600)
#
# Writes runs/fer2013-fer_vgg-48-jax and runs/ferplus-fer_vgg-48-jax, leaving the committed runs alone.
set -eu
BUDGET=${1:-3600}
# JAX grabs most of the accelerator's memory up front unless told not to
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."
recipe="--backbone fer_vgg --split official --input-size 48 --epochs 300 --batch-size 64 --optimizer adam --lr 1e-3
        --schedule cosine --early-stopping 0 --dropout 0.4 --precision mixed_bfloat16 --max-train-seconds $BUDGET"
python3 -m fer_core train --data ../shared/data/fer2013 $recipe --run-dir runs/fer2013-fer_vgg-48-jax
python3 -m fer_core train --data ../shared/data/ferplus --label-mode probability $recipe --run-dir runs/ferplus-fer_vgg-48-jax
python3 -m fer_core evaluate runs/fer2013-fer_vgg-48-jax --data ../shared/data/fer2013 --split test --json
python3 -m fer_core evaluate runs/ferplus-fer_vgg-48-jax --data ../shared/data/ferplus --split test --json
