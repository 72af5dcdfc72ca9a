"""Loupe's shapes: the one format every app keeps, its validation, its geometry, and every conversion.

One shape format whatever the deployment type, in the frame's declared width x height (pixels):
  {"type": "rectangle", "label_id", "score", "x", "y", "w", "h"}     (from a [top, left, bottom, right] box)
  {"type": "polygon", "label_id", "score", "points": [[x, y], ...]}
  {"type": "classification", "label_id", "score"}
each with an optional "text"; a person's shape has no score. Conversions, each way it is needed:
  the monitoring wire format (raw_predictions)   parse_raw_predictions() / shapes_to_raw()
  reviewed shapes sent by the tool and the API     shapes_validate()
  the client's review lists (rectangles, ...)      shapes_from_review_lists()
  COCO annotations                                 shapes_from_coco() / shape_to_coco()
  YOLO label lines                                 shape_to_yolo()
  SVG points for the pages                         svg_points()
Geometry: shape_bbox(), shape_area(), shape_iou(), shapes_scale(). Boxes on the wire are y-first, polygon points
x-first.
"""
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from dashboard.errors import FieldError, ValidationFailed
from dashboard.fields import is_finite_number, is_number
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


def parse_raw_predictions(
    raw,
    *,
    inference_type: str,
    class_ids: Collection[int],
    width: int,
    height: int,
    prefix: str = "raw_predictions",
    retired: Mapping[int, str] | None = None,
) -> ParsedPrediction:
    """Check one prediction against the rules of its deployment's type; collect every error, not just the first.

    `retired` (class id -> name) are classes still in the label map that new predictions may no longer use."""
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
        shape = _parse_shape(lists, index, inference_type, known, width, height, prefix, result, retired or {})
        if shape is not None:
            result.shapes.append(shape)
    if errors:
        result.shapes = []
    return result


def _parse_shape(lists, index, inference_type, known, width, height, prefix, result, retired) -> dict | None:
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
    elif label_id in retired:
        errors.append(FieldError(
            f"{prefix}.detection_classes[{index}]",
            f"class {label_id} ({retired[label_id]}) is retired in the deployment's label map; new predictions "
            "may not use it",
        ))
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


# Reviewed shapes


def shapes_validate(
    *, shapes, inference_type: str, class_ids: Collection[int], width: int, height: int, field: str = "shapes"
) -> list[dict]:
    """Reviewed shapes, checked against the label map and the frame: a clean copy, or ValidationFailed naming
    every shape at fault (`shapes[2].points[0]`), so a client can point at all of them at once."""
    if not isinstance(shapes, list):
        raise ValidationFailed.from_errors([FieldError(field, "must be a list")])
    if len(shapes) > MAX_SHAPES:
        raise ValidationFailed.from_errors([FieldError(field, f"{len(shapes)} shapes is over the limit of {MAX_SHAPES}")])
    known = set(class_ids)
    is_classification = inference_type == InferenceType.CLASSIFICATION
    errors: list[FieldError] = []
    clean = []
    for index, shape in enumerate(shapes):
        where = f"{field}[{index}]"
        if not isinstance(shape, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        before = len(errors)
        kind = shape.get("type")
        label_id = shape.get("label_id")
        if not isinstance(label_id, int) or isinstance(label_id, bool):
            errors.append(FieldError(f"{where}.label_id", f"must be an integer class id, not {label_id!r}"))
        elif label_id not in known:
            listed = ", ".join(str(class_id) for class_id in sorted(known)) or "none"
            errors.append(FieldError(f"{where}.label_id", f"unknown class id {label_id} (the label map has: {listed})"))
        item = {"type": kind, "label_id": label_id}
        score = shape.get("score")
        if score is not None:
            if not is_finite_number(score) or not 0 <= score <= 1:
                errors.append(FieldError(f"{where}.score", f"must be a number in [0, 1], not {score!r}"))
            item["score"] = score
        if is_classification != (kind == "classification"):
            expected = "classification" if is_classification else "rectangle or polygon"
            errors.append(FieldError(f"{where}.type", f"must be {expected} for a {inference_type} deployment, not {kind!r}"))
        elif kind == "rectangle":
            errors += _rectangle_errors(shape, where, width, height)
            item.update({name: shape.get(name) for name in ("x", "y", "w", "h")})
        elif kind == "polygon":
            errors += _polygon_errors(shape.get("points"), where, width, height)
            item["points"] = shape.get("points")
        if len(errors) == before:
            clean.append(item)
    if is_classification and len(shapes) != 1 and not errors:
        errors.append(FieldError(field, f"a classification takes exactly one class, not {len(shapes)}"))
    if errors:
        raise ValidationFailed.from_errors(errors)
    return clean


def _rectangle_errors(shape: dict, where: str, width: int, height: int) -> list[FieldError]:
    values = {name: shape.get(name) for name in ("x", "y", "w", "h")}
    bad = [FieldError(f"{where}.{name}", f"must be a finite number, not {value!r}")
           for name, value in values.items() if not is_finite_number(value)]
    if bad:
        return bad
    x, y, w, h = values.values()
    if w <= 0 or h <= 0:
        return [FieldError(f"{where}.w" if w <= 0 else f"{where}.h", "must be positive")]
    if x < 0 or y < 0 or x + w > width or y + h > height:
        return [FieldError(where, f"box ({x}, {y}, {w}, {h}) leaves the {width}×{height} frame")]
    return []


def _polygon_errors(points, where: str, width: int, height: int) -> list[FieldError]:
    if not isinstance(points, list) or not 3 <= len(points) <= MAX_POLYGON_POINTS:
        return [FieldError(f"{where}.points", f"must be a list of 3 to {MAX_POLYGON_POINTS} [x, y] points")]
    for number, point in enumerate(points):
        if not (isinstance(point, list) and len(point) == 2 and all(is_finite_number(v) for v in point)):
            return [FieldError(f"{where}.points[{number}]", f"must be [x, y] with finite numbers, not {point!r}")]
        if not (0 <= point[0] <= width and 0 <= point[1] <= height):
            return [FieldError(f"{where}.points[{number}]", f"{point} lies outside the {width}×{height} frame")]
    return []


@dataclass(frozen=True)
class ReviewLists:
    """Shapes read from the client's {rectangles, polygons, classifications} lists, and where each came from."""

    shapes: list[dict]
    origins: list[str]  # "rectangles[0]", "polygons[1]": the client's own name of each shape, in order

    def client_field(self, error: FieldError, field: str = "shapes") -> FieldError:
        """The error renamed to the client's field: shapes[3].x -> polygons[1].x."""
        if not error.field.startswith(f"{field}["):
            return error
        index_text, _, rest = error.field[len(field) + 1:].partition("]")
        if not index_text.isdigit() or int(index_text) >= len(self.origins):
            return error
        return FieldError(self.origins[int(index_text)] + rest, error.message)


REVIEW_LISTS = (("rectangles", "rectangle", ("x", "y", "w", "h")), ("polygons", "polygon", ("points",)),
                ("classifications", "classification", ()))


def shapes_from_review_lists(body: dict) -> ReviewLists:
    """Loupe's shapes from the client's review lists (missing lists are empty); the fields each needs must be there."""
    shapes, origins, errors = [], [], []
    for name, kind, fields in REVIEW_LISTS:
        items = body.get(name) or []
        if not isinstance(items, list):
            errors.append(FieldError(name, "must be a list"))
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append(FieldError(f"{name}[{index}]", "must be an object"))
                continue
            missing = [key for key in ("label_id", *fields) if key not in item]
            errors += [FieldError(f"{name}[{index}].{key}", "is required") for key in missing]
            if not missing:
                shapes.append({"type": kind, "label_id": item["label_id"], **{key: item[key] for key in fields}})
                origins.append(f"{name}[{index}]")
    if errors:
        raise ValidationFailed.from_errors(errors)
    return ReviewLists(shapes=shapes, origins=origins)


# Geometry


def shape_bbox(shape: dict) -> tuple[float, float, float, float] | None:
    """(x, y, w, h) of a rectangle or a polygon's bounding box; None for a classification."""
    if shape["type"] == "rectangle":
        return shape["x"], shape["y"], shape["w"], shape["h"]
    if shape["type"] == "polygon":
        xs, ys = [point[0] for point in shape["points"]], [point[1] for point in shape["points"]]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return None


def shape_area(shape: dict) -> float | None:
    """A rectangle's area, or a polygon's (shoelace, so a self-crossing one counts its signed parts); None for a
    classification."""
    if shape["type"] == "rectangle":
        return shape["w"] * shape["h"]
    if shape["type"] == "polygon":
        xs, ys = zip(*shape["points"])
        return 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))
    return None


def shape_iou(a: dict, b: dict, *, width: int, height: int) -> float:
    """Intersection over union of two rectangles or polygons, as COCO's evaluation measures it (polygons
    rasterized by pycocotools in the width x height frame); 0 when either is a classification."""
    if a["type"] == "rectangle" and b["type"] == "rectangle":
        ax, ay, aw, ah = shape_bbox(a)
        bx, by, bw, bh = shape_bbox(b)
        across = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0.0, min(ay + ah, by + bh) - max(ay, by))
        union = aw * ah + bw * bh - across
        return across / union if union > 0 else 0.0
    if "classification" in (a["type"], b["type"]):
        return 0.0
    from pycocotools import mask  # imported here: only polygon comparisons need it

    rles = [mask.merge(mask.frPyObjects([_coco_polygon(shape)], height, width)) for shape in (a, b)]
    return float(mask.iou([rles[0]], [rles[1]], [0])[0][0])


def shapes_scale(shapes: list[dict], *, from_size: tuple[int, int], to_size: tuple[int, int]) -> list[dict]:
    """Shapes drawn in a from_size (width, height) frame, moved to a to_size one (a frame's declared size)."""
    if tuple(from_size) == tuple(to_size):
        return shapes
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scaled = []
    for shape in shapes:
        if shape["type"] == "rectangle":
            shape = {**shape, "x": shape["x"] * sx, "y": shape["y"] * sy, "w": shape["w"] * sx, "h": shape["h"] * sy}
        elif shape["type"] == "polygon":
            shape = {**shape, "points": [[x * sx, y * sy] for x, y in shape["points"]]}
        scaled.append(shape)
    return scaled


def _coco_polygon(shape: dict) -> list[float]:
    if shape["type"] == "rectangle":
        x, y, w, h = shape_bbox(shape)
        return [x, y, x + w, y, x + w, y + h, x, y + h]
    return [value for point in shape["points"] for value in point]


def svg_points(shape: dict) -> str:
    """A polygon's points as an SVG `points` attribute."""
    return " ".join(f"{x},{y}" for x, y in shape["points"])


# COCO and YOLO


def shapes_from_coco(annotation: dict, inference_type: str) -> list[dict]:
    """The shapes of one COCO annotation for a dataset of this type; ValueError says what is wrong with it."""
    label_id = annotation["category_id"]
    if inference_type == InferenceType.CLASSIFICATION:
        return [{"type": "classification", "label_id": label_id}]
    segmentation = annotation.get("segmentation")
    if inference_type == InferenceType.SEGMENTATION and segmentation:
        if not isinstance(segmentation, list):
            raise ValueError("RLE segmentation masks are not supported; give polygons")
        shapes = []
        for polygon in segmentation:
            if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                    or not all(is_finite_number(v) for v in polygon)):
                raise ValueError("a segmentation polygon is a flat list of at least 3 x, y pairs")
            points = [[polygon[i], polygon[i + 1]] for i in range(0, len(polygon), 2)]
            shapes.append({"type": "polygon", "label_id": label_id, "points": points})
        return shapes
    bbox = annotation.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4 or not all(is_finite_number(v) for v in bbox)
            or bbox[2] < 0 or bbox[3] < 0):
        raise ValueError("bbox must be [x, y, width, height] with a width and height >= 0")
    x, y, w, h = bbox
    return [{"type": "rectangle", "label_id": label_id, "x": x, "y": y, "w": w, "h": h}]


def shape_to_coco(shape: dict) -> dict:
    """A COCO annotation's fields for one shape (without its id and image_id)."""
    annotation = {"category_id": shape["label_id"], "iscrowd": 0}
    box = shape_bbox(shape)
    if box is not None:
        annotation["bbox"] = list(box)
        annotation["area"] = shape_area(shape)
    if shape["type"] == "polygon":
        annotation["segmentation"] = [[value for point in shape["points"] for value in point]]
    return annotation


def shape_to_yolo(shape: dict, *, width: int, height: int, class_index: dict[int, int]) -> str | None:
    """A YOLO label line (class index, normalized centre and size of the box); None for a shape it cannot hold."""
    box = shape_bbox(shape)
    if box is None or shape["label_id"] not in class_index:
        return None
    x, y, w, h = box
    cx, cy = (x + w / 2) / width, (y + h / 2) / height
    return f"{class_index[shape['label_id']]} {cx:.6f} {cy:.6f} {w / width:.6f} {h / height:.6f}"
