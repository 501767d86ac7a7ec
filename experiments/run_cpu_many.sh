#!/usr/bin/env bash
# The many-people CPU experiment end to end (README "Results"): shards without any probe-test record, the
# pretraining with and without NSTDB noise side by side (one core each), every probe (CinC-2017 test, MIT-BIH
# DS1 -> DS2, PTB-XL fold 10) for random init / no noise / noise, one comparison table and the online-probe
# curves in $OUT.
#   experiments/run_cpu_many.sh                 # or: make cpu-many
# Re-running it resumes: a finished pretraining returns at once from its last.ckpt, an unfinished one goes on
# from it, a probe report newer than its checkpoint is kept (REPROBE=1 redoes it), and the probes reuse their
# embedding cache.
set -euo pipefail
cd "$(dirname "$0")/.."

ECG=${ECG:-.venv/bin/ecg-dino}
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/cpu_many_results}
THREADS=${THREADS:-1}            # torch threads per pretraining
REPROBE=${REPROBE:-0}            # 1: probe again even where a report is newer than its checkpoint
CROP_SECONDS=8                   # global_crop_seconds of pretrain_cpu_many.yaml: the probes embed crops this long
declare -A CONFIGS=(
  [pretrain_cpu_many]="--config experiments/pretrain_cpu_many.yaml"
  [pretrain_cpu_many_nonoise]="--config experiments/pretrain_cpu_many.yaml --config experiments/pretrain_cpu_many_nonoise.yaml"
)
declare -A LABEL=([pretrain_cpu_many]="with noise" [pretrain_cpu_many_nonoise]="without noise")
RUNS=(pretrain_cpu_many_nonoise pretrain_cpu_many)

ckpt_of() { echo "runs/$1/version_0/checkpoints/last.ckpt"; }

pretrain() {  # $1: run name; logs to $OUT/$1.log, this invocation's wall time to $OUT/pretrain_wall_times.txt
  local name=$1 resume=()
  [[ -f $(ckpt_of "$name") ]] && resume=(--ckpt_path "$(ckpt_of "$name")")
  local start=$SECONDS
  # shellcheck disable=SC2086  # CONFIGS holds several words on purpose
  OMP_NUM_THREADS=$THREADS "$ECG" fit ${CONFIGS[$name]} --seed_everything 0 \
    --trainer.enable_progress_bar=false --trainer.logger.init_args.name="$name" \
    --trainer.logger.init_args.version=0 "${resume[@]}" >"$OUT/$name.log" 2>&1
  echo "$(date -u +%FT%TZ) $name: $((SECONDS - start)) s (${resume[*]:-fresh start})" \
    | tee -a "$OUT/pretrain_wall_times.txt"
}

probe() {  # $1: checkpoint, $2: report folder, $3: probe command, rest: its arguments
  local ckpt=$1 out=$2 command=$3
  shift 3
  if [[ $REPROBE == 0 && $out/report.json -nt $ckpt ]]; then
    echo "kept $out/report.json: newer than $ckpt (REPROBE=1 redoes it)"
  else
    local start=$SECONDS
    "$ECG" "$command" --ckpt "$ckpt" --out "$out" "$@"
    echo "$(date -u +%FT%TZ) $command $ckpt: $((SECONDS - start)) s" | tee -a "$OUT/probe_wall_times.txt"
  fi
}

mkdir -p "$OUT"
[[ -f data_cache/cpu_real/mitdb_ds1/manifest.json && -f data_cache/cpu_many/cinc2017_trainval/manifest.json ]] \
  || make prepare-cpu-many SHARED="$SHARED"

echo "pretraining ${RUNS[*]} side by side (logs in $OUT/*.log; TensorBoard: make tensorboard)"
pids=()
for name in "${RUNS[@]}"; do pretrain "$name" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done

cinc=() mitbih=() ptbxl=() curves=()
for name in "${RUNS[@]}"; do
  ckpt=$(ckpt_of "$name")
  [[ -f $ckpt ]] || { echo "no checkpoint $ckpt: see $OUT/$name.log" >&2; exit 1; }
  probe "$ckpt" "$OUT/$name/probe-cinc2017" probe-cinc2017 --cinc2017 "$SHARED/cinc2017" --crop-seconds $CROP_SECONDS
  probe "$ckpt" "$OUT/$name/probe-mitbih" probe-mitbih --mitdb "$SHARED/mitdb"
  probe "$ckpt" "$OUT/$name/probe-ptbxl" probe-ptbxl --ptbxl "$SHARED/ptbxl" --crop-seconds $CROP_SECONDS
  cinc+=("${LABEL[$name]}=$OUT/$name/probe-cinc2017/report.json")
  mitbih+=("${LABEL[$name]}=$OUT/$name/probe-mitbih/report.json")
  ptbxl+=("${LABEL[$name]}=$OUT/$name/probe-ptbxl/report.json")
  curves+=("${LABEL[$name]}=runs/$name/version_0")
done
"$ECG" compare --out "$OUT" --cinc2017 "${cinc[@]}" --mitbih "${mitbih[@]}" --ptbxl "${ptbxl[@]}"
"$ECG" curves --out "$OUT" "${curves[@]}"
echo "wrote $OUT/comparison.md, $OUT/online_probe_curves.png and the plots"
