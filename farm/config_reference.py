"""The settings' reference: what each setting does and its default in words, and docs/configuration.md's table
printed from the model (:func:`reference_table`), so the docs cannot drift from the code.

Apart from the model because only the docs (and `farm config`'s help) read these words; the running farm
never does. farm.config re-exports every name.
"""

from __future__ import annotations

import math
from typing import Any

from farm.config_model import EXPECTED, PATH_FIELDS, Settings, env_name, file_key

#: What each setting does: docs/configuration.md's table is printed from this (:func:`reference_table`).
DESCRIPTIONS = {
    "data_dir": "where the SQLite database and the artifact store live",
    "db_url": "the results database (SQLAlchemy URL)",
    "broker_url": "the Celery broker; unset: tasks run in-process, no broker needed",
    "artifact_dir": "the content-addressed artifact store, shared by workers",
    "inventory_dir": "the inventory directory (board-type catalog, lab files)",
    "lab": "the lab file: a name in the inventory directory, or a path",
    "alerts": "the alerts' notification channels file (docs/notify.md)",
    "lab_sshd": "the OpenSSH server the virtual lab runs",
    "containers_dir": "this machine's podman image store and containers.conf (the compile image, a lab's "
    "container compile host)",
    "containers_storage": "podman's storage driver there; auto: overlay where the kernel has it (about 5x "
    "faster per compile), else vfs (works everywhere)",
    "board": "set by `farm worker --board NAME`: the one board this worker drives",
    "boards": "set by `farm worker --board A --board B`: the boards a worker host drives",
    "boards_per_worker": "how many boards `farm fleet up` gives one worker process",
    "health_interval_s": "how often a board worker re-checks its board",
    "agent_timeout_margin_s": "an agent run is killed after 4 x min_duration + this",
    "bad_cooldown_s": "a board that failed a job is not re-checked for this long",
    "visibility_timeout_s": "Redis redelivers a job whose worker died after this",
    "max_jobs": "the most jobs one sweep may plan",
    "lease_s": "a running job's lease (farm/leases.py)",
    "reconcile_s": "Celery beat runs the reconciler this often",
    "schedule_refresh_s": "Celery beat re-reads the schedules table this often",
    "flap_failures": "failed checks in a row before a board goes bad",
    "min_free_mb": "free space a board needs where artifacts go",
}

#: Defaults that are not a plain value of the field (the others are read from the model).
DEFAULT_TEXT = {
    "data_dir": "the user's data dir (platformdirs; `~/.local/share/farm` on Linux)",
    "db_url": "`sqlite:///<data dir>/farm.db`",
    "broker_url": "unset",
    "artifact_dir": "`<data dir>/artifacts`",
    "inventory_dir": "the built-in inventory (`farm/inventory_data`; `inventory/` in a checkout)",
    "lab": "`local.yaml`",
    "alerts": "`alerts.yaml` in the inventory directory; if absent too, the terminal",
    "lab_sshd": "`/usr/sbin/sshd`",
    "containers_dir": "`containers` in the user's cache dir (`~/.cache/farm/containers` on Linux)",
    "board": "unset",
    "boards": "unset",
}

#: Extra words for the docs' table where the file takes more than the variable does.
_FILE_NOTES = {
    "boards": '; in farm.toml also an array, `["A", "B"]`',
    "lab": "; in farm.toml too, a name is looked up in the inventory directory",
    "db_url": "; in farm.toml a relative sqlite:/// file is relative to the file's folder",
    **{name: "; in farm.toml relative to the file's folder" for name in PATH_FIELDS},
}


def reference_table() -> str:
    """docs/configuration.md's table of settings, from the model: run
    ``python -c 'from farm.config import reference_table; print(reference_table())'`` and paste it."""
    rows = [
        "| key in farm.toml | variable | value | default | what it is |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, info in Settings.model_fields.items():
        default = DEFAULT_TEXT.get(name)
        if default is None:
            default = f"`{number_text(info.default)}`"
        value = EXPECTED[name] + _FILE_NOTES.get(name, "")
        rows.append(
            f"| `{file_key(name)}` | `{env_name(name)}` | {value} | {default} | {DESCRIPTIONS[name]} |"
        )
    return "\n".join(rows)


def number_text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)
