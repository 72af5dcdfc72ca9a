"""Datasets and their versions as the platform API describes them, and their exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from loupe_sdk.exceptions import NotFoundError
from loupe_sdk.http import Transport


class DatasetVersion:
    """One version of a dataset: annotated images a feedback loop can fill and a deployment can train on."""

    def __init__(self, transport: Transport, info: Dict[str, Any]) -> None:
        self._transport = transport
        self.id = str(info["id"])
        self.dataset_id = str(info["dataset_id"]) if info.get("dataset_id") is not None else None
        self.dataset_name: str = info.get("dataset_name", "")
        self.version: str = info.get("version", "")
        self.name: str = info.get("name", self.version)
        self.type: str = info.get("type", "")
        # Keys are class ids as JSON strings, as the server sends them: {"1": "car"}.
        self.labels: Dict[str, str] = dict(info.get("labels") or {})
        self.asset_count: Optional[int] = info.get("asset_count")

    def export(self, format: str = "coco", path: Optional[Union[str, Path]] = None) -> Path:
        """Download the version as a zip ("coco" or "yolo") into `path` (a file, or a folder; default: here)."""
        content = self._transport.download(f"/api/dataset/version/{self.id}/export", params={"format": format})
        target = Path(path) if path is not None else Path(".")
        if target.is_dir():
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.dataset_name}-{self.version}-{format}")
            target = target / f"{stem}.zip"
        target.write_bytes(content)
        return target

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatasetVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"DatasetVersion(dataset_name={self.dataset_name!r}, version={self.version!r}, id={self.id!r})"


class Dataset:
    """A dataset of an organization; its versions are fetched when asked for."""

    def __init__(self, transport: Transport, info: Dict[str, Any]) -> None:
        self._transport = transport
        self.id = str(info["id"])
        self.name: str = info.get("name", "")

    def list_versions(self) -> List[DatasetVersion]:
        """The versions, oldest first."""
        answer = self._transport.platform("GET", f"/api/dataset/{self.id}/versions")
        return [DatasetVersion(self._transport, item) for item in answer.get("items") or []]

    def get_version(self, version: str) -> DatasetVersion:
        """Find a version by its name ("v1"), or "latest" (the newest)."""
        versions = self.list_versions()
        found = versions[-1:] if version == "latest" else [v for v in versions if v.version == version]
        if not found:
            raise NotFoundError(f"dataset {self.name!r} has no version {version!r}")
        return found[0]

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, id={self.id!r})"
