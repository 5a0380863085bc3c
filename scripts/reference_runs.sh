#!/usr/bin/env bash
# The committed headline runs, as they were made on this project's 2-core CPU machine (README, Results).
#
#   scripts/reference_runs.sh [STAGE]        STAGE: fer2013 | ferplus | export | default | ckplus | all (default)
#
# fer2013  FER2013, 7 classes: 85 minutes from scratch, then 90 more minutes from that model at a lower
#          learning rate; selected on PublicTest (best epoch, and the better of the two runs), PrivateTest
#          scored once at the end
# ferplus  FER+, 8 classes, trained on the annotators' vote distribution (Microsoft's 'probability' mode),
#          selected on FER+ Valid, scored on FER+ Test majority labels
# export   int8 LiteRT copies for the app (kept only where they lose <= 0.5 points: export.json says)
# default  which model reads unseen people best: both scored on all of CK+ (trained on neither), on the
#          emotions both know (CK+ has no neutral, FER2013 no contempt)
# ckplus   transfer to CK+ from the FER+ backbone (fixed in advance: FER+'s labels are the cleaner ones),
#          subject-independent 10-fold, the seed notebooks' random-split protocol, and the same net from
#          scratch on the same folds
#
# The FER+ run and the 85-minute FER2013 run were started with
# --max-train-seconds 7000 / 7500 and lowered to 5100 at epoch 4 / 5 (cancelled, run.json's budget edited,
# resumed) to leave the 2 cores time for the k-fold; the commands below give 5100 from the start, whose cosine
# schedule anneals the same way from the first epoch. Each run was pinned to one core (taskset -c N).
set -eu
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STAGE=${1:-all}
FER=../shared/data/fer2013; FERPLUS=../shared/data/ferplus; CK=../shared/data/ckplus/CK+48
recipe="--backbone fer_vgg --split official --input-size 48 --epochs 100 --batch-size 64 --optimizer adam --lr 1e-3
        --schedule cosine --early-stopping 0 --dropout 0.4 --precision mixed_bfloat16"
run() { echo "+ $*"; "$@"; }

if [ "$STAGE" = fer2013 ] || [ "$STAGE" = all ]; then
  run python3 -m fer_core train --data $FER $recipe --max-train-seconds 5100 --run-dir runs/fer2013-fer_vgg-48
  run python3 -m fer_core train --data $FER $recipe --lr 3e-4 --weights run:runs/fer2013-fer_vgg-48 --freeze-base off \
    --max-train-seconds 5400 --run-dir runs/fer2013-fer_vgg-48-cont
  for tta in flip crops; do   # test-time augmentation, reported beside the single-pass figure
    run python3 -m fer_core evaluate runs/fer2013-fer_vgg-48-cont --data $FER --split test --tta $tta --save --json
  done
fi
if [ "$STAGE" = ferplus ] || [ "$STAGE" = all ]; then
  run python3 -m fer_core train --data $FERPLUS --label-mode probability $recipe --max-train-seconds 5100 --run-dir runs/ferplus-fer_vgg-48
fi
if [ "$STAGE" = export ] || [ "$STAGE" = all ]; then
  run python3 -m fer_core export runs/fer2013-fer_vgg-48-cont --format tflite --quantize int8 --data $FER
  run python3 -m fer_core export runs/ferplus-fer_vgg-48 --format tflite --quantize int8 --data $FERPLUS
fi
if [ "$STAGE" = default ] || [ "$STAGE" = all ]; then
  both=anger,disgust,fear,happy,sadness,surprise
  run python3 -m fer_core evaluate runs/fer2013-fer_vgg-48-cont --data $CK --split all --classes $both --save --json
  run python3 -m fer_core evaluate runs/ferplus-fer_vgg-48 --data $CK --split all --classes $both --save --json
fi
if [ "$STAGE" = ckplus ] || [ "$STAGE" = all ]; then
  common="--data $CK --backbone fer_vgg --input-size 48 --runs-dir runs --batch-size 32 --precision mixed_bfloat16
          --early-stopping 0 --schedule cosine --epochs 40 --keep last --test-tta flip"
  transfer="--weights run:runs/ferplus-fer_vgg-48 --freeze-base off"
  run python3 -m fer_core kfold $common $transfer --folds 10 --name ck-transfer-ferplus
  run python3 -m fer_core kfold $common $transfer --split random:0.1 --folds 3 --name ck-transfer-ferplus-random
  # the same net from scratch, on the same folds, for the same epochs
  run python3 -m fer_core kfold $common --weights none --folds 10 --name ck-scratch
fi
# packs the reference runs (the k-fold groups, the FER2013 runs other than the headline) into results/, the
# committed collections the README's tables and the Runs page read; the headline runs stay in runs/
run python3 -m fer_core results --collect
