"""A toolchain out of process: ``python -m farm.workers.toolchains.cli compile|version``.

This is how compile runners (``workers/toolchains/runners``) drive a toolchain on a compile host or inside
its Docker image::

    compile --toolchain NAME --model IN.onnx --precision fp32|int8 --quant-json '{...}' --out-dir DIR
            [--calibration-data CALIB.npz]
    version --toolchain NAME

``compile`` writes the artifact (``DIR/model.onnx`` for ONNX toolchains) and ``DIR/result.json`` (written
last, atomically). Exit status: 0 compiled; 2 model error (the toolchain's ModelError: the reason is in
result.json ``error`` and on stderr; never worth retrying); 1 anything else (bad arguments, unknown
toolchain, unreadable input file, a crash: a traceback on stderr and, when it could be written,
result.json with ``error_kind: "internal"``).

result.json on success::

    {"schema": 1, "ok": true, "toolchain": <catalog name>, "name": <Toolchain.name>, "version": ...,
     "target_arch": ..., "precision": ..., "quant": {...}, "artifact": "model.onnx",
     "artifact_sha256": ..., "size_bytes": ..., "fidelity": {...} | null, "warnings": [...],
     "details": {...}, "seconds": ...}

and on failure ``{"schema": 1, "ok": false, "error_kind": "model" | "internal", "error": "..."}``.

``version`` prints ``{"name", "version", "target_arch"}`` as one JSON line (exit 0, or 1).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from farm.errors import ModelError
from farm.workers.toolchains.base import QuantConfig, compile_argv, version_argv

__all__ = ["EXIT_MODEL", "EXIT_OK", "RESULT_FILE", "compile_argv", "main", "version_argv"]

RESULT_FILE = "result.json"
RESULT_SCHEMA = 1
EXIT_OK, EXIT_OTHER, EXIT_MODEL = 0, 1, 2
_QUANT_KEYS = ("calibration_samples", "method", "per_channel", "seed", "calibration_sha256")


def quant_from_json(text: str):
    """A QuantConfig from ``--quant-json`` (missing keys take the defaults; unknown keys are an error)."""
    data = json.loads(text or "{}")
    if not isinstance(data, dict):
        raise ValueError("--quant-json must be a JSON object")
    unknown = sorted(set(data) - set(_QUANT_KEYS))
    if unknown:
        raise ValueError(f"unknown quantisation settings: {', '.join(unknown)}")
    return QuantConfig(**data)


def load_model(path: str | os.PathLike[str]):
    """The ONNX model at ``path``; an unparsable file is a ModelError (a missing one is not)."""
    import onnx
    from google.protobuf.message import DecodeError

    data = Path(path).read_bytes()  # FileNotFoundError: the caller's problem, not the model's
    try:
        return onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{Path(path).name} is not a readable ONNX model: {exc}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def version_info(toolchain_name: str) -> dict:
    from farm.workers.toolchains.registry import get_toolchain

    tc = get_toolchain(toolchain_name)
    return {"name": tc.name, "version": tc.version(), "target_arch": tc.target_arch}


def compile_to_dir(toolchain_name: str, model_path: Path, precision: str, quant, out_dir: Path) -> dict:
    """Compile in this process; the artifact ends up directly in ``out_dir``. Returns result.json's dict
    (without writing it). Raises ModelError for model problems, anything else for the rest."""
    from farm.workers.toolchains.registry import get_toolchain

    tc = get_toolchain(toolchain_name)
    model = load_model(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = tc.compile(model, precision, quant, out_dir)
    seconds = time.perf_counter() - started
    artifact = Path(result.path)
    if artifact.parent.resolve() != out_dir.resolve():  # keep the contract: a plain file in out_dir
        shutil.copyfile(artifact, out_dir / artifact.name)
        artifact = out_dir / artifact.name
    return {
        "schema": RESULT_SCHEMA,
        "ok": True,
        "toolchain": toolchain_name,
        "name": tc.name,
        "version": tc.version(),
        "target_arch": tc.target_arch,
        "precision": precision,
        "quant": quant.as_dict(),
        "artifact": artifact.name,
        "artifact_sha256": sha256_file(artifact),
        "size_bytes": artifact.stat().st_size,
        "fidelity": result.fidelity,
        "warnings": list(result.warnings),
        "details": result.details,
        "seconds": round(seconds, 3),
    }


def _write_result(out_dir: Path, data: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{RESULT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, out_dir / RESULT_FILE)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1: exit 2 means "the model is at fault" here, which a typo is not."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_OTHER, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m farm.workers.toolchains.cli", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile one model into --out-dir")
    c.add_argument("--toolchain", required=True, help="catalog name, e.g. onnxruntime_cpu")
    c.add_argument("--model", required=True, type=Path, help="input ONNX model")
    c.add_argument("--precision", required=True, help="fp32 or int8")
    c.add_argument("--quant-json", default="{}", help="QuantConfig as JSON (int8)")
    c.add_argument("--out-dir", required=True, type=Path)
    c.add_argument(
        "--calibration-data",
        default=None,
        help="int8: an .npz of real calibration inputs (its sha256 must be calibration_sha256 in --quant-json)",
    )
    v = sub.add_parser("version", help="print the toolchain's name, version and target arch as JSON")
    v.add_argument("--toolchain", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command == "version":
        try:
            print(json.dumps(version_info(args.toolchain), sort_keys=True))
        except Exception as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_OTHER
        return EXIT_OK

    out_dir: Path = args.out_dir
    try:
        quant = quant_from_json(args.quant_json)
        if args.calibration_data:
            quant = dataclasses.replace(quant, calibration_data=args.calibration_data)
        data = compile_to_dir(args.toolchain, args.model, args.precision, quant, out_dir)
    except ModelError as exc:
        print(f"model error: {exc}", file=sys.stderr)
        _write_result(
            out_dir, {"schema": RESULT_SCHEMA, "ok": False, "error_kind": "model", "error": str(exc)}
        )
        return EXIT_MODEL
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):  # e.g. an unwritable --out-dir: the traceback says it all
            _write_result(
                out_dir, {"schema": RESULT_SCHEMA, "ok": False, "error_kind": "internal", "error": message}
            )
        return EXIT_OTHER
    for warning in data["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    _write_result(out_dir, data)
    print(json.dumps({"ok": True, "artifact": str(out_dir / data["artifact"]), "seconds": data["seconds"]}))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
