# The onnxruntime_cpu toolchain as an image, for compile hosts with `runner: docker`.
#
# Build it on the compile host from the repository root, with the versions the workers have (the image tag
# is what OnnxRuntimeCpuToolchain.container_image names: farm/toolchain-onnxruntime:<onnxruntime version>),
# then list that tag under the host's `images:` in the inventory:
#
#   docker build -f workers/toolchains/docker/onnxruntime.Dockerfile \
#       --build-arg ORT_VERSION=1.32.0 --build-arg ONNX_VERSION=1.23.2 --build-arg NUMPY_VERSION=2.4.6 \
#       -t farm/toolchain-onnxruntime:1.32.0 .
#
# Only the toolchain's own dependencies are installed (onnxruntime, onnx, numpy, and sympy, which ORT's
# quantisation pre-processing imports), not farm's coordinator stack (Celery, SQLAlchemy, Streamlit...):
# the toolchain code imports farm.errors and farm.zoo.inputs and nothing else of farm. Runs as any uid
# (the runner passes --user uid:gid and HOME=/work) with no network.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG ORT_VERSION=1.32.0
ARG ONNX_VERSION=1.23.2
ARG NUMPY_VERSION=2.4.6
RUN pip install --no-cache-dir --disable-pip-version-check \
        "onnxruntime==${ORT_VERSION}" "onnx==${ONNX_VERSION}" "numpy==${NUMPY_VERSION}" sympy

COPY farm/ /opt/farm/farm/
COPY workers/ /opt/farm/workers/
ENV PYTHONPATH=/opt/farm \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN python3 -m farm.workers.toolchains.cli version --toolchain onnxruntime_cpu

WORKDIR /work
LABEL org.opencontainers.image.title="farm toolchain: onnxruntime_cpu" \
      org.opencontainers.image.description="python3 -m farm.workers.toolchains.cli compile --toolchain onnxruntime_cpu ..."
