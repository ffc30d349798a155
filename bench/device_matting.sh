#!/usr/bin/env bash
# The matting issue's GPU check, as one prepared run for a machine with one NVIDIA GPU (run from the repository root
# with the venv installed): the torch path (matting.device: cuda) against the CPU path on VOC-size images, at a
# narrow and a wide unknown band, JSON under bench/results/ (and $OUT when set, for the device tool).
#   bash bench/device_matting.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
mkdir -p bench/results
for band in 8 40; do
  $PY bench/matting.py --n 5 --width 500 --height 375 --band "$band" --skip-pymatting --device cuda \
      --json "bench/results/matting_cuda_band${band}.json"
done
if [ -n "${OUT:-}" ]; then cp bench/results/matting_cuda_band*.json "$OUT"/; fi
