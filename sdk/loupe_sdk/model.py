"""Models and model versions as the platform API describes them."""

from __future__ import annotations

from typing import Any, Dict, List, Union

from loupe_sdk.exceptions import NotFoundError


class ModelVersion:
    """One trained version of a model: what a deployment runs as champion or shadow."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self.id = str(info["id"])
        self.name: str = info.get("name", "")
        self.version: int = info.get("version", 0)
        self.model_id = str(info["model_id"]) if info.get("model_id") is not None else None
        self.model_name: str = info.get("model_name", "")
        self.type: str = info.get("type", "")
        # Keys are class ids as JSON strings, as the server sends them: {"1": "car"}.
        self.labels: Dict[str, str] = dict(info.get("labels") or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (
            f"ModelVersion(model_name={self.model_name!r}, name={self.name!r}, version={self.version}, id={self.id!r})"
        )


class Model:
    """A model and the versions the server listed with it."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self.id = str(info["id"])
        self.name: str = info.get("name", "")
        self.type: str = info.get("type", "")
        self._versions = [ModelVersion(version) for version in info.get("versions") or []]

    def list_versions(self) -> List[ModelVersion]:
        return sorted(self._versions, key=lambda version: version.version)

    def get_version(self, version: Union[int, str]) -> ModelVersion:
        """Find a version by its number, its name, or "latest" (the highest number)."""
        versions = self.list_versions()
        if version == "latest":
            found = versions[-1:]
        elif isinstance(version, int) and not isinstance(version, bool):
            found = [candidate for candidate in versions if candidate.version == version]
        else:
            found = [candidate for candidate in versions if candidate.name == version]
        if not found:
            raise NotFoundError(f"model {self.name!r} has no version {version!r}")
        return found[0]

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, type={self.type!r}, id={self.id!r})"
