#!/usr/bin/env bash
# issue 14: one DS1 -> DS2 beat probe of a checkpoint (default: the CinC-2017 experiment's latest, seed 2), one
# thread.   docs/results/beats/run.sh window|context record|none   (CKPT=..., OUT=runs/beats to change them)
set -u
CKPT=${CKPT:-runs/cost/cost_new3_s2/version_0/checkpoints/last.ckpt}
OUT=${OUT:-runs/beats}
kind=$1; norm=$2
mkdir -p "$OUT"
start=$(date +%s)
OMP_NUM_THREADS=1 .venv/bin/ecg-dino probe-mitbih --ckpt "$CKPT" --mitdb ../shared/data/mitdb --features "$kind" \
  --beat-norm "$norm" --with-rr --no-robustness --out "$OUT/${kind}_${norm}" > "$OUT/${kind}_${norm}.log" 2>&1
echo "rc $? wall $(( $(date +%s) - start )) s" >> "$OUT/${kind}_${norm}.log"
