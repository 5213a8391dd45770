# make quickstart : install, then run recipes/quickstart.yaml (tiny model, CPU, minutes)
# make quickstart-rl : the same for recipes/quickstart-rl.yaml (SFT, DPO, GRPO)
# make smollm2   : recipes/smollm2-continual.yaml (SmolLM2-135M-Instruct, 3 new tasks, ~21 min on 2 CPU cores)
# make test       : install (with headless Chromium and a test Slurm), then the whole test suite: the quick
#                   tests, then the slow ones, on two workers (-n 2, one thread each; the Slurm tests on one
#                   worker, --dist loadgroup), then the forgetting tests (marked serial) in one process with
#                   both cores (their thresholds were set at that precision)
# make test-quick : the inner loop, pytest -m "not slow" -n 2 (two workers, one thread each)
# make bench      : every benchmark in quick mode (python -m benchmarks): benchmarks/results/ and docs/benchmarks.md
# make bench-full : every benchmark in full mode (meant for a GPU machine)
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_TEST_PACKAGES := chromium chromium-driver slurmctld slurmd slurm-client munge

.PHONY: install test-system-deps quickstart quickstart-rl smollm2 test test-quick bench bench-full bench-forgetting

# torch is installed only when none is present, as the CPU build (a GPU user installs their
# CUDA build of torch first, and it is kept).
install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install torch==2.13.0
	$(PIP) install -q -e '.[test]'

# Debian packages the tests use: headless Chromium renders the report (tests/eval/report); Slurm and munge
# make the test cluster that tests/cpt/slurm starts (slurm/test-cluster-up.sh) and stops.
test-system-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v slurmctld >/dev/null && \
	  command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get install -y -q --no-install-recommends $(APT_TEST_PACKAGES) || \
		{ $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $(APT_TEST_PACKAGES); }; }

quickstart: install
	$(PYTHON) -m cpt run recipes/quickstart.yaml

quickstart-rl: install
	$(PYTHON) -m cpt run recipes/quickstart-rl.yaml

smollm2: install
	$(PYTHON) -m cpt run recipes/smollm2-continual.yaml

test: install test-system-deps
	$(PYTHON) -m pytest -m "not slow" -n 2
	$(PYTHON) -m pytest -m "slow and not serial" -n 2 --dist loadgroup
	$(PYTHON) -m pytest -m serial

test-quick: install test-system-deps
	$(PYTHON) -m pytest -m "not slow" -n 2

bench: install
	$(PYTHON) -m benchmarks --mode quick

bench-full: install
	$(PYTHON) -m benchmarks --mode full

# Every guard on a 4-task sequence: the toy (3 seeds, ~40 min on 2 CPU cores), then SmolLM2-135M (~1 h).
bench-forgetting: install
	$(PYTHON) benchmarks/forgetting.py --mode full --setting toy --seeds 0 1 2
	$(PYTHON) benchmarks/forgetting.py --mode full --setting smollm2
