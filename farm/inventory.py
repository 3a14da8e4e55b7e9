"""Inventory: board-type catalog and lab boards, pure data, validated with located errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from farm.errors import SweepError
from farm.sweep.yaml_lines import dotted, line_for, load_with_lines

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class BoardType(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: Literal["fpga", "gpu", "cpu"]
    description: str = ""
    toolchain: str
    backend: str
    source: Literal["measured", "emulated"] = "measured"


class Board(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    type: str = Field(pattern=NAME)
    transport: Literal["local"] = "local"


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    board_types: dict[str, BoardType]


class Lab(BaseModel):
    model_config = ConfigDict(extra="forbid")
    boards: list[Board] = Field(min_length=1)


@dataclass(frozen=True)
class Inventory:
    board_types: dict[str, BoardType]
    boards: list[Board]

    def targets(self) -> list[str]:
        """Board types a sweep may name: those with at least one board in the lab."""
        return sorted({b.type for b in self.boards})

    def boards_of(self, board_type: str) -> list[Board]:
        return [b for b in self.boards if b.type == board_type]


def _load(path: Path, model: type[BaseModel]) -> BaseModel:
    if not path.is_file():
        raise SweepError("inventory file not found", path=str(path))
    data, lines = load_with_lines(path.read_text(), str(path))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        raise SweepError(err["msg"], path=str(path), line=line_for(lines, loc), field=dotted(loc)) from None


def load_inventory(directory: Path, lab: str | None = None) -> Inventory:
    """Load the catalog and one lab file (FARM_LAB or local.yaml) from an inventory directory."""
    catalog = _load(directory / "board-types.yaml", Catalog)
    lab_path = directory / (lab or os.environ.get("FARM_LAB") or "local.yaml")
    lab_data = _load(lab_path, Lab)
    assert isinstance(catalog, Catalog) and isinstance(lab_data, Lab)
    seen: set[str] = set()
    for i, board in enumerate(lab_data.boards):
        if board.type not in catalog.board_types:
            valid = ", ".join(sorted(catalog.board_types))
            raise SweepError(
                f"unknown board type {board.type!r} (valid: {valid})",
                path=str(lab_path),
                field=f"boards[{i}].type",
            )
        if board.name in seen:
            raise SweepError(
                f"duplicate board name {board.name!r}", path=str(lab_path), field=f"boards[{i}].name"
            )
        seen.add(board.name)
    return Inventory(board_types=catalog.board_types, boards=lab_data.boards)
