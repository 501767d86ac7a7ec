#!/usr/bin/env bash
# The CPU real-data experiment end to end (README "Results"): shards without any probe-test record, the
# pretraining with and without NSTDB noise side by side, both probes (and the intra-patient MIT-BIH probe) for
# random init / no noise / noise, and one comparison table with the robustness plots in $OUT.
#   experiments/run_cpu_real.sh                 # or: make cpu-real
#   THREADS=2 SIDE_BY_SIDE=0 experiments/run_cpu_real.sh   # one pretraining after the other, 2 threads each
#   SEEDS="0 1" experiments/run_cpu_real.sh     # each pretraining once per seed: run-to-run spread in the table
# Re-running it resumes: a finished pretraining returns at once from its last.ckpt, an unfinished one goes on
# from it, a probe report newer than its checkpoint is kept (REPROBE=1 redoes it), and the probes reuse their
# embedding cache.
set -euo pipefail
cd "$(dirname "$0")/.."

ECG=${ECG:-.venv/bin/ecg-dino}
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/cpu_real_results}
THREADS=${THREADS:-1}            # torch threads per pretraining
SIDE_BY_SIDE=${SIDE_BY_SIDE:-1}  # run the pretrainings at once (one core each on a 2-core machine)
SEEDS=${SEEDS:-0}                # seed_everything of each pretraining; seed 0 keeps the plain run names
REPROBE=${REPROBE:-0}            # 1: probe again even where a report is newer than its checkpoint
CROP_SECONDS=4                   # global_crop_seconds of pretrain_cpu_real.yaml: the probes embed crops this long
declare -A CONFIGS=(
  [pretrain_cpu_real]="--config experiments/pretrain_cpu_real.yaml"
  [pretrain_cpu_real_nonoise]="--config experiments/pretrain_cpu_real.yaml --config experiments/pretrain_cpu_real_nonoise.yaml"
)
declare -A LABEL=([pretrain_cpu_real]="with noise" [pretrain_cpu_real_nonoise]="without noise")
declare -A SEED_OF=() CONFIG_OF=() RUN_LABEL=()
RUNS=()
for seed in $SEEDS; do
  for config in pretrain_cpu_real_nonoise pretrain_cpu_real; do
    name=$config label=${LABEL[$config]}
    [[ $seed == 0 ]] || { name=${config}_seed$seed label="$label, seed $seed"; }
    RUNS+=("$name") SEED_OF[$name]=$seed CONFIG_OF[$name]=$config RUN_LABEL[$name]=$label
  done
done

ckpt_of() { echo "runs/$1/version_0/checkpoints/last.ckpt"; }

pretrain() {  # $1: run name; logs to $OUT/$1.log, this invocation's wall time to $OUT/pretrain_wall_times.txt
  local name=$1 resume=()
  [[ -f $(ckpt_of "$name") ]] && resume=(--ckpt_path "$(ckpt_of "$name")")
  local start=$SECONDS
  # shellcheck disable=SC2086  # CONFIGS holds several words on purpose
  OMP_NUM_THREADS=$THREADS "$ECG" fit ${CONFIGS[${CONFIG_OF[$name]}]} --seed_everything "${SEED_OF[$name]}" \
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
    "$ECG" "$command" --ckpt "$ckpt" --out "$out" "$@"
  fi
}

mkdir -p "$OUT"
[[ -f data_cache/cpu_real/mitdb_ds1/manifest.json ]] || make prepare-cpu-real SHARED="$SHARED"

echo "pretraining ${RUNS[*]} (logs in $OUT/*.log; TensorBoard: make tensorboard)"
if [[ $SIDE_BY_SIDE == 1 ]]; then
  pids=()
  for name in "${RUNS[@]}"; do pretrain "$name" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
else
  for name in "${RUNS[@]}"; do pretrain "$name"; done
fi

mitbih=() ptbxl=()
for name in "${RUNS[@]}"; do
  ckpt=$(ckpt_of "$name")
  [[ -f $ckpt ]] || { echo "no checkpoint $ckpt: see $OUT/$name.log" >&2; exit 1; }
  probe "$ckpt" "$OUT/$name/probe-mitbih" probe-mitbih --mitdb "$SHARED/mitdb"
  # The same beats intra-patient: what the features hold, whether or not it carries over between patients.
  probe "$ckpt" "$OUT/$name/probe-mitbih-intra" probe-mitbih --mitdb "$SHARED/mitdb" --paradigm intra --no-robustness
  probe "$ckpt" "$OUT/$name/probe-ptbxl" probe-ptbxl --ptbxl "$SHARED/ptbxl" --crop-seconds $CROP_SECONDS
  mitbih+=("${RUN_LABEL[$name]}=$OUT/$name/probe-mitbih/report.json")
  ptbxl+=("${RUN_LABEL[$name]}=$OUT/$name/probe-ptbxl/report.json")
done
"$ECG" compare --out "$OUT" --mitbih "${mitbih[@]}" --ptbxl "${ptbxl[@]}"
echo "wrote $OUT/comparison.md, $OUT/comparison.json and the plots"
