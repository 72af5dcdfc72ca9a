"""Projects: where continuous training runs the experiments that train a deployment's next model versions."""

from __future__ import annotations

from typing import Any, Dict


class Project:
    def __init__(self, info: Dict[str, Any]) -> None:
        self.id = str(info["id"])
        self.name: str = info.get("name", "")
        self.organization_id = str(info["organization_id"]) if info.get("organization_id") is not None else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Project(name={self.name!r}, id={self.id!r})"
