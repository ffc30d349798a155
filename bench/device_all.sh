#!/usr/bin/env bash
# Every GPU measurement of the project in one call on a machine with one NVIDIA GPU, each step under its own
# `timeout` (the sum of the limits, 575 s, fits one device call of 600 s), then the node projection of Tables 1 + 2
# from the fresh per-unit costs. Run from the repository root:
#   bash bench/device_all.sh                 # results in $OUT when set (the device tool), else bench/results/
#   SMOKE=1 bash bench/device_all.sh         # every step on CPU with tiny settings: checks the script, measures nothing
# The device image has torch but not pymatting / pydensecrf and no network: prepare .whl/ here first (ignored by git,
# carried to the machine), as for bench/device_voc_scale.sh:
#   .venv/bin/pip download --no-deps -d .whl pymatting==1.1.16
#   .venv/bin/pip download --no-deps --no-binary :all: -d .whl pydensecrf2==1.1
# and call the device tool with: command "bash bench/device_all.sh", carry [".whl"], timeout_s 600.
# Steps (STEPS="setup voc_scale ..." runs a subset, e.g. to split the work over two calls; COSTS=file.json gives the
# projection a voc_scale JSON of an earlier call):
#   setup        the GPU's name, torch, the two wheels                                         100 s
#   voc_scale    bench/voc_scale.py: per-unit cost of every stage, the Mat-Label row projected  210 s
#   d2cam        bench/d2cam_throughput.py: CAM vs D2CAM training step                          45 s
#   determinism  bench/cuda_determinism.py: trainings and maps twice, bit-identical or not      120 s
#   matting      bench/matting.py --device cuda at two band widths (bench/device_matting.sh)    70 s
#   projection   bench/node_projection.py on the fresh voc_scale JSON and the saved DAG         30 s
# and, in a second call (STEPS="setup speed speed_determinism", 560 s), the speed flags (config speed:, docs/reproducing.md)
# before/after in the same process; the steps above keep the loop before the flags (--speed-flags channels_last):
#   speed              voc_scale.py's training stages with the flags off and on: step time ratios, projected totals  200 s
#   speed_determinism  cuda_determinism.py --cases speed: the flags' results against the plain loop's on CUDA      260 s
# Writes <step>_<card>.json / .log (card: h100, h200, ... from nvidia-smi; CARD= to set it), device_all_<card>.status
# (each step's exit status, seconds and end time; 124 = its timeout) and gpu_util_<card>.csv (utilisation, memory, 1/s).
set -u
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."
SMOKE=${SMOKE:-0}
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
STEPS=${STEPS:-setup voc_scale d2cam determinism matting projection}
if [ "$SMOKE" = 1 ]; then
  DEST=${DEST:-${OUT:-$(mktemp -d)}}
  CARD=${CARD:-smoke}
  LIMIT_SCALE=${LIMIT_SCALE:-5}  # a shared CPU is slower than the GPU the limits are for
else
  DEST=${DEST:-${OUT:-bench/results}}
  CARD=${CARD:-$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 \
                 | grep -oE '[A-Z][0-9]{2,4}[A-Z]?' | head -1 | tr 'A-Z' 'a-z')}
  CARD=${CARD:-gpu}
  LIMIT_SCALE=${LIMIT_SCALE:-1}
fi
export SMOKE PY DEST CARD LIMIT_SCALE

# step NAME LIMIT_S COMMAND...: run it under timeout, its output to DEST/NAME_CARD.log (tail shown), status recorded;
# a COMMAND that is a function of this script runs in a fresh `bash SELF` with INNER=function (timeout needs a program)
step() {
  local name=$1 limit=$(( $2 * LIMIT_SCALE )) t0=$SECONDS rc
  shift 2
  case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name (at most ${limit} s)"
  if declare -F "$1" > /dev/null; then
    INNER=$1 timeout -k 10 "$limit" bash "$SELF" > "$DEST/${name}_$CARD.log" 2>&1
  else
    timeout -k 10 "$limit" "$@" > "$DEST/${name}_$CARD.log" 2>&1
  fi
  rc=$?
  tail -n 25 "$DEST/${name}_$CARD.log"
  echo "$name rc=$rc $((SECONDS - t0))s ended $(date -u +%FT%TZ)" | tee -a "$STATUS"
}

setup() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  $PY -c "import torch; print('torch', torch.__version__,
                              torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
  if [ "$SMOKE" != 1 ] && ! $PY -c "import pymatting, pydensecrf.densecrf" 2>/dev/null; then
    ls .whl/pymatting-*.whl .whl/pydensecrf2-*.tar.gz || { echo "no .whl/ (see the header of $0)"; return 3; }
    $PY -m pip install --no-index --no-deps .whl/pymatting-*.whl 2>&1 | tail -2
    $PY -m pip install --no-index --no-deps --no-build-isolation .whl/pydensecrf2-*.tar.gz 2>&1 | tail -2
  fi
  $PY -c "import pymatting, numba, pydensecrf.densecrf; print('pymatting + pydensecrf ok, numba', numba.__version__)"
}

if [ "$SMOKE" = 1 ]; then
  VOC_ARGS=(--small --device cpu --seconds 0.05 --stages cam,d2cam,export,matting,crf_label,walk,loader --cores 2)
  SPEED_ARGS=(--small --device cpu --seconds 0.05 --stages cam --cores 2)
  D2_ARGS=(--device cpu --arch resnet18 --crop 64 --batch 2 --steps 3)
  DET_ARGS=(--device cpu --arch resnet18 --deeplab-arch resnet18 --images 4)
  MAT_ARGS=(--n 1 --width 100 --height 75 --device cpu)
  BANDS="8"
else
  VOC_ARGS=(--config config/voc-scale.yaml --device cuda --seconds 6 --cores 16 --speed-flags channels_last)
  D2_ARGS=(--device cuda --steps 10)
  DET_ARGS=(--device cuda --speed-flags channels_last)
  SPEED_ARGS=(--config config/voc-scale.yaml --device cuda --seconds 4 --cores 16 --stages cam,d2cam,deeplab)
  MAT_ARGS=(--n 5 --width 500 --height 375 --device cuda)
  BANDS="8 40"
fi

matting() {
  local band
  for band in $BANDS; do
    $PY bench/matting.py "${MAT_ARGS[@]}" --band "$band" --skip-pymatting \
        --json "$DEST/matting_${CARD}_band$band.json" || return
  done
}

if [ -n "${INNER:-}" ]; then
  "$INNER"
  exit
fi

mkdir -p "$DEST"
STATUS="$DEST/device_all_$CARD.status"
: > "$STATUS"
echo "device_all: steps [$STEPS], python $PY, results in $DEST, card $CARD, smoke $SMOKE"
echo "started $(date -u +%FT%TZ)" >> "$STATUS"
# the card's utilisation and memory once a second through all the steps (the status gives each step's end)
SAMPLER=
if [ "$SMOKE" != 1 ] && command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,nounits -lms 1000 \
    > "$DEST/gpu_util_$CARD.csv" 2> /dev/null &
  SAMPLER=$!
fi
step setup 100 setup
step voc_scale 210 $PY bench/voc_scale.py "${VOC_ARGS[@]}" --out "$DEST/voc_scale_$CARD.json"
step d2cam 45 $PY bench/d2cam_throughput.py "${D2_ARGS[@]}"
step determinism 120 $PY bench/cuda_determinism.py "${DET_ARGS[@]}" --out "$DEST/cuda_determinism_$CARD.json"
step matting 70 matting
step speed 200 $PY bench/voc_scale.py "${SPEED_ARGS[@]}" --speed-flags channels_last,on \
  --out "$DEST/voc_scale_speed_$CARD.json"
step speed_determinism 260 $PY bench/cuda_determinism.py "${DET_ARGS[@]}" --cases speed \
  --out "$DEST/cuda_speed_$CARD.json"
# the saved DAG (bench/results/voc_tables12_dag.json): the device image has no Snakemake
step projection 30 $PY bench/node_projection.py --costs "${COSTS:-$DEST/voc_scale_$CARD.json}" \
  --dag bench/results/voc_tables12_dag.json --out "$DEST/node_projection_$CARD.json" \
  --png "$DEST/node_projection_$CARD.png"
if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2> /dev/null; fi
echo "== status ($STATUS)"
cat "$STATUS"
