"""Predicted assets: an image a deployment monitored, with its predictions and its review."""

from __future__ import annotations

from typing import Any, Dict, Optional


class PredictedAsset:
    def __init__(self, info: Dict[str, Any]) -> None:
        self._info = info
        self.id = str(info["id"])
        self.oracle_prediction_id: Optional[str] = _optional_str(info.get("oracle_prediction_id"))
        self.data_id: Optional[str] = _optional_str(info.get("data_id"))
        self.filename: Optional[str] = info.get("filename")
        self.status: Optional[str] = info.get("status")
        self.outlier_score: Optional[float] = info.get("outlier_score")
        self.timestamp: Optional[float] = info.get("timestamp")
        self.latency: Optional[float] = info.get("latency")
        self.shape_count: Optional[int] = info.get("shape_count")
        self.width: Optional[int] = info.get("width")
        self.height: Optional[int] = info.get("height")
        self.version: Optional[int] = info.get("version")
        self.image_url: Optional[str] = info.get("image_url")

    def get_champion_prediction(self) -> Optional[Dict[str, Any]]:
        """The champion's prediction: model_version_id, latency, raw_predictions and shapes."""
        return self._info.get("champion_prediction")

    def get_shadow_prediction(self) -> Optional[Dict[str, Any]]:
        return self._info.get("shadow_prediction")

    def get_review(self) -> Optional[Dict[str, Any]]:
        return self._info.get("review")

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._info)

    def __repr__(self) -> str:
        return f"PredictedAsset(id={self.id!r}, filename={self.filename!r}, status={self.status!r})"


def _optional_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)
