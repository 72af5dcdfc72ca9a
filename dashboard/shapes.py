"""The wire format of raw predictions: validated into Loupe's shapes, and written back out.

Loupe keeps one shape format whatever the deployment type:
  {"type": "rectangle", "label_id", "score", "x", "y", "w", "h"}     (from a [top, left, bottom, right] box)
  {"type": "polygon", "label_id", "score", "points": [[x, y], ...]}
  {"type": "classification", "label_id", "score"}
each with an optional "text". Boxes on the wire are y-first, polygon points x-first.
"""
import math
from collections.abc import Collection
from dataclasses import dataclass, field

from dashboard.errors import FieldError
from dashboard.models import InferenceType

LIST_FIELDS = ("detection_classes", "detection_scores", "detection_boxes", "detection_masks", "detection_texts")
REQUIRED_FIELDS = {
    InferenceType.CLASSIFICATION: ("detection_classes", "detection_scores"),
    InferenceType.OBJECT_DETECTION: ("detection_classes", "detection_scores", "detection_boxes"),
    InferenceType.SEGMENTATION: ("detection_classes", "detection_scores", "detection_masks"),
}
MAX_SHAPES = 10_000
MAX_POLYGON_POINTS = 10_000


@dataclass
class ParsedPrediction:
    shapes: list[dict] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


def parse_raw_predictions(
    raw,
    *,
    inference_type: str,
    class_ids: Collection[int],
    width: int,
    height: int,
    prefix: str = "raw_predictions",
) -> ParsedPrediction:
    """Check one prediction against the rules of its deployment's type; collect every error, not just the first."""
    result = ParsedPrediction()
    errors = result.errors
    if not isinstance(raw, dict):
        errors.append(FieldError(prefix, "must be an object"))
        return result

    for name in REQUIRED_FIELDS[inference_type]:
        if name not in raw or raw[name] is None:
            errors.append(FieldError(f"{prefix}.{name}", f"is required for a {inference_type} deployment"))
    allowed = set(REQUIRED_FIELDS[inference_type]) | {"detection_texts"}
    if inference_type == InferenceType.SEGMENTATION:
        allowed.add("detection_boxes")
    for name in sorted(set(raw) - allowed):
        result.warnings.append(f"{prefix}.{name} is not used by a {inference_type} deployment and was ignored")

    lists = {}
    for name in LIST_FIELDS:
        if name in allowed and raw.get(name) is not None:
            if not isinstance(raw[name], list):
                errors.append(FieldError(f"{prefix}.{name}", "must be a list"))
            else:
                lists[name] = raw[name]
    if errors:
        return result

    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        errors.append(FieldError(prefix, f"incoherent lists: {detail}"))
        return result
    count = next(iter(lengths.values()), 0)
    if count > MAX_SHAPES:
        errors.append(FieldError(prefix, f"{count} shapes is over the limit of {MAX_SHAPES}"))
        return result

    known = set(class_ids)
    for index in range(count):
        shape = _parse_shape(lists, index, inference_type, known, width, height, prefix, result)
        if shape is not None:
            result.shapes.append(shape)
    if errors:
        result.shapes = []
    return result


def _parse_shape(lists, index, inference_type, known, width, height, prefix, result) -> dict | None:
    errors = result.errors
    before = len(errors)
    label_id = lists["detection_classes"][index]
    if not isinstance(label_id, int) or isinstance(label_id, bool):
        errors.append(FieldError(f"{prefix}.detection_classes[{index}]", f"must be an integer class id, not {label_id!r}"))
    elif label_id not in known:
        listed = ", ".join(str(class_id) for class_id in sorted(known)) or "none"
        errors.append(
            FieldError(
                f"{prefix}.detection_classes[{index}]",
                f"unknown class id {label_id} (the deployment's label map has: {listed})",
            )
        )
    score = lists["detection_scores"][index]
    if not is_finite_number(score):
        errors.append(FieldError(f"{prefix}.detection_scores[{index}]", f"must be a finite number, not {score!r}"))
    elif not 0.0 <= score <= 1.0:
        errors.append(FieldError(f"{prefix}.detection_scores[{index}]", f"must lie in [0, 1], not {score}"))

    shape: dict = {"label_id": label_id, "score": score}
    if inference_type == InferenceType.CLASSIFICATION:
        shape["type"] = "classification"
    if "detection_boxes" in lists:
        box = _parse_box(lists["detection_boxes"][index], f"{prefix}.detection_boxes[{index}]", errors)
        if box is not None:
            top, left, bottom, right = _clip_box(box, width, height, f"{prefix}.detection_boxes[{index}]", result)
            if inference_type == InferenceType.OBJECT_DETECTION:
                shape.update(type="rectangle", x=left, y=top, w=right - left, h=bottom - top)
            else:
                shape["box"] = [top, left, bottom, right]
    if "detection_masks" in lists:
        points = _parse_polygon(lists["detection_masks"][index], f"{prefix}.detection_masks[{index}]", errors)
        if points is not None:
            shape.update(type="polygon", points=points)
    if "detection_texts" in lists:
        text = lists["detection_texts"][index]
        if not isinstance(text, str):
            errors.append(FieldError(f"{prefix}.detection_texts[{index}]", "must be a string"))
        else:
            shape["text"] = text
    return shape if len(errors) == before else None


def _parse_box(box, name: str, errors: list[FieldError]) -> list[float] | None:
    if not isinstance(box, list) or len(box) != 4 or not all(is_finite_number(value) for value in box):
        errors.append(FieldError(name, "must be 4 finite numbers [top, left, bottom, right]"))
        return None
    top, left, bottom, right = box
    if bottom < top:
        errors.append(FieldError(name, f"bottom ({_plain(bottom)}) < top ({_plain(top)})"))
    if right < left:
        errors.append(FieldError(name, f"right ({_plain(right)}) < left ({_plain(left)})"))
    return None if bottom < top or right < left else [_plain(value) for value in box]


def _clip_box(box, width, height, name, result) -> list[float]:
    top, left, bottom, right = box
    clipped = [min(max(top, 0), height), min(max(left, 0), width), min(max(bottom, 0), height), min(max(right, 0), width)]
    if clipped != box:
        result.warnings.append(f"{name} reached outside the {width}x{height} image and was clipped to it")
    return clipped


def _parse_polygon(polygon, name: str, errors: list[FieldError]) -> list[list[float]] | None:
    if not isinstance(polygon, list):
        errors.append(FieldError(name, "must be a list of [x, y] points"))
        return None
    if polygon and all(is_number(value) for value in polygon):
        # The flattened form [x1, y1, x2, y2, ...] that older clients send.
        if len(polygon) % 2:
            errors.append(FieldError(name, f"a flattened polygon needs an even count of numbers, not {len(polygon)}"))
            return None
        polygon = [polygon[i : i + 2] for i in range(0, len(polygon), 2)]
    if len(polygon) < 3:
        errors.append(FieldError(name, f"a polygon needs at least 3 points, not {len(polygon)}"))
        return None
    if len(polygon) > MAX_POLYGON_POINTS:
        errors.append(FieldError(name, f"{len(polygon)} points is over the limit of {MAX_POLYGON_POINTS}"))
        return None
    for point_index, point in enumerate(polygon):
        if not isinstance(point, list) or len(point) != 2 or not all(is_finite_number(value) for value in point):
            errors.append(FieldError(f"{name}[{point_index}]", "must be a point [x, y] of finite numbers"))
            return None
    return [[_plain(x), _plain(y)] for x, y in polygon]


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def shapes_to_raw(shapes: list[dict], inference_type: str) -> dict:
    """Write shapes back in the wire format of the deployment's type."""
    raw: dict[str, list] = {
        "detection_classes": [shape["label_id"] for shape in shapes],
        "detection_scores": [shape["score"] for shape in shapes],
    }
    if inference_type == InferenceType.OBJECT_DETECTION:
        raw["detection_boxes"] = [
            [shape["y"], shape["x"], shape["y"] + shape["h"], shape["x"] + shape["w"]] for shape in shapes
        ]
    if inference_type == InferenceType.SEGMENTATION:
        raw["detection_masks"] = [shape["points"] for shape in shapes]
        if any("box" in shape for shape in shapes):
            raw["detection_boxes"] = [shape.get("box") for shape in shapes]
    if any("text" in shape for shape in shapes):
        raw["detection_texts"] = [shape.get("text", "") for shape in shapes]
    return raw
