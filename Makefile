# Two commands for a fresh clone: `make demo` (synthetic dataset, CPU, minutes) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: venv demo test check lint report docs clean-demo

# Installs the pinned set once (about 3 minutes; ~6 GB, mostly CUDA wheels of torch), then warms
# pymatting's numba cache so the first matting job does not pay ~40 s of compilation.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -c "import pymatting"
	touch $@

venv: $(BIN)/.installed

# The demo's outputs: Tables 1-3, Figures 2 and 5, the per-image gallery (worst images first), the run's runtimes
# and config, then the HTML report of them.
DEMO_TARGETS := results/table1.csv results/table2.csv results/table3.csv results/figures/fig2.png \
                results/figures/fig5.png results/gallery results/runtimes.csv

demo: venv
	$(BIN)/snakemake $(DEMO_TARGETS) --cores $(CORES) --configfile config/demo.yaml
	$(BIN)/snakemake $(DEMO_TARGETS) --configfile config/demo.yaml --report results/report.html
	@cat results/table1.md results/table2.md

# Everything CI runs (its time on 2 cores: README's measured table; the log ends with the 15 slowest tests), in one
# pytest-xdist worker per core, a test file to a worker (its module fixtures, e.g. the tiny demo run, made once) ...
WORKERS ?= $(CORES)
PYTEST  := $(BIN)/python -m pytest -q -n $(WORKERS)

test: venv
	$(PYTEST) --dist loadfile --durations=15 tests

# ... and the fast loop: every test but those that run Snakemake jobs (marked slow: end-to-end, chaos,
# determinism, SLURM), test by test to the workers (no fixture there is worth keeping a file on one worker for:
# 1 min 49 s against 2 min 22 s a file to a worker, measured on 2 cores).
check: venv
	$(PYTEST) --dist load -m "not slow" tests

lint: venv
	$(BIN)/snakemake --lint

# The generated parts of the docs: the measured numbers of README.md, docs/ and bench/README.md, re-rendered from
# the demo's results/ and from bench/results/ (scripts/render_docs.py; `--check` says which doc is behind its files
# and changes nothing), and the path table of results/README.md from matlabel/paths.py (scripts/render_paths.py).
docs: venv
	$(BIN)/python scripts/render_docs.py
	$(BIN)/python scripts/render_paths.py

report: venv
	$(BIN)/snakemake $(DEMO_TARGETS) --configfile config/demo.yaml --report results/report.html

clean-demo:
	rm -rf resources/synthetic results/synthetic results/table?.csv results/table?.md results/figures results/runtimes.* \
	       results/config.yaml results/gallery results/report.html logs/synthetic \
	       benchmarks/synthetic
