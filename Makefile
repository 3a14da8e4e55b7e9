# `make test` on a fresh machine: system packages the tests need, a venv with the extras, the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# podman, runc, mmdebstrap and podman-docker (a `docker` backed by podman): the compile image and a container compile host (docs/compile-hosts.md).
SYSTEM_PACKAGES := redis-server openssh-server chromium chromium-driver podman runc mmdebstrap podman-docker
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test wheel-check lint format system-deps venv demo bench clean compile-image

test: system-deps venv compile-image
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory wheel-check

# The wheel, installed in a fresh venv away from the checkout, runs `farm lab predict` and a tiny sweep.
wheel-check: venv
	PYTHON=$(PYTHON) BUILD_PYTHON=$(PY) .ci/wheel-check

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Installs only what is missing, so a machine that has them pays nothing (apt needs root, as on CI).
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

# The farm's compile image in this machine's podman: built once per machine (the base is cached by its
# recipe's hash, the farm-code layer by the code's), in seconds when nothing changed.
compile-image: system-deps venv
	$(VENV)/bin/farm lab image build --if-possible

# onnx2torch (the agent's torch_cuda backend) goes in with --no-deps: its metadata requires torchvision, which
# would pull in another torch (GBs of CUDA); the backend runs without torchvision (NMS/RoiAlign refused).
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,torch]'  # torch==2.13.0: the CPU build (tests the PyTorch export path)
	$(PY) -m pip install -q --no-deps onnx2torch==1.5.15  # see above: no torchvision
	touch $@

demo: venv
	$(VENV)/bin/farm demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info build dist
