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
	$(PY) -m pip install --quiet -e '.[train,plot,dev]'
	@touch $(STAMP)

# A failed quality gate (exit 3) still wrote the bundle and the report: say so loudly, but the
# demo has run. Any other failure stops make.
demo: $(STAMP)
	@$(VENV)/bin/edge-rec build --config examples/tv/config.toml --out $(RUN_DIR); status=$$?; \
	if [ $$status -eq 3 ]; then \
	  echo "demo: the quality gate FAILED (see $(RUN_DIR)/report.md); the bundle and report were written"; \
	elif [ $$status -ne 0 ]; then exit $$status; fi

test: $(STAMP)
	$(PY) -m pytest

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
	rm -rf $(VENV) runs benchmarks/work .pytest_cache

# Release check, not part of `make test`: the bundle's top-10 on aarch64 (Debian arm64 CPython and
# pip's aarch64 wheels under qemu user-mode, QEMU_CPU=cortex-a53) must equal x86-64's for 20 fixed
# histories. Needs apt (arm64 packages, run as root once) and qemu-user. See benchmarks/arm64_check.py.
BUNDLE ?= runs/demo/bundle
.PHONY: arm64-check
arm64-check: $(STAMP)
	$(PY) benchmarks/arm64_check.py --bundle $(BUNDLE)
