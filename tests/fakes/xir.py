"""FAKE ``xir`` (Xilinx Intermediate Representation Python bindings), for tests only.

Only what the agent's vart_dpu backend uses exists, with the real signatures: ``xir.Graph.deserialize``,
``Graph.get_root_subgraph`` / ``get_name``, ``Subgraph.is_leaf`` (a property), ``toposort_child_subgraph``,
``has_attr`` / ``get_attr``, ``get_name``, and ``xir.Tensor`` (``name``, ``dims``, ``has_attr`` /
``get_attr``).

A "fake xmodel" is a JSON file::

    {"fake_xmodel": 1, "name": "resnet_tiny",
     "subgraphs": [                                   # the root's children, in topological order
        {"name": "subgraph_input", "device": "USER"},
        {"name": "subgraph_conv1", "device": "DPU", "dpu_fingerprint": 72339069031015431,
         "kernel": "mean_hw",                         # what the fake DPU computes (vart.py)
         "inputs": [{"name": "x", "dims": [1, 8, 8, 3], "fix_point": 6}],
         "outputs": [{"name": "y", "dims": [1, 3], "fix_point": 5}]},
        {"name": "subgraph_softmax", "device": "CPU"}]}
"""

from __future__ import annotations

import json

__version__ = "0.0-fake"
FAKE = True


class Tensor:
    def __init__(self, spec):
        self.name = spec["name"]
        self.dims = [int(d) for d in spec["dims"]]
        self.dtype = "xint8"
        self._attrs = {"fix_point": int(spec["fix_point"])}

    @property
    def ndim(self):
        return len(self.dims)

    def has_attr(self, name):
        return name in self._attrs

    def get_attr(self, name):
        if name not in self._attrs:
            raise ValueError(f"tensor {self.name} has no attribute {name}")
        return self._attrs[name]


class Subgraph:
    def __init__(self, spec, children=None):
        self._name = spec.get("name", "root")
        self._attrs = dict(
            (k, v) for k, v in spec.items() if k not in ("name", "inputs", "outputs", "subgraphs")
        )
        self._children = children or []
        self.inputs = [Tensor(t) for t in spec.get("inputs", [])]
        self.outputs = [Tensor(t) for t in spec.get("outputs", [])]

    @property
    def is_leaf(self):
        return not self._children

    def get_name(self):
        return self._name

    def has_attr(self, name):
        return name in self._attrs

    def get_attr(self, name):
        if name not in self._attrs:
            raise ValueError(f"subgraph {self._name} has no attribute {name}")
        return self._attrs[name]

    def toposort_child_subgraph(self):
        return list(self._children)

    def get_children(self):
        return set(self._children)


class Graph:
    def __init__(self, doc):
        self._name = doc.get("name", "graph")
        children = [Subgraph(s) for s in doc.get("subgraphs", [])]
        self._root = Subgraph({"name": "root"}, children)

    @staticmethod
    def deserialize(path):
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RuntimeError(f"[XIR_PROTOBUF_LOAD_FAILED] failed to parse {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("fake_xmodel") != 1:
            raise RuntimeError(f"[XIR_PROTOBUF_LOAD_FAILED] {path} is not an xmodel")
        return Graph(doc)

    def get_name(self):
        return self._name

    def get_root_subgraph(self):
        return self._root
