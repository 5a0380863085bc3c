#!/usr/bin/env bash
# The reference runs behind the README's results, as they were trained on a lent H100
# with the JAX backend (the accelerator machine has JAX but no TensorFlow; the same
# fer_core code runs there unchanged). Run from the repository root:
#
#   scripts/reference_runs_gpu.sh ../shared/data/fer2013 ../shared/data/ckplus/CK+48 [STAGE]
#
# STAGE "fer": default-model candidates + backbone comparison on FER2013 (+ CK+ transfer of each)
# STAGE "ck":  CK+ 10-fold with the default model's backbone (transfer vs scratch, subject vs random split)
# Every process has a wall-clock limit so the whole stage fits a 10-minute slot.
set -u
FER=${1:?FER2013 folder}; CK=${2:?CK+48 folder}; STAGE=${3:-fer}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
RUNS=runs; LOGS=$RUNS/logs; mkdir -p "$LOGS"
PY=${PYTHON:-python3}

if [ "$STAGE" = fer ]; then
  # Default-model candidates: fer_vgg on FER2013, selected later on PublicTest (val) only.
  common="--data $FER --backbone fer_vgg --split official --epochs 120 --batch-size 64 --runs-dir $RUNS --max-train-seconds 400"
  timeout 540 $PY -m fer_core train $common --name default-adam-plateau --optimizer adam --lr 1e-3 --schedule plateau --early-stopping 25 >"$LOGS/d1.log" 2>&1 &
  timeout 540 $PY -m fer_core train $common --name default-sgd-plateau --optimizer sgd --lr 0.01 --schedule plateau --early-stopping 25 >"$LOGS/d2.log" 2>&1 &
  timeout 540 $PY -m fer_core train $common --name default-adam-plateau-ls --optimizer adam --lr 1e-3 --schedule plateau --early-stopping 25 --label-smoothing 0.1 >"$LOGS/d3.log" 2>&1 &
  timeout 540 $PY -m fer_core train $common --name default-sgd-cosine --optimizer sgd --lr 0.01 --schedule cosine --epochs 70 --early-stopping 0 >"$LOGS/d4.log" 2>&1 &

  # Backbone comparison: the same 180 s of training per backbone, all seven side by side on one GPU,
  # from scratch (no ImageNet download here); then each FER2013 backbone transferred to CK+ (10 folds, head only).
  for bb in custom_cnn fer_vgg vgg16 vgg19 resnet50v2 mobilenetv2 efficientnetb0; do
    (
      timeout 310 $PY -m fer_core train --data "$FER" --backbone $bb --split official --epochs 300 --early-stopping 0 \
        --max-train-seconds 180 --name cmp-fer-$bb --runs-dir $RUNS >"$LOGS/cmp-fer-$bb.log" 2>&1
      src=$(tail -n 1 "$LOGS/cmp-fer-$bb.log")
      [ -f "$src/model.keras" ] && timeout 200 $PY -m fer_core kfold --data "$CK" --backbone $bb --weights "run:$src" \
        --augment off --epochs 60 --early-stopping 15 --folds 10 --name cmp-ck-$bb --runs-dir $RUNS >"$LOGS/cmp-ck-$bb.log" 2>&1
    ) &
  done
  wait
fi

if [ "$STAGE" = ck ]; then
  SRC=${DEFAULT_RUN:?set DEFAULT_RUN to the default model run folder}
  ck="--data $CK --backbone fer_vgg --folds 10 --runs-dir $RUNS --batch-size 32"
  # transfer: head on frozen FER2013 features, then fine-tune everything at a low LR (BatchNorm frozen)
  timeout 540 $PY -m fer_core kfold $ck --name ck-transfer --weights "run:$SRC" --augment off --epochs 30 \
    --early-stopping 10 --fine-tune-layers -1 --fine-tune-epochs 30 --fine-tune-lr 1e-4 >"$LOGS/ck-transfer.log" 2>&1 &
  timeout 540 $PY -m fer_core kfold $ck --name ck-scratch --weights none --epochs 60 --early-stopping 20 >"$LOGS/ck-scratch.log" 2>&1 &
  timeout 540 $PY -m fer_core kfold $ck --name ck-transfer-random --split random:0.1 --weights "run:$SRC" --augment off --epochs 30 \
    --early-stopping 10 --fine-tune-layers -1 --fine-tune-epochs 30 --fine-tune-lr 1e-4 >"$LOGS/ck-transfer-random.log" 2>&1 &
  timeout 540 $PY -m fer_core kfold $ck --name ck-scratch-random --split random:0.1 --weights none --epochs 60 --early-stopping 20 >"$LOGS/ck-scratch-random.log" 2>&1 &
  wait
fi
echo "stage $STAGE done"
