#!/usr/bin/env bash
# GPU check: device name, fashion-cnn epoch time at batch 64 and 256, trials per hour with 1 and
# with N workers packed on one GPU, and GPU memory per worker; then packed trials (K copies of
# the network in one model, scripts/bench_pack.py) for K up to 64, and a study run with --pack.
#
#   bash scripts/gpu_check.sh            # on a GPU machine: full sizes (60,000 images, 4 workers)
#   bash scripts/gpu_check.sh --quick    # smaller sizes
#   KERAS_BACKEND=jax bash scripts/gpu_check.sh     # TensorFlow need not be installed
#   PYTHON=/path/to/python bash scripts/gpu_check.sh
#
# With no GPU visible it says so and runs a short CPU version of the same measurements (tiny
# sizes, 2 workers, resident memory instead of GPU memory), so every step is exercised.
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
HELPER="scripts/gpu_epoch_time.py"
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick|--small) QUICK=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

echo "gpu_check: $(date -Is) on $(hostname), $(nproc) CPU cores"
echo "command: bash scripts/gpu_check.sh $*"

# ---------------------------------------------------------------------------- backend
if [[ -z "${KERAS_BACKEND:-}" ]]; then
  for b in tensorflow jax torch; do
    if "$PY" -c "import $b" >/dev/null 2>&1; then KERAS_BACKEND="$b"; break; fi
  done
fi
if [[ -z "${KERAS_BACKEND:-}" ]]; then
  echo "error: $PY has none of tensorflow, jax, torch; set PYTHON or install a backend" >&2
  exit 1
fi
export KERAS_BACKEND
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export TF_FORCE_GPU_ALLOW_GROWTH=true          # several workers share one GPU
export XLA_PYTHON_CLIENT_PREALLOCATE=false
echo "python: $PY ($("$PY" -c 'import platform; print(platform.python_version())')), KERAS_BACKEND=$KERAS_BACKEND"

# ---------------------------------------------------------------------------- device
GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  GPU=1
  echo "device:"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | sed 's/^/  /'
else
  echo "no GPU visible (nvidia-smi $(command -v nvidia-smi >/dev/null && echo 'lists no GPU' || echo 'not found')): running the short CPU version"
fi
"$PY" "$HELPER" devices 2>/dev/null | sed 's/^/  /'

if [[ $GPU == 1 ]]; then
  IMAGES=60000; WORKERS=4; TRIALS=16; STUDY_IMAGES=10000; EPOCHS=2
  [[ $QUICK == 1 ]] && { IMAGES=20000; TRIALS=8; STUDY_IMAGES=5000; }
else
  IMAGES=2000; WORKERS=2; TRIALS=4; STUDY_IMAGES=600; EPOCHS=1
fi

# ---------------------------------------------------------------------------- epoch time
echo
echo "== epoch time: fashion-cnn, $IMAGES synthetic 28x28 images, batch 64 and 256"
"$PY" "$HELPER" epoch --model fashion-cnn --images "$IMAGES" --batches 64,256 --jit off,on \
  2> >(grep -v -E '^(WARNING: All log|I0000|E0000|W0000)' >&2)

# ---------------------------------------------------------------------------- trials per hour
TMP="$(mktemp -d -t gpu-check-XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
"$PY" "$HELPER" make-study "$TMP" --images "$STUDY_IMAGES" --trials "$TRIALS" --epochs "$EPOCHS" \
  --model fashion-cnn >/dev/null

sample_memory() {  # $1: pid of the tune process, $2: log file
  local parent="$1" log="$2"
  while kill -0 "$parent" 2>/dev/null; do
    if [[ $GPU == 1 ]]; then
      nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits >>"$log" 2>/dev/null
    else
      # the sweeper processes only (not a launcher shim or this sampler)
      ps -o pid=,rss=,args= -p "$parent" --ppid "$parent" 2>/dev/null \
        | awk '/sweeper (tune|worker)/ { print $1, $2 }' >>"$log"
    fi
    sleep 1
  done
}

run_tune() {  # $1: workers, $2: trials packed in each worker (default 1)
  # one `local` per name: the words of one `local` are expanded before any of them is set
  local workers="$1"
  local pack="${2:-1}"
  local log="$TMP/tune-$workers-$pack.log"
  local mem="$TMP/mem-$workers-$pack.log"
  local start end
  start=$(date +%s.%N)
  "$PY" -m sweeper tune "$TMP/study.toml" --storage "sqlite:///$TMP/w$workers-p$pack.db" \
    --study-name "gpu-check-$workers-$pack" --n-trials "$TRIALS" --workers "$workers" \
    --workers-per-gpu "$workers" --pack "$pack" --checkpoint-dir "$TMP/ckpt" >"$log" 2>&1 &
  local pid=$!
  sample_memory "$pid" "$mem" &
  local sampler=$!
  wait "$pid"
  local code=$?
  wait "$sampler" 2>/dev/null
  end=$(date +%s.%N)
  local wall
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  local tph
  tph=$(awk -v n="$TRIALS" -v s="$wall" 'BEGIN { printf "%.0f", n * 3600 / s }')
  echo "workers=$workers pack=$pack: exit $code, $TRIALS trials in $wall s wall (process start included) = $tph trials/hour"
  grep -E '^(study|throughput)' "$log" | sed 's/^/  sweeper: /'
  if [[ $code != 0 ]]; then tail -n 5 "$log" | sed 's/^/  log: /'; fi
  if [[ $GPU == 1 ]]; then
    "$PY" "$HELPER" memory "$mem" --kind gpu --parent "$pid" --workers "$workers"
  else
    "$PY" "$HELPER" memory "$mem" --kind rss --parent "$pid" --workers "$workers"
  fi
}

echo
echo "== trials per hour: fashion-cnn, $STUDY_IMAGES synthetic images, $EPOCHS epochs, $TRIALS trials"
run_tune 1
run_tune "$WORKERS"
if [[ $GPU == 0 ]]; then
  echo "(CPU version: $WORKERS workers share $(nproc) cores; GPU memory replaced by resident memory)"
fi

# ---------------------------------------------------------------------------- packed trials
echo
if [[ $GPU == 1 ]]; then
  KS="1,2,4,8,16,32,64"; PACK=8; BENCH_ARGS=(--repeats 2)
  [[ $QUICK == 1 ]] && { KS="1,4,16,64"; BENCH_ARGS=(--repeats 1 --subset 20000); }
else
  KS="1,2,4"; PACK=2; BENCH_ARGS=(--quick --models mnist-cnn)
fi
echo "== packed trials: copy-epochs per second and trials per hour for K = $KS (scripts/bench_pack.py)"
"$PY" scripts/bench_pack.py --ks "$KS" --no-stop --no-fused "${BENCH_ARGS[@]}" \
  2> >(grep -v -E '^(WARNING: All log|I0000|E0000|W0000)' >&2)
echo
echo "== a study with packed trials: $TRIALS trials, 1 worker, --pack $PACK"
run_tune 1 "$PACK"
