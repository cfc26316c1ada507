# edge-rec: `make demo` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edge-rec-installed
RUN_DIR ?= runs/demo

.PHONY: install demo test bench lint clean

install: $(STAMP)

# (Re)install when pyproject.toml changes; `make test` and `make demo` depend on this.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,plot,dev,publish,update]'
	@touch $(STAMP)

# A failed quality gate (exit 3) still wrote the bundle and the report: say so loudly, but the
# demo has run. Any other failure stops make.
demo: $(STAMP)
	@$(VENV)/bin/edge-rec build --config examples/tv/config.toml --out $(RUN_DIR); status=$$?; \
	if [ $$status -eq 3 ]; then \
	  echo "demo: the quality gate FAILED (see $(RUN_DIR)/report.md); the bundle and report were written"; \
	elif [ $$status -ne 0 ]; then exit $$status; fi

# The device side runs on Python 3.9+: `make test` runs the device children (load, recommend,
# inspect, serve with TensorFlow blocked) on Python 3.9 with the lean device extra
# (tflite-runtime 2.14) and the update extra (python-tuf 5) when a Python 3.9 can be found, else on the venv's Python (it says so).
DEVICE_VENV ?= .venv-device
DEVICE_STAMP := $(DEVICE_VENV)/.edge-rec-installed
$(DEVICE_STAMP): pyproject.toml
	@py=""; for c in python3.9 $(HOME)/.pyenv/versions/3.9*/bin/python3.9 /usr/bin/python3.9; do \
	  if $$c -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then py=$$c; break; fi; done; \
	rm -rf $(DEVICE_VENV); \
	if [ -n "$$py" ]; then \
	  $$py -m venv $(DEVICE_VENV) && $(DEVICE_VENV)/bin/pip install --quiet --upgrade pip && \
	  $(DEVICE_VENV)/bin/pip install --quiet -e '.[device-lean,update]'; \
	else echo "make: no Python 3.9 found; the device tests run on $$($(PY) -V)"; mkdir -p $(DEVICE_VENV); fi
	@touch $(DEVICE_STAMP)

# Two pytest workers (pytest-xdist): the suite is half TensorFlow work, half waiting on child
# processes and clusters, so two workers on two cores take ~3.3 min where one takes ~5.2.
TEST_WORKERS ?= 2
test: $(STAMP) $(DEVICE_STAMP)
	@if [ -x $(DEVICE_VENV)/bin/python ]; then \
	  export EDGE_REC_DEVICE_PYTHON=$(CURDIR)/$(DEVICE_VENV)/bin/python EDGE_REC_DEVICE_PYTHON_VERSION=3.9; fi; \
	$(PY) -m pytest -n $(TEST_WORKERS) -rfE

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Long property-based run over hostile bundles and HTTP bodies (EDGE_REC_FUZZ_BUNDLES /
# EDGE_REC_FUZZ_HTTP cases, 10,000 each by default); writes benchmarks/results/fuzz.md.
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) benchmarks/fuzz.py

clean:
	rm -rf $(VENV) $(DEVICE_VENV) runs benchmarks/work .pytest_cache

# Release check, not part of `make test`: the bundle's top-10 on aarch64 (Debian arm64 CPython and
# pip's aarch64 wheels under qemu user-mode, QEMU_CPU=cortex-a53) must equal x86-64's for 20 fixed
# histories. Needs apt (arm64 packages, run as root once) and qemu-user. See benchmarks/arm64_check.py.
BUNDLE ?= runs/demo/bundle
.PHONY: arm64-check
arm64-check: $(STAMP)
	$(PY) benchmarks/arm64_check.py --bundle $(BUNDLE)
