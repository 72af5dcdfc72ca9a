"""Predicted assets: an image a deployment monitored, with its predictions and its review."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

from loupe_sdk.exceptions import LoupeError

Rectangle = Union[Mapping[str, Any], Sequence[Any]]  # {x, y, w, h, label_id} or (x, y, w, h, label_id)


class PredictedAsset:
    def __init__(self, info: Dict[str, Any], transport: Any = None) -> None:
        self._info = info
        self._transport = transport
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

    def add_review(
        self,
        rectangles: Optional[Iterable[Rectangle]] = None,
        polygons: Optional[Iterable[Mapping[str, Any]]] = None,
        classifications: Optional[Iterable[Union[Mapping[str, Any], int]]] = None,
        expected_version: Optional[int] = None,
    ) -> "PredictedAsset":
        """Save a review of this asset and return the asset as stored now (status REVIEWED, version bumped).

        Rectangles are {x, y, w, h, label_id} dicts or (x, y, w, h, label_id) tuples, in the asset's width × height;
        polygons are {points: [[x, y], ...], label_id}; classifications are {label_id} or a bare label id.
        With `expected_version`, a review saved meanwhile by someone else raises ConflictError (409), whose
        `payload` holds the stored version, reviewed_shapes and reviewed_by; without it the server takes the
        current version. A SUBMITTED asset raises ConflictError too.
        """
        if self._transport is None:
            raise LoupeError("this PredictedAsset has no connection to a server: get it from a Deployment")
        body: Dict[str, Any] = {
            "rectangles": [_rectangle(item) for item in rectangles or []],
            "polygons": [dict(item) for item in polygons or []],
            "classifications": [item if isinstance(item, Mapping) else {"label_id": item} for item in classifications or []],
        }
        if expected_version is not None:
            body["expected_version"] = expected_version
        info = self._transport.platform("POST", f"/api/predicted/asset/{self.id}/reviews", json=body)
        return PredictedAsset(info, self._transport)

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._info)

    def __repr__(self) -> str:
        return f"PredictedAsset(id={self.id!r}, filename={self.filename!r}, status={self.status!r})"


def _optional_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _rectangle(item: Rectangle) -> Dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    x, y, w, h, label_id = item
    return {"x": x, "y": y, "w": w, "h": h, "label_id": label_id}
