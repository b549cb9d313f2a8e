# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/python -m pip
STAMP  := $(VENV)/.installed
EXTRAS ?= export,tflite,remote,dev

.PHONY: demo test test-fast test-arm venv device-venv clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: its CPU build is what this machine serves.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

# A device-like venv without torch or onnx: numpy, the CLI and the two
# device runtimes only, with this package installed --no-deps. The tests run
# `bench` in it to prove the device side never imports the workstation stack.
DEVICE_VENV  ?= .venv-device
DEVICE_STAMP := $(DEVICE_VENV)/.installed

$(DEVICE_STAMP): pyproject.toml
	test -x $(DEVICE_VENV)/bin/python || $(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEVICE_VENV)/bin/python -m pip install -q numpy click rich pyyaml onnxruntime ai-edge-litert
	$(DEVICE_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $(DEVICE_STAMP)

device-venv: $(DEVICE_STAMP)

demo: $(STAMP)
	$(VENV)/bin/mdnet-deploy demo

test: $(STAMP) $(DEVICE_STAMP)
	$(VENV)/bin/python -m pytest -q tests

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow" tests

# The remote-bench tests against an emulated Raspberry Pi (arm64 Debian
# Bookworm under qemu-user, sshd on 127.0.0.1 only). Needs root; the root
# file system is built once and cached in $(PI_DIR). sshd is stopped (by its
# PID) whatever the tests do.
PI_DIR  := .cache/emulated-pi
PI_PORT ?= 2222

test-arm: $(STAMP)
	MDNET_PI_PORT=$(PI_PORT) scripts/emulated_pi/build.sh
	export MDNET_PI_PORT=$(PI_PORT); trap 'scripts/emulated_pi/stop.sh' EXIT INT TERM; \
	scripts/emulated_pi/start.sh && \
	MDNET_DEPLOY_TEST_PI=pi@127.0.0.1:$(PI_PORT) MDNET_DEPLOY_TEST_PI_DIR=$(CURDIR)/$(PI_DIR) \
	$(VENV)/bin/python -m pytest -q -m arm tests/remote

clean:
	rm -rf $(VENV) $(DEVICE_VENV) out
	# .cache holds the emulated Pi (minutes to rebuild): remove it by hand if wanted.
