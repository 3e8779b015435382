# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

.PHONY: venv demo test lint bench soak clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "setuptools<81" wheel
	# torch first, from the pinned CPU build, so no extra resolves to a CUDA build.
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[train,dev,dashboard,cluster]"
	touch $(STAMP)

# DASHBOARD=1: also serve the browser dashboard (http://127.0.0.1:8765, or
# DASHBOARD_PORT), which keeps serving after the demo until Ctrl-C.
demo: $(STAMP)
	$(PY) -m emomon.cli demo --out $(DEMO_DIR) $(if $(filter 1 yes true,$(DASHBOARD)),--dashboard) \
		$(if $(DASHBOARD_PORT),--dashboard-port $(DASHBOARD_PORT))

# pytest exits 5 when it collects nothing: that is a failure here, as is any skip
# of a whole module by an import error (collection errors fail the run).
# --durations: the suite must stay under 15 minutes on 2 cores; the slowest
# tests, printed at the end, say where the time goes.
test: $(STAMP)
	$(VENV)/bin/ruff check emomon tests benchmarks
	$(PY) -m pytest -q -p no:cacheprovider --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check emomon tests benchmarks
	$(VENV)/bin/ruff format --check emomon tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_linear.py
	$(PY) benchmarks/bench_stream.py
	$(PY) benchmarks/bench_interpolation.py
	$(PY) benchmarks/bench_eegpt.py

soak: $(STAMP)
	$(PY) benchmarks/soak.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
