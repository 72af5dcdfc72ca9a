"""Workers: the members of a deployment's organization who may act on it, with their role."""

from __future__ import annotations

from typing import Any, Dict, Optional


class Worker:
    def __init__(self, info: Dict[str, Any]) -> None:
        self.user_id = str(info["user_id"])
        self.username: str = info.get("username", "")
        self.role: Optional[str] = info.get("role")

    def __repr__(self) -> str:
        return f"Worker(username={self.username!r}, role={self.role!r})"
