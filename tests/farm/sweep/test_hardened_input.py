"""Issue 10's parser findings, one regression test each: every hostile sweep is refused with a SweepError at
file:line: field (never a RecursionError, ValueError, KeyError, PermissionError, ...), without a long walk
or an explosion of memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from farm.config import load_settings
from farm.datasets.imagefolder import DatasetError, scan
from farm.errors import SweepError
from farm.inventory import load_inventory
from farm.sweep.expand import expand, planned_job_count
from farm.sweep.load import DEFAULT_MAX_JOBS, load_sweep, parse_sweep
from farm.sweep.yaml_lines import LIMITS, load_with_lines
from tests.conftest import write_sweep

GOOD = """\
name: ok
models: [resnet18]
precisions: [fp32]
targets: [cpu]
"""


def _inventory():
    return load_inventory(load_settings().inventory_dir)


def _error(tmp_path: Path, body: str, **kwargs) -> SweepError:
    with pytest.raises(SweepError) as info:
        load_sweep(write_sweep(tmp_path, body), _inventory(), **kwargs)
    assert info.type is SweepError
    return info.value


def _located(err: SweepError, line: int, field: str | None) -> None:
    assert (err.line, err.field) == (line, field), str(err)
    assert str(err).startswith(f"{err.path}:{line}: ")


# -- aliases ------------------------------------------------------------------------------------------------


def test_recursive_alias_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("models: [resnet18]", "models: &a [*a]"))
    _located(err, 2, "models[0]")
    assert "recursive alias *a" in str(err)


def test_recursive_alias_through_a_mapping_and_a_merge_key(tmp_path: Path) -> None:
    assert "recursive alias" in str(_error(tmp_path, GOOD + "loadgen: &l {x: *l}\n"))
    assert "recursive alias" in str(_error(tmp_path, GOOD + "loadgen: &l {<<: *l}\n"))


def test_billion_laughs_is_refused_within_the_value_budget(tmp_path: Path) -> None:
    levels = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    err = _error(tmp_path, "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + levels + GOOD)
    assert f"expands to more than {LIMITS.max_nodes:,} values" in str(err) and err.line is not None


def test_long_strings_repeated_by_aliases_hit_the_character_budget(tmp_path: Path) -> None:
    body = f"s: &s {'x' * 400_000}\nt: [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s, *s]\n" + GOOD
    assert f"more than {LIMITS.max_chars:,} characters" in str(_error(tmp_path, body))


def test_undefined_alias_and_duplicate_anchor(tmp_path: Path) -> None:
    _located(_error(tmp_path, GOOD + "description: *nowhere\n"), 5, "description")
    err = _error(tmp_path, "name: &a ok\nmodels: &a [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\n")
    assert "duplicate anchor &a" in str(err) and err.line == 2


def test_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    body = (
        "name: ok\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: &t [cpu]\n"
        "defaults: &short {min_duration_ms: 500, min_query_count: 8}\n"
    )
    # `defaults` is not a sweep field: the merge source is refused as an unknown field, at its own line
    _located(_error(tmp_path, body), 5, "defaults")
    ok = (
        "name: ok\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\n"
        "loadgen:\n  <<: {min_duration_ms: 500, min_query_count: 8}\n  min_query_count: 16\n"
    )
    spec = load_sweep(write_sweep(tmp_path, ok), _inventory()).spec
    assert (spec.loadgen.min_duration_ms, spec.loadgen.min_query_count) == (500, 16)


def test_merged_fields_are_located_where_they_were_written() -> None:
    value, lines = load_with_lines("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", "t.yaml")
    assert value["m"] == {"x": 1, "y": 3}
    assert lines[("m", "x")] == 1 and lines[("m", "y")] == 4


def test_a_merge_of_something_else_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "loadgen: {<<: 3}\n")
    _located(err, 5, "loadgen.<<")
    assert "merge key (<<) takes a mapping" in str(err)


# -- tags -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "!!python/name:os.system",
        "!!python/object/apply:os.system ['true']",
        "!!int abc",
        "!!bool maybe",
        "!!timestamp x",
        "!!int 3",
        "!!str text",
        "!custom x",
        "!!set {a, b}",
    ],
)
def test_every_explicit_tag_is_refused(tmp_path: Path, value: str) -> None:
    err = _error(tmp_path, GOOD + f"description: {value}\n")
    _located(err, 5, "description")
    assert "YAML tags" in str(err) and "are not allowed" in str(err)


def test_implicit_scalars_yaml_cannot_read_are_located(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "description: 2024-13-45\n")
    _located(err, 5, "description")
    assert "as a timestamp" in str(err)


# -- characters and numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\0", "\\x00", "\\u0000"])
def test_nul_in_a_path_is_refused(tmp_path: Path, escape: str) -> None:
    err = _error(tmp_path, GOOD + f'dataset: "shapes{escape}x"\n')
    _located(err, 5, "dataset")
    assert "NUL character" in str(err)


def test_a_raw_nul_in_the_file_is_located(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_bytes(GOOD.encode() + b"description: a\x00b\n")
    with pytest.raises(SweepError, match="NUL character in the file") as info:
        load_sweep(path, _inventory())
    assert info.value.line == 5


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("loadgen: {target_latency_ms: .inf}", "loadgen.target_latency_ms"),
        ("loadgen: {target_latency_ms: -.inf}", "loadgen.target_latency_ms"),
        ("loadgen: {target_latency_ms: .nan}", "loadgen.target_latency_ms"),
        ("loadgen: {target_latency_ms: 1e999}", "loadgen.target_latency_ms"),
        ("loadgen: {target_latency_ms: inf}", "loadgen.target_latency_ms"),
        ("loadgen: {server_target_qps: nan}", "loadgen.server_target_qps"),
        ("dataset: {path: shapes, preprocessing: {mean: [0.5, .nan, 0.5]}}", "dataset.preprocessing.mean"),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path: Path, line: str, field: str) -> None:
    err = _error(tmp_path, GOOD + line + "\n")
    assert err.line == 5 and err.field is not None and err.field.startswith(field), str(err)
    assert "finite" in str(err)


def test_numbers_too_long_or_too_large_are_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "repeats: " + "9" * 5000 + "\n")
    _located(err, 5, "repeats")
    assert "longer than" in str(err)
    err = _error(tmp_path, GOOD + "batch_sizes: [1, 1000000000000]\n")
    _located(err, 5, "batch_sizes[1]")
    err = _error(tmp_path, GOOD + "quantization: {seed: -1}\n")
    _located(err, 5, "quantization.seed")


def test_a_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_bytes(GOOD.encode() + b"description: caf\xe9\n")
    with pytest.raises(SweepError, match="not UTF-8") as info:
        load_sweep(path, _inventory())
    assert info.value.line == 5


# -- size and shape -----------------------------------------------------------------------------------------------


def test_oversized_files_are_refused_before_parsing(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "# " + "x" * LIMITS.max_bytes + "\n")
    assert f"larger than {LIMITS.max_bytes:,} bytes" in str(err)


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "/proc/self/mem"])
def test_a_device_or_special_file_is_not_read(special: str) -> None:
    if not os.path.exists(special):
        pytest.skip(f"{special} does not exist here")
    with pytest.raises(SweepError, match="not a regular file|cannot read sweep file"):  # /proc/self/mem: EIO
        load_sweep(special, _inventory())


def test_a_folder_is_not_a_sweep_file(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="not found \\(or not a regular file\\)"):
        load_sweep(tmp_path, _inventory())


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    depth = LIMITS.max_depth + 5
    err = _error(tmp_path, GOOD + "description: " + "[" * depth + "]" * depth + "\n")
    assert f"nested deeper than {LIMITS.max_depth} levels" in str(err) and err.line == 5


def test_a_second_document_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "---\n" + GOOD)
    assert "one YAML document per file" in str(err) and err.line == 5


def test_duplicate_check_on_a_long_list_is_linear(tmp_path: Path) -> None:
    """40,000 entries: the old list.count() check made this 1.6 billion comparisons."""
    body = GOOD.replace("targets: [cpu]", "targets: [" + ", ".join(["cpu"] * 40_000) + "]")
    err = _error(tmp_path, body)
    _located(err, 4, "targets")
    assert "duplicate entries: cpu" in str(err)


# -- the job cap ---------------------------------------------------------------------------------------------------

BIG = GOOD.replace("precisions: [fp32]", "precisions: [fp32, int8]") + (
    "batch_sizes: [" + ", ".join(str(b) for b in range(1, 101)) + "]\n"
    "scenarios: [SingleStream, MultiStream, Server, Offline]\nrepeats: 20\n"
)


def test_the_job_cap_says_how_many_and_how_to_raise_it(tmp_path: Path) -> None:
    err = _error(tmp_path, BIG)
    planned = 2 * 100 * (1 + 4 * 20)
    assert planned > DEFAULT_MAX_JOBS
    _located(err, 5, "batch_sizes")  # the longest list: the one most likely to be cut
    assert f"would plan {planned:,} jobs" in str(err) and f"cap of {DEFAULT_MAX_JOBS:,}" in str(err)
    assert f"--max-jobs {planned}" in str(err) and "FARM_MAX_JOBS" in str(err)


def test_the_job_cap_is_settable(tmp_path: Path) -> None:
    loaded = load_sweep(write_sweep(tmp_path, BIG), _inventory(), max_jobs=16_200)
    assert len(expand(loaded.spec)) == 16_200
    err = _error(tmp_path, GOOD + "repeats: 3\n", max_jobs=3)
    assert "would plan 4 jobs" in str(err)


def test_planned_job_count_matches_expand(tmp_path: Path) -> None:
    inventory = load_inventory(load_settings().inventory_dir)
    precisions_of = {t: bt.precisions for t, bt in inventory.board_types.items()}
    bodies = [
        GOOD,
        BIG.replace("repeats: 20", "repeats: 1"),
        GOOD + "stability: {min_repeats: 4, max_repeats: 8}\nthermal: {duration_s: 10}\n",
    ]
    for body in bodies:
        spec = parse_sweep(body, "s.yaml", tmp_path, inventory, max_jobs=10**6).spec
        assert planned_job_count(spec, precisions_of) == len(expand(spec, precisions_of))


# -- paths -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["/", "/proc", "/proc/self", "/sys", "/dev", "/usr", "/etc"])
def test_system_folders_are_refused_as_datasets_without_a_walk(tmp_path: Path, folder: str) -> None:
    err = _error(tmp_path, GOOD + f"dataset: {folder}\n")
    _located(err, 5, "dataset.path")
    assert "not a dataset" in str(err)
    cal = _error(tmp_path, GOOD + f"quantization: {{calibration_dataset: {folder}}}\n")
    _located(cal, 5, "quantization.calibration_dataset.path")
    assert str(cal.reason).startswith("calibration dataset: ")


def test_unusable_paths_are_located_not_raised(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "dataset: ~no-such-user-here/images\n")
    _located(err, 5, "dataset.path")
    assert "no such user" in str(err)
    body = GOOD.replace("models: [resnet18]", "models:\n  - {name: m, onnx: " + "a" * 300 + "/m.onnx}")
    err = _error(tmp_path, body)  # ENAMETOOLONG from stat: a message, not an OSError
    assert err.field == "models[0].onnx" and "cannot look at" in str(err)
    body = GOOD.replace("models: [resnet18]", "models:\n  - {name: m, onnx: /dev/null}")
    assert "not a regular file" in str(_error(tmp_path, body))


def _image_folder(root: Path, classes: int, per_class: int) -> None:
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (4, 4)).save(root / f"c{c}" / f"{i}.png")


def test_dataset_scan_is_bounded_in_entries_and_depth(tmp_path: Path) -> None:
    _image_folder(tmp_path / "ds", 2, 3)
    assert len(scan(tmp_path / "ds").files) == 6
    with pytest.raises(DatasetError, match="more than 5 entries"):
        scan(tmp_path / "ds", max_entries=5)
    deep = tmp_path / "ds" / "c0" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(deep / "x.png")
    with pytest.raises(DatasetError, match="nests deeper than 2 folders"):
        scan(tmp_path / "ds", max_depth=2)
    assert len(scan(tmp_path / "ds").files) == 7


def test_dataset_scan_keeps_rglobs_order_and_skips_symlinked_folders_inside_a_class(tmp_path: Path) -> None:
    _image_folder(tmp_path / "ds", 2, 2)
    (tmp_path / "ds" / "c1" / "sub").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "ds" / "c1" / "sub" / "0.png")
    (tmp_path / "ds" / "c1" / "loop").symlink_to(tmp_path / "ds")  # a loop rglob did not follow either
    folder = scan(tmp_path / "ds")
    expected = []
    for label, name in enumerate(["c0", "c1"]):
        for p in sorted((tmp_path / "ds" / name).rglob("*")):
            if p.is_file():
                expected.append((str(p.relative_to(tmp_path / "ds")), label))
    assert list(folder.files) == expected


def test_an_image_too_large_to_decode_is_refused_before_decoding(tmp_path: Path) -> None:
    from farm.datasets.imagefolder import check

    (tmp_path / "ds" / "c0").mkdir(parents=True)
    Image.new("1", (8000, 8000)).save(tmp_path / "ds" / "c0" / "big.png")  # 64 Mpx, a few KB on disk
    with pytest.raises(DatasetError, match="more than 50,000,000 pixels"):
        check(tmp_path / "ds")


def test_plain_scalars_read_as_yaml_reads_them() -> None:
    """The builder's shortcuts (plain decimals, memoised scalars) agree with YAML 1.1."""
    text = "a: 12\nb: 012\nc: 1_000\nd: 1²\ne: 1١\nf: 10:20\ng: 0x1F\nh: yes\ni: ~\nj: 12\nk: '12'\n"
    value, _ = load_with_lines(text, "t.yaml")
    assert value == {
        "a": 12, "b": 10, "c": 1000, "d": "1²", "e": "1١", "f": 620, "g": 31, "h": True, "i": None, "j": 12,
        "k": "12",
    }  # fmt: skip


def test_a_sweep_file_whose_name_is_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"sweep-\xff.yaml")  # how Python hands a non-UTF-8 argv or file name over
    (tmp_path / name).write_text(GOOD)
    with pytest.raises(SweepError, match="not valid UTF-8: rename it") as info:
        load_sweep(tmp_path / name, _inventory())
    assert "\\udcff" in str(info.value)
