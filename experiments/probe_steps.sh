#!/usr/bin/env bash
# MIT-BIH DS1 -> DS2 probe of a run's intermediate checkpoints (clean beats only, fewer bootstrap resamples),
# to see how the frozen features change along pretraining; prints one line per checkpoint.
#   experiments/probe_steps.sh RUN_DIR [STEP ...]
#   e.g. experiments/probe_steps.sh runs/pretrain_cpu_real/version_0 300 600 900 1200
#   FEATURES=cls|patches probes that part of the beat embedding alone (probe-mitbih --features)
set -euo pipefail
cd "$(dirname "$0")/.."
ECG=${ECG:-.venv/bin/ecg-dino}
PY=${PY:-.venv/bin/python}
MITDB=${MITDB:-../shared/data/mitdb}
FEATURES=${FEATURES:-all}
run=${1:?usage: experiments/probe_steps.sh RUN_DIR [STEP ...]}
shift
for step in "$@"; do
  ckpt=$(compgen -G "$run/checkpoints/epoch=*-step=$step.ckpt" | head -1) \
    || { echo "no checkpoint of step $step in $run/checkpoints" >&2; exit 1; }
  out="$run/probe-steps/step$step-$FEATURES"
  "$ECG" probe-mitbih --ckpt "$ckpt" --mitdb "$MITDB" --features "$FEATURES" --no-robustness --n-boot 200 \
    --out "$out" >/dev/null
  "$PY" - "$out/report.json" "$step" "$FEATURES" <<'PY'
import json, sys
model = json.load(open(sys.argv[1]))["models"]["model"]
test, val = model["test"], max(model["val_macro_auroc"].values())
cls = " ".join(f"{c} {r['auroc']:.3f}" for c, r in test["per_class"].items() if r["auroc"] is not None)
lo, hi = test["ci95"]["macro_auroc"]
d = test["vs_random_init"]
print(
    f"step {sys.argv[2]} ({sys.argv[3]}): DS1 validation patients {val:.3f}  "
    f"DS2 macro AUROC {test['macro_auroc']:.3f} [{lo:.3f}, {hi:.3f}]  {cls}  "
    f"vs random init {d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
)
PY
done
