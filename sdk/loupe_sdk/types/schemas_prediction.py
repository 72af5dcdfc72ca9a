"""Prediction formats sent as `raw_predictions`, checked on construction so bad values fail before any request."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, Callable, ClassVar, Dict, List, Optional, Union

from loupe_sdk.exceptions import PredictionFormatError
from loupe_sdk.types.enums import InferenceType

Number = Union[int, float]
Box = List[Number]
# A polygon is a list of [x, y] points, or the flattened [x1, y1, x2, y2, ...] form.
Polygon = Union[List[List[Number]], List[Number]]


class PredictionFormat:
    """Base of the prediction formats; subclasses are dataclasses whose fields are the wire fields."""

    inference_type: ClassVar[InferenceType]

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> Dict[str, Any]:
        """The `raw_predictions` object of this prediction, without the fields left unset."""
        return {
            field.name: copy.deepcopy(getattr(self, field.name))
            for field in fields(self)  # type: ignore[arg-type]
            if getattr(self, field.name) is not None
        }


@dataclass
class ClassificationPredictionFormat(PredictionFormat):
    inference_type: ClassVar[InferenceType] = InferenceType.CLASSIFICATION

    detection_classes: List[int]
    detection_scores: List[float]
    detection_texts: Optional[List[str]] = None


@dataclass
class DetectionPredictionFormat(PredictionFormat):
    """Boxes are [top, left, bottom, right], that is [y1, x1, y2, x2], in pixels."""

    inference_type: ClassVar[InferenceType] = InferenceType.OBJECT_DETECTION

    detection_classes: List[int]
    detection_scores: List[float]
    detection_boxes: List[Box]
    detection_texts: Optional[List[str]] = None


@dataclass
class SegmentationPredictionFormat(PredictionFormat):
    """Masks are polygons of [x, y] points (x first, unlike boxes), or flattened [x1, y1, x2, y2, ...]."""

    inference_type: ClassVar[InferenceType] = InferenceType.SEGMENTATION

    detection_classes: List[int]
    detection_scores: List[float]
    detection_masks: List[Polygon]
    detection_boxes: Optional[List[Box]] = None
    detection_texts: Optional[List[str]] = None


def _validate(prediction: PredictionFormat) -> None:
    lists: Dict[str, list] = {}
    for field in fields(prediction):  # type: ignore[arg-type]
        value = getattr(prediction, field.name)
        if value is None:
            if field.default is MISSING:
                raise PredictionFormatError(field.name, "is required")
            continue
        lists[field.name] = _as_list(field.name, None, value)

    expected = len(lists["detection_classes"])
    for name, values in lists.items():
        if len(values) != expected:
            raise PredictionFormatError(
                name, f"incoherent lists: {len(values)} items where detection_classes has {expected}"
            )

    for name, values in lists.items():
        check = _ITEM_CHECKS[name]
        setattr(prediction, name, [check(name, index, value) for index, value in enumerate(values)])


def _as_list(field: str, index: Optional[int], value: Any) -> list:
    # numpy arrays and tuples are welcome; strings and dicts are iterable but never what the caller meant.
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise PredictionFormatError(field, f"must be a list, not {_shown(value)}", index)
    return list(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _plain(value: Any) -> Number:
    """A JSON-ready int or float (numpy scalars are not serializable as they are)."""
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def _shown(value: Any) -> str:
    """Numbers as a person writes them (50, not 50.0), matching the server's messages."""
    if not _is_number(value):
        return repr(value)
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(float(value))


def _class_id(field: str, index: int, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise PredictionFormatError(field, f"must be an integer class id, not {value!r}", index)
    return int(value)


def _score(field: str, index: int, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise PredictionFormatError(field, f"must be a finite number, not {value!r}", index)
    if not 0.0 <= value <= 1.0:
        raise PredictionFormatError(field, f"must lie in [0, 1], not {_shown(value)}", index)
    return float(value)


def _box(field: str, index: int, value: Any) -> Box:
    box = _as_list(field, index, value)
    if len(box) != 4 or not all(_is_number(number) and math.isfinite(number) for number in box):
        raise PredictionFormatError(field, f"must be 4 finite numbers [top, left, bottom, right], not {value!r}", index)
    top, left, bottom, right = box
    if bottom < top:
        raise PredictionFormatError(field, f"bottom ({_shown(bottom)}) < top ({_shown(top)})", index)
    if right < left:
        raise PredictionFormatError(field, f"right ({_shown(right)}) < left ({_shown(left)})", index)
    return [_plain(number) for number in box]


def _polygon(field: str, index: int, value: Any) -> Polygon:
    polygon = _as_list(field, index, value)
    if polygon and all(_is_number(number) for number in polygon):
        if len(polygon) % 2:
            raise PredictionFormatError(
                field, f"a flattened polygon needs an even count of numbers, not {len(polygon)}", index
            )
        if len(polygon) < 6:
            raise PredictionFormatError(field, f"a polygon needs at least 3 points, not {len(polygon) // 2}", index)
        if not all(math.isfinite(number) for number in polygon):
            raise PredictionFormatError(field, "coordinates must be finite numbers", index)
        return [_plain(number) for number in polygon]

    if len(polygon) < 3:
        raise PredictionFormatError(field, f"a polygon needs at least 3 points, not {len(polygon)}", index)
    points = []
    for point_index, point in enumerate(polygon):
        coordinates = (
            None if isinstance(point, (str, bytes, Mapping)) or not isinstance(point, Iterable) else list(point)
        )
        if (
            coordinates is None
            or len(coordinates) != 2
            or not all(_is_number(number) and math.isfinite(number) for number in coordinates)
        ):
            raise PredictionFormatError(
                field, f"point {point_index} must be [x, y] of finite numbers, not {point!r}", index
            )
        points.append([_plain(number) for number in coordinates])
    return points


def _text(field: str, index: int, value: Any) -> str:
    if not isinstance(value, str):
        raise PredictionFormatError(field, f"must be a string, not {value!r}", index)
    return value


_ITEM_CHECKS: Dict[str, Callable[[str, int, Any], Any]] = {
    "detection_classes": _class_id,
    "detection_scores": _score,
    "detection_boxes": _box,
    "detection_masks": _polygon,
    "detection_texts": _text,
}
