# qkv: `make demo` sets up and runs the main job; `make test` sets up if needed and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch==2.13.0 resolves to the CPU wheel where the machine provides one (no multi-GB CUDA download).
TORCH  ?= torch==2.13.0
DEMO_MINUTES ?= 10

.PHONY: setup system test demo bench clean

setup: $(VENV)/.installed system

# System packages the tests need: Debian's chromium renders the lab report in a real browser.
system:
	@command -v chromium >/dev/null 2>&1 || apt-get install -y -q chromium >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null) \
		|| (echo "make setup: could not install Debian's chromium (needed by tests/lab/test_lab_browser.py); install it with apt-get install chromium" >&2; exit 1)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[dev,bench,interpret,deploy]"
	touch $@

test: setup
	$(PY) -m pytest -q --durations=15 --timeout=1200

demo: setup
	$(PY) -m qkv.demo --minutes $(DEMO_MINUTES)

bench: setup
	$(VENV)/bin/qkv bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
