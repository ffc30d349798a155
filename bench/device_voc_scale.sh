#!/bin/bash
# One call on a lent GPU machine (no network there): install the two packages its image lacks, then the
# VOC-scale bench. Prepare .whl/ here first (ignored by git, carried to the machine):
#   .venv/bin/pip download --no-deps -d .whl pymatting==1.1.16 && .venv/bin/pip download --no-deps --no-binary :all: -d .whl pydensecrf2==1.1
# Writes $OUT/voc_scale_h100.json and .log (rename for other cards).
set -u
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
python -m pip install --no-index --no-deps .whl/pymatting-1.1.16-py3-none-any.whl 2>&1 | grep -v "root.*user" | tail -3
python -m pip install --no-index --no-deps --no-build-isolation .whl/pydensecrf2-1.1.tar.gz 2>&1 | grep -v "root.*user" | tail -3
python -c "import pymatting, numba, pydensecrf.densecrf; print('pymatting+pydensecrf ok', numba.__version__)" || { python -m pip --version; python -m pip list 2>/dev/null | grep -i -E "numba|cython|pymat|dense"; exit 3; }
python bench/voc_scale.py --config config/voc-scale.yaml --cores 16 --out $OUT/voc_scale_h100.json 2>&1 | tee $OUT/voc_scale_h100.log
