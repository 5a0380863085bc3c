#!/usr/bin/env bash
# CK+48 transfer learning, shown for real: the default model's backbone, pre-trained on FER2013,
# transferred to CK+ with a new head, versus the same net trained from scratch; subject-independent
# 10-fold (no person in both train and test), plus the random-split protocol of the seed notebooks.
#
#   scripts/reference_runs_ckplus.sh [CK_DIR] [DEFAULT_RUN]
#
# Writes runs/kfold-ck-*.json summaries (mean, std, per fold) and one run folder per fold.
set -eu
CK=${1:-../shared/data/ckplus/CK+48}
SRC=${2:-runs/default-fer_vgg-fer2013}
common="--data $CK --backbone fer_vgg --runs-dir runs --batch-size 32 --precision mixed_bfloat16"
transfer="--weights run:$SRC --augment off --epochs 30 --early-stopping 10 --fine-tune-layers -1 --fine-tune-epochs 10 --fine-tune-lr 1e-4"

# transfer: head on frozen FER2013 features (cached once), then fine-tune everything at a low LR, BatchNorm frozen
python3 -m fer_core kfold $common $transfer --folds 10 --name ck-transfer
# the same net from scratch, same folds
python3 -m fer_core kfold $common --weights none --epochs 15 --early-stopping 0 --schedule cosine --folds 10 --name ck-scratch
# the seed notebooks' protocol: random 10% hold-out (frames of one person in train and test), 5 seeds
python3 -m fer_core kfold $common $transfer --split random:0.1 --folds 5 --name ck-transfer-random
