"""Review campaigns: a deployment's share of review work, with its tasks."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from loupe_sdk.http import Transport


class ReviewTask:
    """One predicted asset of a campaign, its assignee and its status (TO_DO, TO_REWORK, DONE, SKIPPED)."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self.id: int = info["id"]
        self.predicted_asset_id: str = info["predicted_asset_id"]
        self.status: str = info["status"]
        self.assignee: Optional[str] = info.get("assignee")
        self.skip_reason: str = info.get("skip_reason") or ""
        self.rework_comment: str = info.get("rework_comment") or ""
        self._info = info

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._info)

    def __repr__(self) -> str:
        return f"ReviewTask(id={self.id}, status={self.status!r}, assignee={self.assignee!r})"


class ReviewCampaign:
    def __init__(self, transport: Transport, info: Dict[str, Any]) -> None:
        self._transport = transport
        self._apply(info)

    def _apply(self, info: Dict[str, Any]) -> None:
        self.id = str(info["id"])
        self.deployment_id = str(info["deployment_id"])
        self.description: str = info.get("description") or ""
        self.instructions_text: str = info.get("instructions_text") or ""
        self.end_date: Optional[str] = info.get("end_date")
        self.auto_add_new_assets: bool = bool(info.get("auto_add_new_assets"))
        self.auto_close_on_completion: bool = bool(info.get("auto_close_on_completion"))
        self.status: str = info.get("status", "")
        self.progress: Dict[str, Any] = info.get("progress") or {}
        self._info = info

    @property
    def _path(self) -> str:
        return f"/api/campaigns/review/{self.id}"

    def refresh(self) -> "ReviewCampaign":
        self._apply(self._transport.platform("GET", self._path))
        return self

    def add_assets(self, q: Optional[str] = None, predicted_asset_ids: Optional[List[str]] = None) -> int:
        """Add the deployment's predicted assets matching the queue search `q` (or these ids); how many were new."""
        body: Dict[str, Any] = {}
        if q is not None:
            body["q"] = q
        if predicted_asset_ids is not None:
            body["predicted_asset_ids"] = [str(i) for i in predicted_asset_ids]
        answer = self._transport.platform("POST", self._path + "/assets", json=body)
        self._apply(answer)
        return int(answer.get("added", 0))

    def list_tasks(self, status: Optional[str] = None, assignee: Optional[str] = None) -> List[ReviewTask]:
        params = {"status": getattr(status, "value", status), "assignee": assignee}
        items = self._transport.platform("GET", self._path + "/tasks", params=params)["items"]
        return [ReviewTask(item) for item in items]

    def assign(self, assignees: List[str], mode: str = "round_robin", q: Optional[str] = None) -> int:
        """Give the open, unassigned tasks (matching `q`, when given) to these usernames; how many were assigned."""
        body: Dict[str, Any] = {"assignees": list(assignees), "mode": mode}
        if q is not None:
            body["q"] = q
        return int(self._transport.platform("POST", self._path + "/assign", json=body)["assigned"])

    def next_task(self) -> Optional[ReviewTask]:
        """The caller's next task (their own, or one taken from the pool); None when none is left."""
        task = self._transport.platform("POST", self._path + "/next", json={})["task"]
        return ReviewTask(task) if task else None

    def close(self) -> None:
        self._apply(self._transport.platform("POST", self._path + "/close", json={}))

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._info)

    def __repr__(self) -> str:
        return f"ReviewCampaign(description={self.description!r}, status={self.status!r}, id={self.id!r})"
