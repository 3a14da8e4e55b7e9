"""The minimal interface every inference backend implements, the agent's error kinds, and the check every
file shipped to the board passes (:func:`verified_file`).

A backend wraps one runtime (ONNX Runtime on the CPU, VART on a DPU, ...). The harness only ever:

1. constructs it (the runtime is imported here, so a missing runtime is an infra error),
2. calls :meth:`Backend.configure` with the normalised config (scenario, batch size, emulation),
3. calls :meth:`Backend.load` once,
4. reads :attr:`Backend.input_shape` / :attr:`Backend.input_dtype` to build inputs, and hands the
   input batches to :meth:`Backend.prepare` once, before any of them is timed,
5. calls :meth:`Backend.predict` many times (this call is what gets timed),
6. calls :meth:`Backend.versions` for the environment record, :meth:`Backend.emulation` for the
   report, and :meth:`Backend.close`.
"""

from __future__ import annotations

import hashlib
import os


class AgentError(Exception):
    """An error the agent reports as ``{"kind": ..., "message": ...}`` instead of a traceback."""

    kind = "infra"


class ModelError(AgentError):
    """The model cannot be loaded or run by the backend (corrupt file, unsupported op, bad shape)."""

    kind = "model"


class InfraError(AgentError):
    """Anything that is not the model's fault (missing file or runtime, bad config, LoadGen failure)."""

    kind = "infra"


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(path, expected_sha256, what):
    """``path`` (absolute) when it is a file whose sha256 is ``expected_sha256`` (if one is given); an
    :class:`InfraError` naming ``what`` (the artifact, a dataset pack...) otherwise. Every file the farm
    ships to a board is checked here before the agent uses it."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise InfraError("%s not found: %s" % (what, path))
    if expected_sha256:
        try:
            actual = sha256_file(path)
        except (OSError, IOError) as exc:
            raise InfraError("cannot read %s %s: %s" % (what, path, exc)) from exc
        if actual.lower() != expected_sha256.strip().lower():
            raise InfraError(
                "%s sha256 mismatch for %s: expected %s, got %s" % (what, path, expected_sha256, actual)
            )
    return path


class Backend(object):
    """Abstract backend. Subclasses set :attr:`name` and :attr:`runtime` and implement the methods."""

    #: Registry name, e.g. ``"onnxruntime_cpu"``.
    name = ""
    #: Runtime family for the environment record, e.g. ``"onnxruntime"``.
    runtime = ""

    def configure(self, config):
        """The normalised agent config, before :meth:`load` (optional: most backends need nothing)."""

    def load(self, artifact_path, threads=None):
        """Load the artifact. Raise :class:`ModelError` if the runtime rejects it."""
        raise NotImplementedError

    @property
    def input_shape(self):
        """The model's declared input shape including the batch dimension; ``None`` for a dynamic dim."""
        raise NotImplementedError

    @property
    def input_dtype(self):
        """The numpy dtype of the model input."""
        raise NotImplementedError

    def predict(self, batch):
        """Run one batch (shape ``resolve_shape(input_shape, batch_size)``) and return the first output.

        Raise :class:`ModelError` if the runtime fails to run the model.
        """
        raise NotImplementedError

    def prepare(self, batches):
        """The input batches the test will use (the same objects, reused cyclically), before any is
        timed (optional)."""

    def emulation(self):
        """The report's ``emulation`` object for an emulated backend; None for real hardware."""
        return None

    def versions(self):
        """Runtime facts for the environment record: ``runtime``, ``runtime_version``, ``runtime_providers``."""
        return {"runtime": self.runtime, "runtime_version": None, "runtime_providers": []}

    def close(self):
        """Release the runtime's resources (optional)."""


def resolve_shape(declared_shape, batch_size):
    """The concrete input shape for ``batch_size``; dimension 0 is the batch dimension.

    A dynamic batch dimension takes ``batch_size``; a fixed one must equal it. Any other dynamic
    dimension cannot be filled with synthetic data, so it is a :class:`ModelError`.
    """
    shape = list(declared_shape)
    if not shape:
        raise ModelError("model input is a scalar; the agent needs a batch dimension")
    if shape[0] is None:
        shape[0] = batch_size
    elif shape[0] != batch_size:
        raise ModelError(
            "model input has a fixed batch dimension of %s but batch_size=%s was requested"
            % (shape[0], batch_size)
        )
    for i, dim in enumerate(shape[1:], start=1):
        if dim is None or dim <= 0:
            raise ModelError(
                "model input dimension %d is dynamic (%r); only the batch dimension may be" % (i, dim)
            )
    return tuple(int(d) for d in shape)
