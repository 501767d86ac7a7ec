#!/usr/bin/env bash
# issue 14: the DS2 beat probe (window, record normalisation, with RR) along the training, one thread each
set -u
for step in "$@"; do
  CKPT=$(ls runs/cost/cost_new3_s2/version_0/checkpoints/epoch=*-step=${step}.ckpt)
  start=$(date +%s)
  OMP_NUM_THREADS=1 .venv/bin/ecg-dino probe-mitbih --ckpt $CKPT --mitdb ../shared/data/mitdb --with-rr \
    --no-robustness --out runs/beats/step_${step} > runs/beats/step_${step}.log 2>&1
  echo "rc $? wall $(( $(date +%s) - start )) s" >> runs/beats/step_${step}.log
done
