#!/usr/bin/env bash
# issue 14: the DS2 beat probe (window, record normalisation, with RR) along a training, one thread each.
#   docs/results/beats/steps.sh STEP ...   (RUN=<run's version folder>, OUT=runs/beats to change them)
set -u
RUN=${RUN:-runs/cost/cost_new3_s2/version_0}
OUT=${OUT:-runs/beats}
mkdir -p "$OUT"
for step in "$@"; do
  CKPT=$(ls "$RUN"/checkpoints/epoch=*-step="${step}".ckpt)
  start=$(date +%s)
  OMP_NUM_THREADS=1 .venv/bin/ecg-dino probe-mitbih --ckpt "$CKPT" --mitdb ../shared/data/mitdb --with-rr \
    --no-robustness --out "$OUT/step_${step}" > "$OUT/step_${step}.log" 2>&1
  echo "rc $? wall $(( $(date +%s) - start )) s" >> "$OUT/step_${step}.log"
done
