"""Procurement: which board type serves a workload cheapest over its lifetime, how many, and how sure the
farm is, from its own results (docs/procurement.md).

``decide(session, workload, costs) -> Decision`` and ``sensitivity(decision, vary)`` are the API the CLI
(`farm procure`) and the dashboard call; ``workload(...)`` builds a checked question, ``from_catalog`` and
``load_costs`` the prices and economics, ``render_html`` the mailable report.
"""

from farm.procure.costs import BoardCost, Costs, CostsError, Economics, from_catalog, load_costs
from farm.procure.decision import Candidate, Decision, Mix, RuledOut, Verdict
from farm.procure.rank import decide
from farm.procure.report import render_html
from farm.procure.reprice import Sensitivity, cheapest_mix, sensitivity
from farm.procure.workload import ProcureError, Workload, workload

__all__ = [
    "BoardCost",
    "Candidate",
    "Costs",
    "CostsError",
    "Decision",
    "Economics",
    "Mix",
    "ProcureError",
    "RuledOut",
    "Sensitivity",
    "Verdict",
    "Workload",
    "cheapest_mix",
    "decide",
    "from_catalog",
    "load_costs",
    "render_html",
    "sensitivity",
    "workload",
]
