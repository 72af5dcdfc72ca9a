"""Decoding a model's raw outputs, by the roles its contract names (or in Loupe's wire format), into Loupe shapes in
the image's own pixels."""
import math
from dataclasses import dataclass

import cv2
import numpy as np

# A polygon traced from a mask is simplified to within this share of its perimeter, and never finer than a pixel:
# enough points to follow the outline, few enough to edit in the review tool.
POLYGON_TOLERANCE = 0.003
# Softmax and float32 arithmetic land a hair outside 0..1; beyond this the scores are not probabilities.
SCORE_SLACK = 1e-4


class OutputsUnreadable(ValueError):
    """The model's outputs do not have the shapes or values its contract promises."""


@dataclass(frozen=True)
class Frame:
    """Where the image sits inside the model's input: ``model = image * scale + pad`` on each axis."""

    image_width: int
    image_height: int
    input_width: int
    input_height: int
    scale_x: float = 1.0
    scale_y: float = 1.0
    pad_left: float = 0.0
    pad_top: float = 0.0

    @classmethod
    def identity(cls, width: int, height: int) -> "Frame":
        return cls(width, height, width, height)

    @classmethod
    def fitted(cls, width: int, height: int, *, input_width: int, input_height: int, resize: str) -> "Frame":
        if resize == "stretch":
            return cls(width, height, input_width, input_height, input_width / width, input_height / height)
        scale = min(input_width / width, input_height / height)
        content_width, content_height = cls.content_size(width, height, scale)
        return cls(
            width, height, input_width, input_height, scale, scale,
            (input_width - content_width) // 2, (input_height - content_height) // 2,
        )

    @staticmethod
    def content_size(width: int, height: int, scale: float) -> tuple[int, int]:
        return max(1, round(width * scale)), max(1, round(height * scale))

    def points_to_image(self, points: np.ndarray, *, normalized: bool) -> np.ndarray:
        """``points[..., 2]`` as (x, y) in the model's input, back in the image's pixels, clipped to it."""
        points = np.asarray(points, dtype=np.float64)
        if normalized:
            points = points * (self.input_width, self.input_height)
        x = (points[..., 0] - self.pad_left) / self.scale_x
        y = (points[..., 1] - self.pad_top) / self.scale_y
        return np.stack([np.clip(x, 0, self.image_width), np.clip(y, 0, self.image_height)], axis=-1)

    def mask_to_image(self, mask: np.ndarray) -> np.ndarray:
        """A mask laid over the model's input (at any resolution), resampled onto the image's pixels."""
        mask_height, mask_width = mask.shape
        to_mask_x = mask_width / self.input_width
        to_mask_y = mask_height / self.input_height
        # Pixel centres: image pixel x covers x + 0.5, which sits at ((x + 0.5) * scale + pad) in the model's input.
        inverse = np.array([
            [self.scale_x * to_mask_x, 0, (0.5 * self.scale_x + self.pad_left) * to_mask_x - 0.5],
            [0, self.scale_y * to_mask_y, (0.5 * self.scale_y + self.pad_top) * to_mask_y - 0.5],
        ])
        return cv2.warpAffine(
            mask.astype(np.float32), inverse, (self.image_width, self.image_height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )


def _array(outputs: dict, role: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    value = np.asarray(outputs[role])
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if value.ndim not in allowed:
        raise OutputsUnreadable(f"{role} came as shape {list(value.shape)}, expected rank {' or '.join(map(str, allowed))}")
    if value.dtype.kind not in "biuf":
        raise OutputsUnreadable(f"{role} came as {value.dtype}, not numbers")
    return value


def checked_scores(scores: np.ndarray) -> np.ndarray:
    scores = scores.astype(np.float64)
    if scores.size and (not np.all(np.isfinite(scores)) or scores.min() < -SCORE_SLACK or scores.max() > 1 + SCORE_SLACK):
        raise OutputsUnreadable(
            f"scores must be probabilities in 0..1, the model gave {scores.min():.4g}..{scores.max():.4g}"
            " (for classification logits set contract.logits)"
        )
    return np.clip(scores, 0.0, 1.0)


def _corners(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """Boxes in any contract format as [x1, y1, x2, y2]."""
    a, b, c, d = (boxes[:, index] for index in range(4))
    if box_format == "xyxy":
        return np.stack([a, b, c, d], axis=1)
    if box_format == "yxyx":
        return np.stack([b, a, d, c], axis=1)
    if box_format == "xywh":
        return np.stack([a, b, a + c, b + d], axis=1)
    return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=1)  # cxcywh


def _detections(outputs: dict, contract: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """(label ids, scores, how many) from scores and classes, or from a per-class score matrix's argmax."""
    names = contract["outputs"]
    if names["classes"]:
        scores = _array(outputs, "scores", 1).reshape(-1)
        classes = _array(outputs, "classes", 1).reshape(-1)
        if len(classes) != len(scores):
            raise OutputsUnreadable(f"{len(classes)} classes for {len(scores)} scores")
    else:
        matrix = _array(outputs, "scores", 2)
        classes = matrix.argmax(axis=1) if matrix.shape[1] else np.zeros(len(matrix), dtype=np.int64)
        scores = matrix.max(axis=1) if matrix.shape[1] else np.zeros(len(matrix))
    count = len(scores)
    if names["count"]:
        # Exporters that pad to a fixed N say how many rows are real; the rest are zeros, not detections.
        count = min(count, int(np.asarray(outputs["count"]).reshape(-1)[0]))
    scores = checked_scores(scores[:count])
    labels = np.rint(classes[:count]).astype(np.int64) + contract["class_offset"]
    return labels, scores, count


def _rectangles(outputs: dict, contract: dict, frame: Frame) -> list[dict]:
    labels, scores, count = _detections(outputs, contract)
    boxes = _array(outputs, "boxes", 2)
    if boxes.shape[1] != 4 or len(boxes) < count:
        raise OutputsUnreadable(f"boxes came as shape {list(boxes.shape)} for {count} scores, expected [{count}, 4]")
    corners = _corners(boxes[:count].astype(np.float64), contract["box_format"])
    top_left = frame.points_to_image(corners[:, 0:2], normalized=contract["normalized"])
    bottom_right = frame.points_to_image(corners[:, 2:4], normalized=contract["normalized"])
    shapes = []
    for index in range(count):
        (x1, y1), (x2, y2) = top_left[index], bottom_right[index]
        x, y, right, bottom = min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
        if right - x <= 0 or bottom - y <= 0:
            continue  # wholly outside the image (in the letterbox padding): nothing of it to show
        shapes.append({
            "type": "rectangle", "label_id": int(labels[index]), "score": float(scores[index]),
            "x": float(x), "y": float(y), "w": float(right - x), "h": float(bottom - y),
        })
    return shapes


def polygon_from_mask(mask: np.ndarray) -> list[list[float]] | None:
    """The outline of a boolean mask's largest region, simplified; None when it has no area."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=lambda contour: (cv2.contourArea(contour), len(contour)))
    tolerance = max(1.0, POLYGON_TOLERANCE * cv2.arcLength(largest, True))
    simplified = cv2.approxPolyDP(largest, tolerance, True)
    points = simplified if len(simplified) >= 3 else largest
    if len(points) < 3:
        return None
    return [[float(x), float(y)] for x, y in points.reshape(-1, 2)]


def _polygons(outputs: dict, contract: dict, frame: Frame) -> list[dict]:
    labels, scores, count = _detections(outputs, contract)
    shapes = []
    if contract["outputs"]["masks"]:
        masks = _array(outputs, "masks", (3, 4))
        if masks.ndim == 4:
            if masks.shape[1] != 1:
                raise OutputsUnreadable(f"masks came as shape {list(masks.shape)}, expected [N, 1, H, W]")
            masks = masks[:, 0]
        if len(masks) < count:
            raise OutputsUnreadable(f"{len(masks)} masks for {count} scores")
        for index in range(count):
            on_image = frame.mask_to_image(masks[index]) > contract["mask_threshold"]
            points = polygon_from_mask(on_image)
            if points is not None:
                shapes.append({"type": "polygon", "label_id": int(labels[index]), "score": float(scores[index]), "points": points})
        return shapes
    polygons = _array(outputs, "polygons", 3)
    if polygons.shape[2] != 2 or len(polygons) < count:
        raise OutputsUnreadable(f"polygons came as shape {list(polygons.shape)} for {count} scores, expected [{count}, P, 2]")
    for index in range(count):
        points = polygons[index].astype(np.float64)
        points = points[np.all(np.isfinite(points), axis=1)]  # NaN rows pad short polygons to P points
        if len(points) < 3:
            continue
        mapped = frame.points_to_image(points, normalized=contract["normalized"])
        shapes.append({
            "type": "polygon", "label_id": int(labels[index]), "score": float(scores[index]),
            "points": [[float(x), float(y)] for x, y in mapped],
        })
    return shapes


def _classifications(outputs: dict, contract: dict) -> list[dict]:
    values = _array(outputs, "probabilities", 1).astype(np.float64)
    if not values.size:
        return []
    if contract["logits"]:
        exponentials = np.exp(values - values.max())
        values = exponentials / exponentials.sum()
    probabilities = checked_scores(values)
    order = np.argsort(-probabilities, kind="stable")
    if not contract["all_classes"]:
        order = order[:1]
    return [
        {"type": "classification", "label_id": int(index) + contract["class_offset"], "score": float(probabilities[index])}
        for index in order
    ]


def shapes_from_outputs(outputs: dict, *, contract: dict, frame: Frame) -> list[dict]:
    """Loupe shapes from ``outputs`` (role -> array, one image's, batch axis removed), every score kept.

    Raises OutputsUnreadable when the arrays do not fit the contract.
    """
    task = contract["task"]
    if task == "CLASSIFICATION":
        return _classifications(outputs, contract)
    if task == "OBJECT_DETECTION":
        return _rectangles(outputs, contract, frame)
    return _polygons(outputs, contract, frame)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _list(payload: dict, key: str, required: bool) -> list:
    value = payload.get(key)
    if value is None:
        if required:
            raise OutputsUnreadable(f"the answer has no {key!r} (it has: {', '.join(payload) or 'nothing'})")
        return []
    if not isinstance(value, list):
        raise OutputsUnreadable(f"{key} must be a list, not {type(value).__name__}")
    return value


def polygon_points(polygon, where: str) -> np.ndarray:
    """A polygon as [[x, y], ...] or flattened [x1, y1, x2, y2, ...], as an array of points."""
    if isinstance(polygon, list) and polygon and all(_is_number(value) for value in polygon) and len(polygon) % 2 == 0:
        return np.array(polygon, dtype=np.float64).reshape(-1, 2)
    if isinstance(polygon, list) and all(isinstance(point, list) and len(point) == 2 and all(_is_number(v) for v in point) for point in polygon):
        return np.array(polygon, dtype=np.float64).reshape(-1, 2)
    raise OutputsUnreadable(f"{where} must be a polygon: [[x, y], ...] or [x1, y1, x2, y2, ...]")


def shapes_from_wire(payload: dict, *, task: str, frame: Frame) -> list[dict]:
    """Loupe shapes from Loupe's own raw_predictions wire format (an http model's answer, a classical model's output)."""
    payload = payload.get("raw_predictions", payload) if isinstance(payload, dict) else payload
    if not isinstance(payload, dict):
        raise OutputsUnreadable("the answer must be a JSON object of raw_predictions lists")
    classes = _list(payload, "detection_classes", True)
    scores = _list(payload, "detection_scores", True)
    geometry_key = {"OBJECT_DETECTION": "detection_boxes", "SEGMENTATION": "detection_masks"}.get(task)
    geometry = _list(payload, geometry_key, True) if geometry_key else classes
    if not len(classes) == len(scores) == len(geometry):
        raise OutputsUnreadable(f"incoherent lists: {len(classes)} classes, {len(scores)} scores" + (f", {len(geometry)} {geometry_key}" if geometry_key else ""))
    if not all(isinstance(label, int) and not isinstance(label, bool) for label in classes):
        raise OutputsUnreadable("detection_classes must be whole numbers (Loupe label ids)")
    if not all(_is_number(score) for score in scores):
        raise OutputsUnreadable("detection_scores must be numbers")
    checked = checked_scores(np.array(scores, dtype=np.float64))
    shapes = []
    for index, (label, score) in enumerate(zip(classes, checked)):
        shape = {"label_id": label, "score": float(score)}
        if task == "CLASSIFICATION":
            shapes.append({"type": "classification", **shape})
        elif task == "OBJECT_DETECTION":
            box = geometry[index]
            if not (isinstance(box, list) and len(box) == 4 and all(_is_number(value) for value in box)):
                raise OutputsUnreadable(f"detection_boxes[{index}] must be [top, left, bottom, right] in pixels")
            top, left, bottom, right = box
            if bottom < top or right < left:
                raise OutputsUnreadable(f"detection_boxes[{index}] {box} is not [top, left, bottom, right]: it ends before it starts")
            (x1, y1), (x2, y2) = frame.points_to_image(np.array([[left, top], [right, bottom]]), normalized=False)
            if x2 - x1 <= 0 or y2 - y1 <= 0:
                continue  # nothing of it inside the image, as with a box in an ONNX model's letterbox padding
            shapes.append({"type": "rectangle", **shape, "x": float(x1), "y": float(y1), "w": float(x2 - x1), "h": float(y2 - y1)})
        else:
            points = polygon_points(geometry[index], f"detection_masks[{index}]")
            if len(points) < 3:
                raise OutputsUnreadable(f"detection_masks[{index}] has {len(points)} points, a polygon needs 3")
            mapped = frame.points_to_image(points, normalized=False)
            shapes.append({"type": "polygon", **shape, "points": [[float(x), float(y)] for x, y in mapped]})
    return shapes
