"""Commands of `farm lab` (see farm/cli/lab.py): the performance model behind the virtual lab.

``farm lab calibrate`` compares the DPU model with the 12 original published rows (an in-sample spot check)
and prints its held-out error on the Vitis AI Model Zoo table (docs/dpu-model.md);
``farm lab predict`` prices a zoo model or an .onnx file on a catalog board (DPU, GPU or a board's own CPU,
``pynq-z2:cpu``), optionally with
another DPU configuration, core count, clock or input size.
"""

from __future__ import annotations

import json
import re

import click

from farm.cli.common import EXIT_FAILED, format_option, wide_option
from farm.cli.render import Column, table
from farm.errors import FarmError
from farm.targets import is_board_cpu


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.1f}"


@click.command(name="calibrate")
@format_option("table", "json")
@wide_option
def calibrate(fmt: str, wide: bool) -> None:
    """Measured (published) vs predicted latency_ms, fps_st, fps_mt on the 12 original rows (in-sample),
    the median absolute error per metric and per board, then the held-out error per architecture and board."""
    from farm.perfmodel.calibration import CALIBRATED, METRICS, evaluate, medians

    results = evaluate()
    summary = medians(results)
    if fmt == "json":
        doc = {
            "model_version": _model_version(),
            "parameters": CALIBRATED.as_dict(),
            "rows": [r.as_dict() for r in results],
            "median_abs_error_pct": summary["overall"],
            "median_abs_error_pct_per_board": summary["per_board"],
            "held_out": _held_out_doc(),
        }
        click.echo(json.dumps(doc, indent=2))
        return
    rows = [
        {"board": r.row.board, "dpu": r.row.dpu, "model": r.row.model,
         **{f"{m}:{k}": getattr(r, k)(m) for m in METRICS for k in ("measured", "predicted", "error_pct")}}
        for r in results
    ]  # fmt: skip
    click.echo("published (measured) vs predicted, the 12 original rows (in-sample):")
    click.echo(table(rows, _calibration_columns(METRICS), wide=wide))
    click.echo("")
    click.echo("median absolute error (%), in-sample:")
    medians_rows = [{"board": "all", **summary["overall"]}]
    medians_rows += [{"board": board, **meds} for board, meds in summary["per_board"].items()]
    median_columns = [
        ("board", "board"),
        *(Column(m, f"{m} err %", fmt=_med, align="right") for m in METRICS),
    ]
    click.echo(table(medians_rows, median_columns, wide=wide))
    held = _held_out_doc()
    click.echo("")
    click.echo(
        "held-out median absolute error (%) (Vitis AI Model Zoo table, bench/dpu_loao.py; what predictions state):"
    )
    held_rows = [
        {"held out": f"{kind} {name}", **v}
        for kind, part in (("board", held["per_board"]), ("architecture", held["per_family"]))
        for name, v in part.items()
    ]
    held_rows.append({"held out": "overall (architectures)", **held["overall"]})
    held_columns = [
        ("held out", "held out"),
        *(Column(m, f"{m} err %", fmt=_med, align="right") for m in ("fps_st", "fps_mt")),
    ]
    click.echo(table(held_rows, held_columns, wide=wide))


#: Each calibration metric's columns: the published figure, the prediction, the error; its unit in the header.
_CALIBRATION_HEADERS = {"latency_ms": ("latency ms", "pred ms", "ms err %"), "fps_st": ("fps st", "pred st", "st err %"),
                        "fps_mt": ("fps mt", "pred mt", "mt err %")}  # fmt: skip


def _calibration_columns(names: tuple[str, ...]) -> list:
    columns: list = [("board", "board"), Column("dpu", "dpu", drop=1), ("model", "model")]
    for m in names:
        meas, pred, err = _CALIBRATION_HEADERS.get(m, (m, f"pred {m}", f"{m} err %"))
        columns += [
            Column(f"{m}:measured", meas, fmt=_num, align="right"),
            Column(f"{m}:predicted", pred, fmt=_num, align="right"),
            Column(f"{m}:error_pct", err, fmt=lambda v: "-" if v is None else f"{v:+.1f}", align="right"),
        ]
    return columns


def _held_out_doc() -> dict:
    from farm.perfmodel.params import HELD_OUT_OVERALL, HELD_OUT_PER_BOARD, HELD_OUT_PER_FAMILY

    def pair(v):
        return {"fps_st": v[0], "fps_mt": v[1]}

    return {
        "per_board": {k: pair(v) for k, v in HELD_OUT_PER_BOARD.items()},
        "per_family": {k: pair(v) for k, v in HELD_OUT_PER_FAMILY.items()},
        "overall": pair(HELD_OUT_OVERALL),
    }


def _med(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _model_version() -> str:
    from farm.perfmodel.perf import MODEL_VERSION

    return MODEL_VERSION


def _parse_input(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise click.BadParameter(f"expected HxW (e.g. 224x224), got {text!r}", param_hint="--input")
    return int(m.group(1)), int(m.group(2))


def _load(model: str, batch: int, input_hw: tuple[int, int] | None):
    """The analysed graph of a zoo name or an .onnx path; bad names are usage errors (exit 2)."""
    from pathlib import Path

    from farm.perfmodel.api import resize_input, zoo_graph
    from farm.perfmodel.graph import analyse

    if model.endswith(".onnx") or Path(model).exists():
        from farm.zoo.user import load_onnx_file

        if not Path(model).is_file():
            raise click.BadParameter(f"no such ONNX file: {model}", param_hint="--model")
        try:
            m = load_onnx_file(Path(model), batch)
            if input_hw:
                m = resize_input(m, *input_hw)
            return analyse(m)
        except FarmError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from None
    from farm.zoo.registry import get_zoo_model

    try:
        get_zoo_model(model)
    except FarmError as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from None
    return zoo_graph(model, batch, input_hw)


@click.command(name="predict")
@click.option("--board", required=True, help="A board type from inventory/board-types.yaml, e.g. zcu104.")
@click.option("--model", "model", required=True, help="A zoo model name or a path to an .onnx file.")
@click.option("--dpu", "dpu", default=None, metavar="CONFIG", help="Another DPU, e.g. DPUCZDX8G-B2304.")
@click.option("--cores", type=click.IntRange(min=1), default=None, help="DPU cores (default: the catalog's).")
@click.option(
    "--clock-mhz", type=click.FloatRange(min=0, min_open=True), default=None, help="Accelerator clock."
)
@click.option(
    "--input", "input_hw", default=None, metavar="HxW", help="Input height x width (default: the model's)."
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Compiled batch size."
)
@click.option(
    "--precision",
    type=click.Choice(["int8", "fp32"]),
    default="int8",
    show_default=True,
    help="GPU boards and board CPUs (pynq-z2:cpu) only.",
)
@format_option("table", "json")
def predict(
    board: str,
    model: str,
    dpu: str | None,
    cores: int | None,
    clock_mhz: float | None,
    input_hw: str | None,
    batch: int,
    precision: str,
    fmt: str,
) -> None:
    """Predicted latency (one thread), fps single- and multi-thread, DPU subgraphs and CPU fallbacks of a
    model on a catalog board type (boards in the lab do not matter)."""
    from farm.perfmodel.configs import parse_dpu
    from farm.perfmodel.target import board_type

    hw = _parse_input(input_hw)
    if is_board_cpu(board):  # a board's own ARM CPU (docs/seeds.md)
        if dpu is not None or cores is not None or clock_mhz is not None:
            raise click.UsageError(f"--dpu / --cores / --clock-mhz do not apply to {board!r}")
        try:
            doc = {"board": board, "model": model, **_predict_cpu(board, _load(model, batch, hw), precision)}
        except FarmError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            raise SystemExit(EXIT_FAILED) from None
        _print_prediction(doc, fmt)
        return
    try:
        bt = board_type(board)
    except FarmError as exc:
        raise click.BadParameter(str(exc), param_hint="--board") from None
    if dpu is not None:
        try:
            parse_dpu(dpu)
        except FarmError as exc:
            raise click.BadParameter(str(exc), param_hint="--dpu") from None
    graph = _load(model, batch, hw)
    kind = bt.accelerator.kind if bt.accelerator else None
    try:
        if kind == "dpu":
            doc = _predict_dpu(board, graph, dpu, cores, clock_mhz)
        elif kind == "gpu" and bt.accelerator.peak_tops_int8:
            if dpu is not None or cores is not None:
                raise click.UsageError(f"--dpu / --cores do not apply to GPU board {board!r}")
            doc = _predict_gpu(board, graph, clock_mhz, precision)
        else:
            raise click.BadParameter(
                f"board type {board!r} has no modelled accelerator (a DPU, or a GPU with peak figures)",
                param_hint="--board",
            )
    except click.ClickException:
        raise
    except FarmError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        raise SystemExit(EXIT_FAILED) from None
    _print_prediction({"board": board, "model": model, **doc}, fmt)


def _print_prediction(doc: dict, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    for key in (
        "board",
        "model",
        "target",
        "precision",
        "batch_size",
        "latency_ms",
        "fps_st",
        "fps_mt",
        "utilisation_st",
        "utilisation_mt",
        "bound_mt",
        "threads",
        "subgraphs",
    ):
        if key in doc:
            value = doc[key]
            click.echo(f"{key:<15} {_num(value) if isinstance(value, float) else value}")
    if "cpu_ops" in doc:
        click.echo(f"{'cpu_ops':<15} {', '.join(doc['cpu_ops']) or '-'}")
    if "expected_error_pct" in doc:
        e = doc["expected_error_pct"]
        click.echo(
            f"{'expected error':<15} fps_st ±{e['fps_st']:.1f} %, fps_mt ±{e['fps_mt']:.1f} % (held-out, {e['basis']})"
        )
    if "expected_error" in doc:
        click.echo(f"{'expected error':<15} {doc['expected_error']}")
    for w in doc.get("warnings", []):
        click.secho(f"warning: {w}", fg="yellow")


def _predict_dpu(board, graph, dpu, cores, clock_mhz) -> dict:
    from farm.perfmodel.partition import check_memory, plan
    from farm.perfmodel.perf import MODEL_VERSION, predict_plan
    from farm.perfmodel.target import dpu_target

    t = dpu_target(board, dpu=dpu, cores=cores, clock_mhz=clock_mhz)
    p = plan(graph, t.dpu)
    check_memory(p, t.usable_bytes, t.cores * t.dpu.engines, f"{board} ({t.arch})")
    pred = predict_plan(p, t)
    s = pred.summary()
    notes = []
    if bt_is_zynq7000(board):
        notes.append(
            "a Zynq-7020 needs the older DPU IP (DNNDK / DPU v3.x or a PYNQ-DPU port), not Vitis AI 2.x/3.x"
        )
    from farm.perfmodel.params import held_out_error

    st, mt, basis = held_out_error(board)
    return {
        "model_version": MODEL_VERSION,
        "kind": "dpu",
        "expected_error_pct": {"fps_st": st, "fps_mt": mt, "basis": basis},
        "device": t.dpu.name,
        "cores": t.cores,
        "clock_mhz": t.clock_mhz,
        "peak_tops": round(t.peak_tops, 4),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()},
        "warnings": [*s["warnings"], *notes],
    }


def bt_is_zynq7000(board: str) -> bool:
    from farm.perfmodel.target import board_type

    return "zynq-70" in board_type(board).description.lower()


def _predict_gpu(board, graph, clock_mhz, precision) -> dict:
    from farm.perfmodel.gpu import MODEL_VERSION, gpu_target, predict_gpu

    t = gpu_target(board, clock_mhz)
    pred = predict_gpu(graph, t, precision)
    s = pred.summary()
    return {
        "model_version": MODEL_VERSION,
        "kind": "gpu",
        "device": t.device,
        "cores": t.sms,
        "clock_mhz": t.clock_mhz,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()},
        "subgraphs": 1,
        "cpu_ops": [],
        "warnings": [],
    }


def _predict_cpu(board, graph, precision) -> dict:
    """The ARM CPU model (farm/perfmodel/armcpu.py): its expected error is its calibration points' (the
    seed's A9 figures and ncnn's A53 / A72 ones), not a held-out figure: there are too few points."""
    from farm.perfmodel.armcpu import MODEL_VERSION, calibration_errors, cpu_target, predict_cpu

    t = cpu_target(board)
    s = predict_cpu(graph, t, precision).summary()
    errors = [err for _, err in calibration_errors()]
    return {
        "model_version": MODEL_VERSION,
        "kind": "cpu",
        "device": t.model,
        "cores": t.cores,
        "clock_mhz": t.clock_mhz,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()},
        "fps_st": round(s["batch_size"] * 1000.0 / s["latency_ms"], 4),
        "expected_error": f"±{max(errors):.1f} % on its {len(errors)} calibration points (in-sample; no held-out "
        "set for ARM CPUs: docs/dpu-model.md)",
        "warnings": [],
    }


COMMANDS: list[click.Command] = [calibrate, predict]
