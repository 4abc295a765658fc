#!/usr/bin/env bash
# The GPU checks of issue 17 in one prepared run, for the rented NVIDIA H200 machine (docs/benchmarks.md,
# "GPU script"). Run from the repository root of a copy of the working tree with .gpu-carry/ beside it (made here by
# bash bench/gpu_wheels.sh):
#
#   bash bench/gpu.sh             # results under $OUT (the device tool's folder; else bench-output/gpu)
#   bash bench/gpu.sh --dry-run   # print the plan (every command, its budget), check it, run nothing
#   GPU_STEPS=install_wheels,install_dualgait,bench_e2e bash bench/gpu.sh   # a rerun of some steps only
#
# Steps, each under its own budget (timeout), each one's failure recorded without stopping the next:
#   install_wheels     the carried wheels into a --target folder put first on PYTHONPATH (the image's python3 is
#                      itself a venv, /opt/torch/.venv, so a --system-site-packages venv on it would not see its torch)
#   install_dualgait   pip install --no-deps -e . (offline, no build isolation); the steps run the app as
#                      `python3 -m dualgait` with the repository on PYTHONPATH, so they do not depend on it
#   gpu_tests          the GPU-marked tests (pytest -m gpu, on the files that hold such tests), junit XML to $OUT
#   bench_model_torch  late fusion on torch-cuda-fp16 (CUDA graphs: ModelConfig.cuda_graphs, on by default)
#   bench_model_ort    late fusion on onnxruntime-cuda-fp32, 224 and 512 px, batch 1
#   bench_e2e          the live pipeline (real processes), configs/gpu.yaml, real time only
#   bench_walkways     walkways one inference process keeps in real time, configs/gpu.yaml
# then bench/gpu_summary.py writes $OUT/gpu_summary.json (after every step, so a cut-off run still leaves one).
#
# The GPU profile is changed in two ways, for what the machine lacks (and the summary says so): no TensorRT, so
# the model runs on engine torch (cuda, fp16, CUDA graphs), the fallback configs/gpu.yaml names; no yolo11n.pt or
# .engine, so the detector is the shared OpenVINO int8 export on the CPU.
#
# What comes back from $OUT (the device tool returns 8 files at most): gpu.log, gpu_summary.json, gpu_tests.xml,
# bench_model_torch.json, bench_model_ort.json, e2e.json, walkways.json, details.tar.gz (the markdown reports,
# every step's log, the per-configuration logs of bench model).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu.sh: unknown argument $arg (--dry-run, --help)" >&2; exit 2 ;;
  esac
done

PY=${GPU_PYTHON:-python3}
CARRY=${GPU_CARRY:-.gpu-carry}
OUT_DIR=${OUT:-$REPO/bench-output/gpu}
WORK=${GPU_WORK_DIR:-/tmp/dualgait-gpu}
SITE=$WORK/site
if [[ "$CARRY" == /* ]]; then CARRY_ABS=$CARRY; else CARRY_ABS=$REPO/$CARRY; fi
ASSETS=$CARRY_ABS/assets
YOLO_OV=$ASSETS/weights/yolo11n_int8_openvino_model
TOTAL_BUDGET_S=${GPU_BUDGET_S:-450}  # the device call gets timeout_s 480: the rest is for the summary and the tar
KILL_GRACE_S=3                         # timeout -k: SIGKILL this long after the budget's SIGTERM
MIN_STEP_S=10                          # a step with less time than this left is not started (reported missing)

# overrides of configs/gpu.yaml for this machine (see the header)
GPU_OVERRIDES=(
  --set "inference.detector.weights=$YOLO_OV" --set inference.detector.device=cpu
  --set inference.detector.half=false --set inference.model.engine=torch
)
NOTES=(
  "detector: the shared YOLO11n OpenVINO int8 export on the CPU (inference.detector.weights/device/half overridden): no yolo11n.pt or .engine on the device, so e2e and walkways figures include a CPU detector, not the GPU one configs/gpu.yaml plans"
  "model engine: torch on cuda fp16 with CUDA graphs (inference.model.engine=torch overridden): no TensorRT on the device"
  "bench model weights are a seeded random init: timing only; targets compare the p50 of batch-1 calls"
)

# ------------------------------------------------------------------ the plan
STEP_NAMES=() STEP_BUDGETS=() STEP_CMDS=() STEP_COLLECT=()

q() {  # a command line: each argument as is when plain, else in single quotes for bash
  local a out=()
  for a in "$@"; do
    if [[ -n "$a" && "$a" =~ ^[A-Za-z0-9_./=:,@%+-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi
  done
  printf '%s' "${out[*]}"
}

ALL_STEPS=()
add_step() {  # NAME BUDGET_S COLLECT("SRC DST" or "") COMMAND; only the steps of GPU_STEPS when it is set
  ALL_STEPS+=("$1")
  [[ -z "${GPU_STEPS:-}" || ",$GPU_STEPS," == *",$1,"* ]] || return 0
  STEP_NAMES+=("$1") STEP_BUDGETS+=("$2") STEP_COLLECT+=("$3") STEP_CMDS+=("$4")
}

DG="$(q "$PY" -m dualgait) "
# files that mark tests gpu (a decorator, or a module's pytestmark), not files that merely name the mark
mapfile -t GPU_TEST_FILES < <(grep -rlE '^[[:space:]]*(@pytest\.mark\.gpu|pytestmark[[:space:]]*=.*pytest\.mark\.gpu)' tests \
  --include='test_*.py' | sort)

add_step install_wheels 35 "" \
  "mkdir -p $(q "$SITE") && $(q "$PY") -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $(q "$SITE") $(q "$CARRY_ABS")/wheels/*.whl && $(q "$PY") -c 'import zmq, lap, openvino, ultralytics; print(\"imports ok: openvino\", openvino.__version__, openvino.Core().available_devices)'"
add_step install_dualgait 20 "" \
  "$(q "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .) && $(q "$PY") -c 'import dualgait.cli, bench.model, bench.e2e, bench.walkways, inference.process'"
if ((${#GPU_TEST_FILES[@]})); then
  add_step gpu_tests 70 "" \
    "$(q "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUT_DIR/gpu_tests.xml" "${GPU_TEST_FILES[@]}")"
else
  add_step gpu_tests 70 "" "echo 'no GPU-marked tests found under tests/' >&2; exit 5"
fi
# shellcheck disable=SC2054  # "224,512" is one argument
MODEL_ARGS=(--config configs/gpu.yaml --variants late --sizes 224,512 --batch 1 --repeats 50 --warmup 5)
add_step bench_model_torch 90 "$WORK/bench_model_torch/bench_model.json $OUT_DIR/bench_model_torch.json" \
  "$DG$(q bench model "${MODEL_ARGS[@]}" --engines torch-cuda-fp16 --timeout-s 60 --output "$WORK/bench_model_torch")"
add_step bench_model_ort 50 "$WORK/bench_model_ort/bench_model.json $OUT_DIR/bench_model_ort.json" \
  "$DG$(q bench model "${MODEL_ARGS[@]}" --engines onnxruntime-cuda-fp32 --timeout-s 45 --output "$WORK/bench_model_ort")"
add_step bench_e2e 100 "$WORK/e2e/e2e.json $OUT_DIR/e2e.json" \
  "$DG$(q bench e2e --config configs/gpu.yaml "${GPU_OVERRIDES[@]}" --modes realtime --no-baseline --duration-s 40 --output "$WORK/e2e/e2e.json")"
add_step bench_walkways 60 "$WORK/walkways/walkways.json $OUT_DIR/walkways.json" \
  "$DG$(q bench walkways --config configs/gpu.yaml "${GPU_OVERRIDES[@]}" --walkways 1,4,16 --duration-s 4 --output "$WORK/walkways/walkways.json")"

summary_cmd() {  # [--quiet]
  local notes=() n
  for n in "${NOTES[@]}"; do notes+=(--note "$n"); done
  q "$PY" -m bench.gpu_summary --plan "$WORK/plan.tsv" --results "$WORK/steps.tsv" \
    --model-json "$OUT_DIR/bench_model_torch.json" --model-json "$OUT_DIR/bench_model_ort.json" \
    --e2e-json "$OUT_DIR/e2e.json" --walkways-json "$OUT_DIR/walkways.json" "${notes[@]}" \
    --output "$OUT_DIR/gpu_summary.json" "$@"
}

print_plan() {
  local i total=0 n=${#STEP_NAMES[@]}
  for ((i = 0; i < n; i++)); do total=$((total + STEP_BUDGETS[i])); done
  echo "gpu.sh: plan: $n steps, budgets $total s of $TOTAL_BUDGET_S s; python $PY; OUT $OUT_DIR; work dir $WORK"
  echo "gpu.sh: env: PYTHONPATH=$SITE:$REPO DUALGAIT_ASSETS=$ASSETS DUALGAIT_CACHE_DIR=$WORK/cache YOLO_OFFLINE=1"
  for ((i = 0; i < n; i++)); do
    echo "step $((i + 1))/$n ${STEP_NAMES[i]} (budget ${STEP_BUDGETS[i]} s): ${STEP_CMDS[i]}"
    [[ -n "${STEP_COLLECT[i]}" ]] && echo "  collect: ${STEP_COLLECT[i]% *} -> ${STEP_COLLECT[i]#* }"
  done
  echo "then: summary: $(summary_cmd)"
  echo "then: details: tar -czf $OUT_DIR/details.tar.gz -C $WORK (reports, logs; no wheels, no engine caches)"
  local note
  for note in "${NOTES[@]}"; do echo "note: $note"; done
}

validate_plan() {  # 0 when the plan is sound; each problem on stderr
  local i bad=0 total=0 name
  local steps=${GPU_STEPS:-}
  for name in ${steps//,/ }; do
    [[ " ${ALL_STEPS[*]} " == *" $name "* ]] || { echo "gpu.sh: GPU_STEPS: no step $name (${ALL_STEPS[*]})" >&2; bad=1; }
  done
  ((${#STEP_NAMES[@]})) || { echo "gpu.sh: no step to run" >&2; bad=1; }
  for ((i = 0; i < ${#STEP_NAMES[@]}; i++)); do
    if ! [[ "${STEP_BUDGETS[i]}" =~ ^[0-9]+$ ]] || ((STEP_BUDGETS[i] < MIN_STEP_S)); then
      echo "gpu.sh: step ${STEP_NAMES[i]}: budget ${STEP_BUDGETS[i]} is not a whole number >= $MIN_STEP_S s" >&2
      bad=1
    fi
    total=$((total + STEP_BUDGETS[i]))
    bash -n -c "${STEP_CMDS[i]}" 2>/dev/null || { echo "gpu.sh: step ${STEP_NAMES[i]}: not valid bash" >&2; bad=1; }
  done
  if ((total + ${#STEP_NAMES[@]} * KILL_GRACE_S > TOTAL_BUDGET_S)); then
    echo "gpu.sh: step budgets ($total s + grace) exceed the total budget of $TOTAL_BUDGET_S s" >&2
    bad=1
  fi
  ((${#GPU_TEST_FILES[@]})) || echo "gpu.sh: warning: no GPU-marked test files found" >&2
  return $bad
}

check_carry() {  # warnings only: a dry run here need not have made the carry yet
  local wheels
  wheels=$(find "$CARRY_ABS/wheels" -name '*.whl' 2>/dev/null | wc -l)
  if ((wheels)); then echo "gpu.sh: carry: $wheels wheels in $CARRY_ABS/wheels"
  else echo "gpu.sh: warning: no wheels in $CARRY_ABS/wheels: run bash bench/gpu_wheels.sh here first" >&2; fi
  local f
  for f in "$ASSETS/videos/walk_front.mp4" "$ASSETS/videos/walk_side.mp4" "$YOLO_OV/yolo11n.xml"; do
    [[ -f "$f" ]] || echo "gpu.sh: warning: missing $f: run bash bench/gpu_wheels.sh here first" >&2
  done
}

if ((DRY_RUN)); then
  print_plan
  check_carry
  if validate_plan; then echo "gpu.sh: dry run: plan ok"; exit 0; fi
  echo "gpu.sh: dry run: plan has errors" >&2
  exit 1
fi

# ------------------------------------------------------------------ the run
validate_plan || { echo "gpu.sh: the plan has errors; nothing run" >&2; exit 1; }
START_S=$(date +%s)
# nothing of an earlier run on the same host may pass for this one's (the device tool empties $OUT itself)
rm -rf "$WORK/logs" "$WORK/bench_model_torch" "$WORK/bench_model_ort" "$WORK/e2e" "$WORK/walkways"
rm -f "$OUT_DIR"/{gpu.log,gpu_summary.json,gpu_tests.xml,bench_model_torch.json,bench_model_ort.json,e2e.json} \
  "$OUT_DIR"/{walkways.json,details.tar.gz}
mkdir -p "$OUT_DIR" "$WORK/logs"
exec 3>&1 4>&2 > >(tee -a "$OUT_DIR/gpu.log") 2>&1
TEE_PID=$!
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export DUALGAIT_ASSETS="$ASSETS" DUALGAIT_CACHE_DIR="$WORK/cache" DUALGAIT_YOLO_GPU_WEIGHTS="$YOLO_OV"
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=0 YOLO_VERBOSE=0 YOLO_CONFIG_DIR="$WORK/yolo"

print_plan
check_carry
{
  echo "# name<TAB>budget_s<TAB>command"
  for ((i = 0; i < ${#STEP_NAMES[@]}; i++)); do printf '%s\t%s\t%s\n' "${STEP_NAMES[i]}" "${STEP_BUDGETS[i]}" "${STEP_CMDS[i]}"; done
} >"$WORK/plan.tsv"
: >"$WORK/steps.tsv"
echo "gpu.sh: machine: $(uname -m), $(nproc) cores; $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
timeout 60 "$PY" -c 'import sys, torch; print("gpu.sh: python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1

summarize() { eval "$(summary_cmd "$@")"; }

for ((i = 0; i < ${#STEP_NAMES[@]}; i++)); do
  name=${STEP_NAMES[i]}
  left_s=$((TOTAL_BUDGET_S - ($(date +%s) - START_S) - KILL_GRACE_S))
  budget_s=$((STEP_BUDGETS[i] < left_s ? STEP_BUDGETS[i] : left_s))
  if ((budget_s < MIN_STEP_S)); then
    echo "gpu.sh: step $name not started: ${left_s} s left of the total budget"
    continue
  fi
  echo "gpu.sh: step $((i + 1))/${#STEP_NAMES[@]} $name (budget $budget_s s) starts"
  t0=$(date +%s.%N)
  timeout -k "$KILL_GRACE_S" "$budget_s" bash -c "${STEP_CMDS[i]}" 2>&1 | tee "$WORK/logs/$name.log"
  rc=${PIPESTATUS[0]}
  seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\n' "$name" "$rc" "$seconds" >>"$WORK/steps.tsv"
  if [[ -n "${STEP_COLLECT[i]}" ]]; then
    src=${STEP_COLLECT[i]% *} dst=${STEP_COLLECT[i]#* }
    if [[ -f "$src" ]]; then cp -f "$src" "$dst"; else echo "gpu.sh: step $name left no $src"; fi
  fi
  echo "gpu.sh: step $name: rc $rc in $seconds s"
  summarize --quiet 2>>"$WORK/logs/summary.log"
done

summarize
for report in "$WORK"/bench_model_*/bench_model.md "$WORK"/e2e/e2e.md "$WORK"/walkways/walkways.md; do
  [[ -f "$report" ]] && { echo; echo "===== $report"; cat "$report"; } >>"$WORK/logs/reports.md"
done
tar -czf "$OUT_DIR/details.tar.gz" -C "$WORK" --exclude=./site --exclude=./cache --exclude=./yolo \
  --exclude='engine-cache' --exclude='*.onnx' --exclude='*.engine' --exclude='*.plan' . 2>&1 || true
echo "gpu.sh: done in $(($(date +%s) - START_S)) s; summary $OUT_DIR/gpu_summary.json"
exec 1>&3 2>&4 3>&- 4>&-
wait "$TEE_PID" 2>/dev/null  # gpu.log complete before the device tool collects $OUT
