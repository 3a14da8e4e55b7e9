# The farm's compile image (ONNX Runtime and the DPU/GPU/ARM CPU emulators), for Docker compile hosts with
# `runner: docker` (docs/compile-hosts.md).
#
# Build it on the compile host from the repository root, with the versions the workers have (the image tag
# is what the in-farm toolchains name as container_image: farm/compile:<onnxruntime version>; on this machine
# farm/containers/image.py builds the same image with podman and no base image to pull),
# then list that tag under the host's `images:` in the inventory:
#
#   docker build -f workers/toolchains/docker/onnxruntime.Dockerfile \
#       --build-arg ORT_VERSION=1.32.0 --build-arg ONNX_VERSION=1.23.2 --build-arg NUMPY_VERSION=2.4.6 \
#       -t farm/compile:1.32.0 .
#
# Only what the toolchain code imports is installed (onnxruntime, onnx, numpy, sympy for ORT's quantisation
# pre-processing; pydantic, pydantic-settings, PyYAML, SQLAlchemy, platformdirs and python-dotenv for the
# emulators' board catalog and settings), not Celery, Redis or Streamlit; farm/containers/image.py pins the
# same list (PYTHON_ROOTS) to the workers' exact versions. Runs as any uid (the runner passes --user
# uid:gid and HOME=/work) with no network.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG ORT_VERSION=1.32.0
ARG ONNX_VERSION=1.23.2
ARG NUMPY_VERSION=2.4.6
RUN pip install --no-cache-dir --disable-pip-version-check \
        "onnxruntime==${ORT_VERSION}" "onnx==${ONNX_VERSION}" "numpy==${NUMPY_VERSION}" sympy \
        pyyaml pydantic pydantic-settings sqlalchemy platformdirs python-dotenv

COPY farm/ /opt/farm/farm/
COPY workers/ /opt/farm/workers/
COPY inventory/ /opt/farm/inventory/
# (farm/workers and farm/inventory_data are links to these two folders)
ENV PYTHONPATH=/opt/farm \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN python3 -m farm.workers.toolchains.cli version --toolchain onnxruntime_cpu

WORKDIR /work
LABEL org.opencontainers.image.title="farm toolchain: onnxruntime_cpu" \
      org.opencontainers.image.description="python3 -m farm.workers.toolchains.cli compile --toolchain onnxruntime_cpu ..."
