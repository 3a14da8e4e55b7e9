"""Fuzz (issue 10): nothing a user types gets anything out of the sweep and inventory loaders but the
farm's own errors, and no input takes more than a bounded time or memory.

Inputs: mutants of valid sweep and lab files (farm.sweep.mutants, the generator bench/fuzz_sweeps.py
counts with), YAML token soups, raw bytes, and random alias graphs. Each example runs twice: once timed
(CPU time of the thread, and wall time with a looser bound) and once under tracemalloc, because tracing
slows allocation-heavy code several times over. The bounds are far above what any input costs now: they catch runaway behaviour (minutes,
gigabytes), not a slow machine. Hypothesis picks a new seed each run and prints how to reproduce a
failure (``@reproduce_failure`` blob, or ``--hypothesis-seed``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm.errors import FarmError
from farm.inventory import Inventory, load_inventory
from farm.sweep import mutants
from farm.sweep.load import load_sweep
from farm.sweep.yaml_lines import load_with_lines

BOUND_CPU_S = 2.0  # CPU time of the test's thread: other processes on a shared machine do not inflate it
BOUND_WALL_S = 10.0  # wall time: a case that blocks (a FIFO, a device) without using the CPU
BOUND_BYTES = 200 * 2**20

FUZZ = settings(
    max_examples=150,
    deadline=None,  # the bound below is ours, measured without hypothesis's own overhead
    derandomize=False,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

SEEDS = mutants.example_sweeps()
_names = itertools.count()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Inventory]:
    """A folder with what the seeds name (tiny.onnx, shapes/) and an inventory with every board type."""
    folder = tmp_path_factory.mktemp("fuzz")
    inventory_dir = mutants.prepare_workspace(folder)
    return folder, inventory_dir, load_inventory(inventory_dir, "lab.yaml")


def _only_farm_errors(call: Callable[[], object]) -> None:
    """Any exception but a FarmError propagates, and fails the example with its traceback."""
    with contextlib.suppress(FarmError):
        call()


def _bounded(call: Callable[[], object]) -> None:
    start, cpu_start = time.perf_counter(), time.thread_time()
    _only_farm_errors(call)
    elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    tracemalloc.start()
    try:
        _only_farm_errors(call)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cpu < BOUND_CPU_S, f"took {cpu:.2f} s of CPU ({elapsed:.2f} s wall)"
    assert elapsed < BOUND_WALL_S, f"took {elapsed:.2f} s ({cpu:.2f} s of CPU)"
    assert peak < BOUND_BYTES, f"peaked at {peak / 2**20:.0f} MiB"


def _sweep_file(folder: Path, data: bytes) -> Path:
    path = folder / f"sweep-{next(_names)}.yaml"
    path.write_bytes(data)
    return path


def _lab_file(inventory_dir: Path, data: bytes) -> str:
    """A new name each time: load_inventory caches by (path, mtime, size)."""
    name = f"lab-{next(_names)}.yaml"
    (inventory_dir / name).write_bytes(data)
    return name


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # an unpaired surrogate becomes bytes that are not UTF-8


@settings(FUZZ, max_examples=200)
@given(seed=st.sampled_from(SEEDS), rnd=st.randoms(use_true_random=False))
def test_mutated_sweeps(workspace, seed: str, rnd) -> None:
    folder, _, inventory = workspace
    path = _sweep_file(folder, _encode(mutants.mutate(seed, rnd)))
    _bounded(lambda: load_sweep(path, inventory))


TOKEN = st.sampled_from(mutants.TOKENS) | st.text(max_size=12)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(min_value=0), TOKEN), min_size=1, max_size=8),
)
def test_token_soup_sweeps(workspace, seed: str, edits: list[tuple[int, str]]) -> None:
    folder, _, inventory = workspace
    text = seed
    for at, token in edits:
        at %= len(text) + 1
        text = text[:at] + token + text[at:]
    path = _sweep_file(folder, _encode(text))
    _bounded(lambda: load_sweep(path, inventory))


@FUZZ
@given(prefix=st.sampled_from([b"", *(s.encode() for s in SEEDS)]), noise=st.binary(max_size=512))
def test_raw_bytes_sweeps(workspace, prefix: bytes, noise: bytes) -> None:
    folder, _, inventory = workspace
    path = _sweep_file(folder, prefix[: len(prefix) // 2] + noise + prefix[len(prefix) // 2 :])
    _bounded(lambda: load_sweep(path, inventory))


@settings(FUZZ, max_examples=80)
@given(seed=st.sampled_from(mutants.SEED_LABS), rnd=st.randoms(use_true_random=False))
def test_mutated_labs(workspace, seed: str, rnd) -> None:
    _, inventory_dir, _ = workspace
    name = _lab_file(inventory_dir, _encode(mutants.mutate(seed, rnd)))
    _bounded(lambda: load_inventory(inventory_dir, name))


@settings(FUZZ, max_examples=30)
@given(rnd=st.randoms(use_true_random=False))
def test_mutated_catalogs(tmp_path_factory: pytest.TempPathFactory, workspace, rnd) -> None:
    _, inventory_dir, _ = workspace
    folder = tmp_path_factory.mktemp("catalog")
    catalog = (inventory_dir / "board-types.yaml").read_text()
    (folder / "board-types.yaml").write_bytes(_encode(mutants.mutate(catalog, rnd)))
    (folder / "lab.yaml").write_text(mutants.lab_with_every_type())
    _bounded(lambda: load_inventory(folder, "lab.yaml"))


# Random documents of anchors and aliases: an alias may name a value before it (fine), itself or a value
# that contains it (recursive), one not yet defined, or one that nests many others (an expansion bomb).
@st.composite
def alias_graphs(draw) -> str:
    count = draw(st.integers(min_value=1, max_value=12))
    lines = []
    for i in range(count):
        refs = draw(st.lists(st.integers(min_value=0, max_value=count), max_size=10))
        items = [f"*a{r}" if r != count else "x" for r in refs]
        open_, close = draw(st.sampled_from([("[", "]"), ("{<<: [", "]}")]))
        if open_.startswith("{") and items:
            body = open_ + ", ".join(items) + close
        else:
            body = "[" + ", ".join(items) + "]"
        lines.append(f"k{i}: &a{i} {body}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(doc=alias_graphs())
def test_alias_graphs(doc: str) -> None:
    _bounded(lambda: load_with_lines(doc, "graph.yaml"))


# The oracle: any plain document PyYAML itself reads safely (and that is within the bounds) loads to the
# very same value here, aliases included.
PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(
            st.text(st.characters(codec="ascii", blacklist_characters="\x00"), max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@FUZZ
@given(data=PLAIN, flow=st.sampled_from([None, True, False]), share=st.booleans())
def test_plain_documents_load_as_pyyaml_reads_them(data, flow, share: bool) -> None:
    if share:
        data = {"a": data, "b": data}  # PyYAML writes the shared value once, with an anchor and an alias
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    value, lines = load_with_lines(text, "plain.yaml")
    expected = yaml.safe_load(text)
    assert value == expected or _same_with_nan(value, expected)
    assert lines[()] >= 1


def _same_with_nan(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isnan(a) and math.isnan(b)
    return False


def test_the_seeds_are_valid(workspace) -> None:
    """Mutants of valid files reach every check past the schema (targets, job cap, models, datasets)."""
    folder, inventory_dir, inventory = workspace
    for seed in SEEDS:
        load_sweep(_sweep_file(folder, seed.encode()), inventory)
    for lab in mutants.SEED_LABS:
        assert load_inventory(inventory_dir, _lab_file(inventory_dir, lab.encode())).boards
