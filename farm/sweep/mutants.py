"""Mutated sweep and lab files: the one generator behind the input fuzz test (tests/farm/test_input_fuzz.py)
and bench/fuzz_sweeps.py, so the benchmark's figure and the test exercise the same inputs.

Three families, each deterministic for a given ``random.Random`` (hypothesis drives one in the test):
structured mutations of a valid file (a field replaced by a hostile value, deleted, duplicated, nested,
made into a long list), raw text mutations (YAML tokens such as aliases, tags, merge keys, NULs and huge
numbers spliced in; slices deleted or repeated) and pathological documents (billion laughs, recursive
aliases, deep nesting, long lists, oversized files, sweeps that plan millions of jobs). The generator is
standard library and PyYAML only and never touches the farm's loaders; ``prepare_workspace`` writes the
files the seeds name (an inventory, a model, an image folder).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SEED_SWEEPS: tuple[str, ...] = (
    "name: ok\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\nbatch_sizes: [1]\n"
    "scenarios: [SingleStream]\n",
    "name: every-field\ndescription: all the sections\nmodels:\n  - resnet18\n  - {name: m2, zoo: mobilenet_v2}\n"
    "precisions: [fp32, int8]\ntargets: [cpu]\nbatch_sizes: [1, 2]\nscenarios: [SingleStream, Offline, Server]\n"
    "quantization: {calibration_samples: 120, method: minmax, per_channel: true, seed: 3}\n"
    "loadgen:\n  min_duration_ms: 500\n  min_query_count: 16\n  max_query_count: 64\n"
    "  target_latency_ms: 5.5\n  server_target_latency_ms: 20\n  server_search_probes: 4\n"
    "stability: {cv_threshold_pct: 2.5, min_repeats: 3, max_repeats: 6}\n"
    "thermal: {duration_s: 30, scenario: Offline, window_s: 10}\n",
    "name: with-dataset\nmodels: [shapes_net]\nprecisions: [fp32]\ntargets: [cpu]\n"
    "dataset:\n  path: shapes\n  preprocessing: {resize: 40, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}\n"
    "quantization: {calibration_dataset: shapes}\n",
    "name: onnx-model\nmodels:\n  - {name: tiny, onnx: tiny.onnx}\nprecisions: [fp32]\ntargets: [cpu]\n"
    "batch_sizes: [1, 4]\nrepeats: 3\n",
)

SEED_LABS: tuple[str, ...] = (
    "boards:\n  - name: local-cpu\n    type: cpu\n    transport: local\n",
    "boards:\n  - name: local-cpu\n    type: cpu\n  - name: node-a\n    type: cpu\n    transport: ssh\n"
    "    serial: SN-1\n    ambient_sensor: /sys/class/hwmon/hwmon3/temp1_input\n    ssh:\n"
    "      host: 127.0.0.2\n      port: 2222\n      user: farm\n      key_file: keys/id_ed25519\n"
    "      known_hosts: keys/known_hosts\n      work_dir: /var/tmp/farm\n"
    "docker_hosts:\n  - name: builder\n    runner: host\n    images: [farm/toolchain:1]\n"
    "    ssh: {host: 127.0.0.3, user: farm, key_file: keys/id_ed25519, known_hosts: keys/known_hosts}\n"
    "pools:\n  cpus: [local-cpu, node-a]\n",
    "boards:\n  - {name: local-cpu, type: cpu}\n  - {name: zcu-1, type: zcu104, emulation: {root: /tmp/farm-emu, "
    "time_scale: 0.5}}\n",
)

# YAML fragments spliced into text: aliases, tags (python/ ones included), merge keys, directives,
# document markers, NULs and escapes, non-finite and huge numbers, unbalanced brackets, odd scalars.
TOKENS: tuple[str, ...] = (
    "&a ",
    "*a",
    "*b",
    "&a [*a]",
    "&b {x: *b}",
    "<<: *a\n",
    "<<: ",
    "<<: [*a, *b]\n",
    "? ",
    ": ",
    "- ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:example.com,2000:\n",
    "!!python/name:os.system ",
    "!!python/object/apply:os.system ['true'] ",
    "!!python/tuple [1] ",
    "!!int ",
    "!!int abc",
    "!!bool maybe",
    "!!timestamp x",
    "!!float ",
    "!!str ",
    "!!binary AAAA",
    "!!set ",
    "!!omap ",
    "!!map ",
    "!!seq ",
    "!local ",
    "! ",
    "\x00",
    "\\0",
    '"\\0"',
    '"\\x00"',
    '"\\u0000"',
    '"\\ud800"',
    ".inf",
    "-.inf",
    ".nan",
    "inf",
    "nan",
    "1e999",
    "-1e999",
    "9" * 400,
    "0x" + "f" * 80,
    "1:" * 40 + "1",
    "0b" + "1" * 100,
    "[" * 60,
    "]",
    "{",
    "}",
    "\t",
    "\ufeff",
    "'",
    '"',
    "|\n",
    ">-\n",
    "#",
    "~",
    "null",
    "yes",
    "no",
    "2024-13-45",
    "2024-02-30 25:61:61",
    "/",
    "/proc",
    "/dev/zero",
    "~nobody/x",
    "../" * 30,
    "=",
    "\r",
    "\x1b[31m",
    "\u2028",
    "é",
    "😀",
)


def _deep(n: int) -> Any:
    value: Any = "x"
    for i in range(n):
        value = [value] if i % 2 else {"k": value}
    return value


# Hostile values for a field, built when chosen (some are large).
NASTY: tuple[Callable[[random.Random], Any], ...] = (
    lambda r: None,
    lambda r: True,
    lambda r: 0,
    lambda r: -1,
    lambda r: r.choice([2**31, 2**32, 2**63, 2**64, 10**40]),
    lambda r: r.choice([1e308, -1e308, 5e-324, -0.0, float("inf"), float("-inf"), float("nan")]),
    lambda r: r.choice(["inf", "nan", "-Infinity", "1e999"]),
    lambda r: "",
    lambda r: r.choice(["\x00", "a\x00b", "models\x00", "/tmp/\x00/x"]),
    lambda r: r.choice(
        ["/", "/proc", "/proc/self", "/sys", "/dev", "/dev/zero", "/usr", "/etc", "/root", "//"]
    ),
    lambda r: r.choice(["~", "~nobody/x", "~root", ".", "..", "../" * 40, "a/" * 2000]),
    lambda r: "x" * r.choice([300, 5000, 70000]),
    lambda r: r.choice(["2024-13-45", "2024-01-01", "12:30:45", "0o777", "0x1F", "1_000", "+1", "1.5e3"]),
    lambda r: r.choice(
        ["SingleStream", "Offline", "int8", "fp32", "cpu", "zcu104", "resnet18", "shapes_net"]
    ),
    lambda r: r.choice(["a;rm -rf /", "$(reboot)", "`id`", "--help", "-x", "name with spaces"]),
    lambda r: [],
    lambda r: {},
    lambda r: _deep(r.choice([3, 20, 40, 200])),
    lambda r: list(range(r.choice([50, 3000, 30000]))),
    lambda r: [r.choice([1, 2, "x"]) for _ in range(r.choice([10, 2000]))],
    lambda r: {f"k{i}": i for i in range(r.choice([10, 5000]))},
)

# Whole sections set at the top of a document: values each loader must refuse or accept cleanly.
FIELDS: tuple[tuple[str, Callable[[random.Random], Any]], ...] = (
    (
        "dataset",
        lambda r: r.choice(["/", "/proc", "/sys/class", "/dev", "/dev/zero", "/usr", "~", ".", "shapes"]),
    ),
    ("dataset", lambda r: {"path": r.choice(["shapes", "/proc/self"]), "preprocessing": {"resize": 10**9}}),
    ("quantization", lambda r: {"calibration_dataset": r.choice(["/", "/proc", "shapes", "."])}),
    ("batch_sizes", lambda r: list(range(1, r.choice([40, 300, 5000])))),
    ("batch_sizes", lambda r: [1] * r.choice([2, 20000])),
    ("targets", lambda r: ["cpu"] * r.choice([2, 20000])),
    ("scenarios", lambda r: ["SingleStream", "MultiStream", "Server", "Offline"]),
    ("repeats", lambda r: r.choice([100, 101, 10**12])),
    ("stability", lambda r: {"min_repeats": 100, "max_repeats": 100}),
    ("thermal", lambda r: {"duration_s": r.choice([7200, 1e308, "inf"])}),
    (
        "loadgen",
        lambda r: {
            r.choice(["target_latency_ms", "offline_expected_qps", "min_duration_ms"]): r.choice(
                [1e308, "inf", "nan", 10**30, -1]
            )
        },
    ),
    ("models", lambda r: [{"name": f"m{i}", "zoo": "resnet18"} for i in range(r.choice([3, 500]))]),
    (
        "models",
        lambda r: [
            {
                "name": "x",
                "onnx": r.choice(
                    [
                        "/dev/zero",
                        "/proc/self/mem",
                        "/",
                        "~nobody/m.onnx",
                        "a" * 5000,
                        "/root/m.onnx",
                        "/etc/shadow",
                    ]
                ),
            }
        ],
    ),
    (
        "models",
        lambda r: [
            {"name": "t", "torch": "pkg.mod:Net", "input_shape": [3, 10**9, 2], "checkpoint": "/dev/zero"}
        ],
    ),
    ("boards", lambda r: [{"name": f"b{i}", "type": "cpu"} for i in range(r.choice([2, 3000]))]),
    (
        "boards",
        lambda r: [
            {
                "name": "b",
                "type": "cpu",
                "transport": "ssh",
                "ssh": {
                    "host": r.choice(["$(reboot)", "h", "x" * 300]),
                    "port": r.choice([0, 70000, 22, "22"]),
                    "user": "farm",
                    "key_file": r.choice(["~nobody/k", "k", "\x00"]),
                    "known_hosts": "kh",
                },
            }
        ],
    ),
    ("pools", lambda r: {r.choice(["p", "a b", "x" * 100]): ["local-cpu"] * r.choice([1, 5000])}),
    (
        "board_types",
        lambda r: {
            "cpu": {
                "family": "cpu",
                "toolchain": "t",
                "backend": "b",
                "tdp_w": r.choice([float("inf"), 1e308, -1]),
                "accelerator": {"kind": "cpu", "cores": 10**20},
            }
        },
    ),
)


def example_sweeps() -> list[str]:
    """The bundled examples and the inline seeds: every one is a valid sweep where its models exist."""
    examples = resources.files("farm") / "examples"
    texts = [
        p.read_text() for p in sorted(examples.iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml")
    ]
    return texts + list(SEED_SWEEPS)


def mutate(text: str, rnd: random.Random) -> str:
    """One mutant of ``text``: structured, raw or pathological."""
    roll = rnd.random()
    if roll < 0.45:
        return structured(text, rnd)
    if roll < 0.88:
        return raw(text, rnd)
    return pathological(text, rnd)


def structured(text: str, rnd: random.Random) -> str:
    """Parse, change one to four fields, dump; sometimes anchors and aliases are spliced in after."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return raw(text, rnd)
    for _ in range(rnd.randint(1, 4)):
        data = _mutate_tree(data, rnd)
    out = yaml.safe_dump(
        data,
        sort_keys=False,
        allow_unicode=rnd.random() < 0.5,
        default_flow_style=rnd.choice([None, True, False]),
    )
    return _aliasify(out, rnd) if rnd.random() < 0.3 else out


def raw(text: str, rnd: random.Random) -> str:
    """One to six text edits: a token spliced in, a slice deleted or repeated, a character replaced."""
    for _ in range(rnd.randint(1, 6)):
        at = rnd.randint(0, len(text))
        op = rnd.random()
        if op < 0.55:
            text = text[:at] + rnd.choice(TOKENS) + text[at:]
        elif op < 0.7:
            text = text[:at] + text[at + rnd.randint(1, 40) :]
        elif op < 0.85:
            end = min(len(text), at + rnd.randint(1, 200))
            text = text[:end] + text[at:end] * rnd.randint(1, 50) + text[end:]
        else:
            char = chr(rnd.choice([0, 1, 9, 10, 13, 27, 32, 35, 38, 42, 58, 91, 123, 0xFEFF, 0x1F600]))
            text = text[:at] + char + text[at + 1 :]
    return text


def pathological(text: str, rnd: random.Random) -> str:
    """A document built to exhaust a naive loader, on its own or appended to a valid one."""
    kind = rnd.randrange(9)
    if kind == 0:  # billion laughs
        levels, width = rnd.randint(3, 12), rnd.randint(2, 10)
        lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
        lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
        doc = "\n".join(lines) + "\n"
        return (
            doc + text
            if rnd.random() < 0.5
            else text.replace("models:", f"x: *l{levels - 1}\nmodels:", 1) + doc
        )
    if kind == 1:  # recursive aliases, plain and through a merge key
        return text + rnd.choice(
            ["zz: &r [*r]\n", "zz: &r {a: *r}\n", "zz: &r {<<: *r}\n", "models: &r [*r]\n"]
        )
    if kind == 2:  # deep nesting, flow or block
        n = rnd.choice([33, 100, 1000, 20000])
        if rnd.random() < 0.5:
            return text + "deep: " + "[" * n + "]" * n + "\n"
        return (
            text + "".join("  " * i + f"k{i}:\n" for i in range(min(n, 2000))) + "  " * min(n, 2000) + "x\n"
        )
    if kind == 3:  # a long list
        n = rnd.choice([1000, 50000, 250000])
        return text + "long: [" + ", ".join(str(i % 7) for i in range(n)) + "]\n"
    if kind == 4:  # a huge number
        return (
            text
            + f"{rnd.choice(['repeats', 'seed', 'port'])}: "
            + "9" * rnd.choice([100, 5000, 100000])
            + "\n"
        )
    if kind == 5:  # larger than any sweep should be
        return text + ("# padding " + "x" * 100 + "\n") * rnd.choice([100, 11000])
    if kind == 6:  # many keys
        return text + "".join(f"key{i}: {i}\n" for i in range(rnd.choice([1000, 60000])))
    if kind == 7:  # a sweep that plans hundreds of thousands of jobs
        data = yaml.safe_load(text)
        data = data if isinstance(data, dict) else {}
        data["batch_sizes"] = list(range(1, rnd.choice([30, 500])))
        data["scenarios"] = ["SingleStream", "MultiStream", "Server", "Offline"]
        data["repeats"] = rnd.choice([1, 100])
        return yaml.safe_dump(data, sort_keys=False)
    # alias-heavy but legal: one anchor used many times
    return _aliasify(text, rnd, uses=rnd.choice([10, 1000, 100000]))


def _aliasify(text: str, rnd: random.Random, uses: int = 1) -> str:
    """An anchor on one value and aliases to it on others (maybe inside it: a recursive alias)."""
    lines = text.split("\n")
    spots = [i for i, line in enumerate(lines) if ": " in line]
    if not spots:
        return text
    first = rnd.choice(spots)
    head, _, value = lines[first].partition(": ")
    lines[first] = f"{head}: &a {value}"
    for _ in range(min(uses, 3)):
        target = rnd.choice(spots)
        if target != first:
            lines[target] = lines[target].partition(": ")[0] + ": *a"
    if uses > 3:
        lines.append("many: [" + ", ".join(["*a"] * uses) + "]")
    return "\n".join(lines)


def _mutate_tree(data: Any, rnd: random.Random) -> Any:
    """One change somewhere in a parsed document."""
    if rnd.random() < 0.25 or not isinstance(data, dict | list):
        if isinstance(data, dict):
            key, make = rnd.choice(FIELDS)
            data[key] = make(rnd)
            return data
        return rnd.choice(NASTY)(rnd) if rnd.random() < 0.5 else data
    parents: list[Any] = []
    stack = [data]
    while stack and len(parents) < 500:
        node = stack.pop()
        if isinstance(node, dict | list):
            parents.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    parent = rnd.choice(parents)
    keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
    op = rnd.random()
    if not keys or op < 0.1:
        if isinstance(parent, dict):
            parent[rnd.choice(["unknown", "zoo", "onnx", "<<", "name", 1, None])] = rnd.choice(NASTY)(rnd)
        else:
            parent.append(rnd.choice(NASTY)(rnd))
        return data
    key = rnd.choice(keys)
    if op < 0.55:
        parent[key] = rnd.choice(NASTY)(rnd)
    elif op < 0.65:
        del parent[key]
    elif op < 0.75:
        parent[key] = [parent[key]] * rnd.choice([2, 100, 20000])
    elif op < 0.85:
        value: Any = parent[key]
        for _ in range(rnd.choice([1, 5, 40])):
            value = [value]
        parent[key] = value
    else:
        old = parent[key]
        parent[key] = str(old) if not isinstance(old, str) else (int(old) if old.isdigit() else [old])
    return data


def lab_with_every_type() -> str:
    """A lab with one board of every catalog type (the FPGA and GPU ones emulated): the bundled demo's
    targets all exist in it, so its mutants reach the checks past the targets."""
    boards = ["  - {name: local-cpu, type: cpu}", "  - {name: gpu-1, type: gpu}"]
    for kind in ("pynq-z2", "ultra96-v2", "kv260", "zcu104", "u50", "vck190", "jetson-agx-xavier"):
        boards.append(f"  - {{name: {kind}-1, type: {kind}, emulation: {{root: /tmp/farm-fuzz-emu}}}}")
    return "boards:\n" + "\n".join(boards) + "\n"


def prepare_workspace(folder: Path) -> Path:
    """Files the seeds name, in ``folder``: an inventory (the built-in catalog, ``lab.yaml`` with every
    type), ``tiny.onnx`` and ``shapes/`` (an image folder of two classes). Returns the inventory folder."""
    from PIL import Image

    from farm.config import builtin_inventory_dir
    from farm.zoo.tiny import tiny_model

    inventory = folder / "inventory"
    inventory.mkdir(parents=True, exist_ok=True)
    (inventory / "board-types.yaml").write_text((builtin_inventory_dir() / "board-types.yaml").read_text())
    (inventory / "lab.yaml").write_text(lab_with_every_type())
    import onnx

    onnx.save(tiny_model(batch="N"), folder / "tiny.onnx")
    for label, colour in (("circle", (255, 0, 0)), ("square", (0, 0, 255))):
        (folder / "shapes" / label).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.new("RGB", (8, 8), colour).save(folder / "shapes" / label / f"{i}.png")
    return inventory
