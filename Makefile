# make quickstart : install, then run recipes/quickstart.yaml (tiny model, CPU, minutes)
# make test       : install, then the whole test suite (slow and multi-process tests included)
# make test-quick : the inner loop, pytest -m "not slow"
# make bench      : the benchmarks under benchmarks/
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install quickstart test test-quick bench

# torch is installed only when none is present, as the CPU build (a GPU user installs their
# CUDA build of torch first, and it is kept).
install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install torch==2.13.0
	$(PIP) install -q -e '.[test]'

quickstart: install
	$(PYTHON) -m cpt run recipes/quickstart.yaml

test: install
	$(PYTHON) -m pytest

test-quick: install
	$(PYTHON) -m pytest -m "not slow"

bench: install
	$(PYTHON) benchmarks/sft_throughput.py
