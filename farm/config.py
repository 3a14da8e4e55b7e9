"""Settings from the environment, so the same code runs embedded (defaults) or distributed.

FARM_DATA_DIR   where the SQLite database and the artifact store live (default: the user's data dir)
FARM_DB_URL     SQLAlchemy URL (default: sqlite:///<data dir>/farm.db)
FARM_BROKER_URL Celery broker (unset: tasks run in-process, no broker needed)
FARM_ARTIFACT_DIR content-addressed artifact store (default: <data dir>/artifacts); shared by workers
FARM_INVENTORY  inventory directory (default: the built-in one shipped in the package, farm/inventory_data,
                which in a checkout is the repository's inventory/)
FARM_LAB        lab file in it (default: local.yaml)
FARM_BOARD      set by `farm worker --board NAME`: the one board this worker drives
FARM_HEALTH_INTERVAL_S  how often a board worker re-checks its board (default 300)
FARM_BAD_COOLDOWN_S     a board that failed a job is not re-checked for this long (default 600)
FARM_AGENT_TIMEOUT_MARGIN_S  an agent run is killed after 4 x min_duration + this (default 120)
FARM_VISIBILITY_TIMEOUT_S  Redis redelivers a job whose worker died after this (default 7400)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs

#: The folder above the package: the checkout when running from one. Only the git sha in provenance and the
#: tests use it; run-time data is found through the package (an installed wheel has no checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The package's copy of the built-in inventory (board-type catalog, local.yaml, the virtual lab template).
#: In a checkout farm/inventory_data is a symlink to inventory/, so there is one source of truth; a wheel
#: or sdist holds real copies of those files (setuptools follows the link when it builds them).
INVENTORY_PACKAGE_DIR = "inventory_data"


def builtin_inventory_dir() -> Path:
    """The built-in inventory, found through the package; resolved, so a checkout names inventory/ itself.

    farm runs from a regular (unzipped) install: the agent, the dashboard and this folder are used as
    files, so the package's resources are plain paths."""
    return Path(str(resources.files("farm") / INVENTORY_PACKAGE_DIR)).resolve()


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str
    broker_url: str | None
    artifact_dir: Path
    inventory_dir: Path
    board: str | None = None
    health_interval_s: float = 300.0
    agent_timeout_margin_s: float = 120.0
    bad_cooldown_s: float = 600.0

    @property
    def embedded(self) -> bool:
        """No broker: tasks run in-process (Celery eager mode)."""
        return not self.broker_url


def load_settings(db_url: str | None = None) -> Settings:
    data_dir = Path(os.environ.get("FARM_DATA_DIR") or platformdirs.user_data_dir("farm")).expanduser()
    url = db_url or os.environ.get("FARM_DB_URL") or f"sqlite:///{data_dir / 'farm.db'}"
    artifact_dir = Path(os.environ.get("FARM_ARTIFACT_DIR") or data_dir / "artifacts").expanduser()
    inventory = Path(os.environ.get("FARM_INVENTORY") or builtin_inventory_dir()).expanduser()
    return Settings(
        data_dir=data_dir,
        db_url=url,
        broker_url=os.environ.get("FARM_BROKER_URL") or None,
        artifact_dir=artifact_dir,
        inventory_dir=inventory,
        board=os.environ.get("FARM_BOARD") or None,
        health_interval_s=float(os.environ.get("FARM_HEALTH_INTERVAL_S") or 300),
        agent_timeout_margin_s=float(os.environ.get("FARM_AGENT_TIMEOUT_MARGIN_S") or 120),
        bad_cooldown_s=float(os.environ.get("FARM_BAD_COOLDOWN_S") or 600),
    )
