# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/python -m pip
STAMP  := $(VENV)/.installed
EXTRAS ?= export,tflite,remote,report,openvino,dev

.PHONY: demo test test-fast test-arm test-tensorrt-api venv device-venv wheel check-py38 lint browser clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: its CPU build is what this machine serves.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

# The wheel that is the product: built once per change of the package, from
# a copy of the sources (the checkout stays clean). The device-side venvs
# below install it, so the device tests run the installed distribution.
WHEEL_DIR   ?= dist
WHEEL_STAMP := $(WHEEL_DIR)/.built
PKG_SOURCES := $(shell find mdnet_deploy -name '*.py') pyproject.toml README.md

$(WHEEL_STAMP): $(STAMP) $(PKG_SOURCES)
	rm -f $(WHEEL_DIR)/mdnet_deploy-*.whl
	$(VENV)/bin/python -c "import sys; from mdnet_deploy.remote.wheel import main; sys.exit(main(sys.argv[1:]))" $(WHEEL_DIR)
	touch $@

wheel: $(WHEEL_STAMP)

# A device-like venv without torch or onnx: the wheel's base install plus the
# two device runtimes. The tests run `bench` in it to prove the device side
# never imports the workstation stack. The wheel is installed twice: once for
# its dependencies, once --force-reinstall so a rebuilt wheel of the same
# version replaces the old files.
DEVICE_VENV  ?= .venv-device
DEVICE_STAMP := $(DEVICE_VENV)/.installed

$(DEVICE_STAMP): $(WHEEL_STAMP)
	test -x $(DEVICE_VENV)/bin/python || $(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEVICE_VENV)/bin/python -m pip install -q onnxruntime ai-edge-litert $(WHEEL_DIR)/mdnet_deploy-*.whl
	$(DEVICE_VENV)/bin/python -m pip install -q --force-reinstall --no-deps $(WHEEL_DIR)/mdnet_deploy-*.whl
	touch $(DEVICE_STAMP)

# The device side claims Python 3.8 (JetPack 5). Two checks: vermin reads the
# device-side modules statically, and the oldest interpreter found here runs
# the device tests from the wheel in its own venv (onnxruntime only: LiteRT
# has no 3.8 wheels). No 3.8/3.9 here: the venv is skipped with a message.
DEVICE_MODULES := mdnet_deploy/__init__.py mdnet_deploy/__main__.py mdnet_deploy/cli.py mdnet_deploy/errors.py \
	mdnet_deploy/artifact.py mdnet_deploy/fsutil.py mdnet_deploy/metrics.py mdnet_deploy/api.py mdnet_deploy/installation.py \
	mdnet_deploy/bench mdnet_deploy/runtimes \
	mdnet_deploy/devices mdnet_deploy/remote mdnet_deploy/commands/__init__.py mdnet_deploy/commands/_common.py \
	mdnet_deploy/commands/bench.py mdnet_deploy/commands/pack_eval.py mdnet_deploy/commands/doctor.py \
	mdnet_deploy/reporting/__init__.py mdnet_deploy/reporting/profile.py mdnet_deploy/reporting/traces.py \
	mdnet_deploy/reporting/terminal.py mdnet_deploy/node_names.py
OLDEST_PYTHON ?= $(shell for p in python3.8 $(HOME)/.pyenv/versions/3.8*/bin/python3 python3.9 \
	$(HOME)/.pyenv/versions/3.9*/bin/python3; do $$p -c 'import venv' >/dev/null 2>&1 && { command -v $$p; break; }; done)
OLDEST_VENV  ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed

$(OLDEST_STAMP): $(WHEEL_STAMP)
	@if [ -z "$(OLDEST_PYTHON)" ]; then echo "no Python 3.8/3.9 here: skipping the oldest-Python device venv"; exit 0; fi; \
	set -e; test -x $(OLDEST_VENV)/bin/python || $(OLDEST_PYTHON) -m venv $(OLDEST_VENV); \
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip; \
	$(OLDEST_VENV)/bin/python -m pip install -q onnxruntime $(WHEEL_DIR)/mdnet_deploy-*.whl; \
	$(OLDEST_VENV)/bin/python -m pip install -q --force-reinstall --no-deps $(WHEEL_DIR)/mdnet_deploy-*.whl; \
	touch $(OLDEST_STAMP)

check-py38: $(STAMP)
	$(VENV)/bin/vermin --target=3.8- --no-tips --violations $(DEVICE_MODULES)

device-venv: $(DEVICE_STAMP) $(OLDEST_STAMP)

demo: $(STAMP)
	$(VENV)/bin/mdnet-deploy demo

test: $(STAMP) $(DEVICE_STAMP) $(OLDEST_STAMP) check-py38 lint browser test-tensorrt-api
	$(VENV)/bin/python -m pytest -q tests

# The package and the tests stay lint-clean, formatted and type-checked (config in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check mdnet_deploy tests scripts
	$(VENV)/bin/ruff format --check mdnet_deploy tests scripts
	$(VENV)/bin/mypy

# The report's browser test renders in Debian's chromium. CI runs as root on a
# clean machine, so install it there once; elsewhere the test skips with why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the report's browser test"; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
		|| echo "could not install chromium: the report's browser test will be skipped"; \
	fi

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow" tests

# The builder and runner against the real TensorRT Python bindings of the
# newest 10.x and 11.x, each in its own cached venv (no GPU needed; what does
# need one is skipped with the reason). PyPI serves the bindings and the lean
# runtime as real wheels; the full libraries (libnvinfer, the ONNX parser) are
# placeholders that fetch from NVIDIA's own index, tried once and skipped
# where it is out of reach. Part of `make test`: about 120 MB of wheels and
# 70 s cold, 15 s warm (docs/BENCHMARKS.md).
TRT10_VERSION ?= 10.16.1.11
TRT11_VERSION ?= 11.4.0.106
TRT_API_DEPS  := numpy onnx pytest pytest-timeout click rich pyyaml

define trt_api_venv
$(1)/.installed: pyproject.toml
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q $(TRT_API_DEPS)
	$(1)/bin/python -m pip install -q --no-deps "tensorrt-$(2)-bindings==$(3)" "tensorrt-lean-$(2)-bindings==$(3)" "tensorrt-lean-$(2)-libs==$(3)"
	$(1)/bin/python -m pip install -q --no-deps "tensorrt-$(2)-libs==$(3)" >/dev/null 2>&1 || \
		echo "note: tensorrt-$(2)-libs $(3) is not installable here (NVIDIA's index unreachable); tests needing libnvinfer will skip"
	touch $(1)/.installed
endef
$(eval $(call trt_api_venv,.cache/trt10,cu12,$(TRT10_VERSION)))
$(eval $(call trt_api_venv,.cache/trt11,cu13,$(TRT11_VERSION)))

test-tensorrt-api: .cache/trt10/.installed .cache/trt11/.installed
	.cache/trt10/bin/python -m pytest -q -p no:cacheprovider -m tensorrt_api tests/export/test_tensorrt_api.py
	.cache/trt11/bin/python -m pytest -q -p no:cacheprovider -m tensorrt_api tests/export/test_tensorrt_api.py

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
	$(VENV)/bin/python -m pytest -q -m arm tests/remote tests/deploy

clean:
	rm -rf $(VENV) $(DEVICE_VENV) $(OLDEST_VENV) $(WHEEL_DIR) out
	# .cache holds the emulated Pi (minutes to rebuild): remove it by hand if wanted.
