#!/usr/bin/env bash
# The backbone comparison behind the README table: every backbone gets the same wall-clock
# training budget, at input 48x48, weights none (ImageNet weights cannot be downloaded on the
# machine the committed runs came from; pass WEIGHTS=imagenet where you have them).
#
#   scripts/reference_runs_backbones.sh [CK_DIR] [FER_DIR]
#   CK_SECONDS=40 FER_SECONDS=150 FER_SAMPLES=6000 scripts/reference_runs_backbones.sh   (the committed runs;
#   FER_SECONDS=0: CK+ only; CK_SECONDS=0: FER2013 only). About 90 minutes on 2 CPU cores.
#
# CK+48: subject-independent 10-fold, CK_SECONDS of training per fold -> runs/kfold-ck-bb-<backbone>.json,
#          then results/ck-bb-<backbone>.json
# FER2013: a stratified FER_SAMPLES-image training subset, FER_SECONDS of training, official split
#          (PublicTest for model selection, all 3,589 PrivateTest faces for the test) -> runs/fer-bb-<backbone>,
#          then results/fer-bb.json
# Then `python -m fer_core results --collect` packs them into results/ (the committed collections) and prints the
# tables.
set -u   # no -e: one backbone failing should not cost the others their runs
CK=${1:-../shared/data/ckplus/CK+48}
FER=${2:-../shared/data/fer2013}
CK_SECONDS=${CK_SECONDS:-40}
FER_SECONDS=${FER_SECONDS:-150}
FER_SAMPLES=${FER_SAMPLES:-6000}
WEIGHTS=${WEIGHTS:-none}
BACKBONES=${BACKBONES:-"fer_vgg custom_cnn vgg16 vgg19 resnet50v2 mobilenetv2 efficientnetb0"}
common="--input-size 48 --weights $WEIGHTS --epochs 100 --schedule cosine --early-stopping 0 --batch-size 32 --precision mixed_bfloat16 --runs-dir runs"

[ "$CK_SECONDS" = 0 ] && BACKBONES_CK="" || BACKBONES_CK=$BACKBONES   # CK_SECONDS=0: FER2013 only
for bb in $BACKBONES_CK; do
  python3 -m fer_core kfold --data "$CK" --backbone "$bb" $common --max-train-seconds "$CK_SECONDS" \
    --folds 10 --name "ck-bb-$bb"
done
[ "$FER_SECONDS" = 0 ] && BACKBONES_FER="" || BACKBONES_FER=$BACKBONES   # FER_SECONDS=0: CK+ only
for bb in $BACKBONES_FER; do
  rm -rf "runs/fer-bb-$bb"
  python3 -m fer_core train --data "$FER" --backbone "$bb" --split official $common \
    --max-train-seconds "$FER_SECONDS" --max-samples "$FER_SAMPLES" --eval-samples 0 \
    --run-dir "runs/fer-bb-$bb"
done
python3 -m fer_core results --collect
