"""Re-scored detections: a base model version's boxes, each given a new score by a learned re-scorer (an ONNX
classifier over features of the box and of its crop), as Loupe's reference trainer makes them.

It is served by the opencv runtime as the classical model ``rescored_detections``: its contract names the base
version (``settings.base_model_version_id``), its file is the re-scorer. The base keeps deciding where the boxes are;
the re-scorer only changes how much each is believed (its probability that a reviewer would keep the box), so the
deployment's min_threshold then hides the boxes reviews taught it to doubt.
"""
import math

import cv2
import numpy as np
from PIL import Image

from dashboard.errors import FieldError, ValidationFailed
from serving.runtimes import Runtime, RuntimeFailed

# The columns of a box's feature vector, in order. Changing them makes older re-scorers unreadable: add a new
# model name rather than editing this list.
FEATURE_NAMES = (
    "score", "label_id", "width", "height", "area", "log_aspect", "centre_x", "centre_y",
    "brightness", "contrast", "sharpness", "red", "green", "blue", "image_brightness", "image_contrast",
    "boxes_in_image",
)
CROP_SIDE = 64


def detection_features(pixels: np.ndarray, shapes: list[dict]) -> np.ndarray:
    """(boxes, len(FEATURE_NAMES)) float32 features of each rectangle or polygon of `shapes` (in the pixels'
    coordinates) on the RGB uint8 image `pixels`: its score, class, size and position relative to the image, and
    the crop's brightness, contrast, sharpness (log of the Laplacian's variance) and mean colour. Classifications
    get no row."""
    height, width = pixels.shape[:2]
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    image_brightness, image_contrast = float(gray.mean()) / 255, float(gray.std()) / 255
    boxes = [shape for shape in shapes if shape["type"] in ("rectangle", "polygon")]
    rows = []
    for shape in boxes:
        if shape["type"] == "rectangle":
            x, y, w, h = shape["x"], shape["y"], shape["w"], shape["h"]
        else:
            xs, ys = [p[0] for p in shape["points"]], [p[1] for p in shape["points"]]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        left, top = int(max(0, math.floor(x))), int(max(0, math.floor(y)))
        right, bottom = int(min(width, math.ceil(x + w))), int(min(height, math.ceil(y + h)))
        if right - left < 2 or bottom - top < 2:
            crop_rgb = np.zeros((2, 2, 3), np.uint8)
        else:
            crop_rgb = pixels[top:bottom, left:right]
        # One size for every crop: sharpness would otherwise depend on the box's size more than on its content.
        crop_rgb = cv2.resize(crop_rgb, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
        crop = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
        colour = crop_rgb.reshape(-1, 3).mean(axis=0) / 255
        rows.append([
            1.0 if shape.get("score") is None else float(shape["score"]), float(shape["label_id"]),
            w / width, h / height, (w * h) / (width * height), math.log(max(w, 1e-3) / max(h, 1e-3)),
            (x + w / 2) / width, (y + h / 2) / height,
            float(crop.mean()) / 255, float(crop.std()) / 255,
            math.log1p(float(cv2.Laplacian(crop, cv2.CV_64F).var())),
            float(colour[0]), float(colour[1]), float(colour[2]), image_brightness, image_contrast, float(len(boxes)),
        ])
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES))


class RescoredRuntime(Runtime):
    """The base version's runtime, its boxes re-scored by the ONNX re-scorer (column 1 of its probabilities:
    the box is kept)."""

    kind = "opencv"

    def __init__(self, artifact: bytes | None, *, contract: dict, labels: dict[int, str], base: Runtime):
        import onnxruntime

        self.contract, self.labels, self.base = contract, dict(labels), base
        if not artifact:
            raise ValidationFailed.from_errors([FieldError("file", "a rescored_detections version needs its ONNX re-scorer file")])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(bytes(artifact), sess_options=options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's pybind errors share no base class
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValidationFailed.from_errors([FieldError("file", f"not an ONNX model onnxruntime can load: {reason}")]) from error
        inputs = self.session.get_inputs()
        columns = inputs[0].shape[1] if len(inputs) == 1 and len(inputs[0].shape or ()) == 2 else -1
        if columns == -1 or (isinstance(columns, int) and columns != len(FEATURE_NAMES)):
            raise ValidationFailed.from_errors([FieldError(
                "file", f"the re-scorer must take one float input of [N, {len(FEATURE_NAMES)}] box features")])
        outputs = [node for node in self.session.get_outputs() if node.name == "probabilities"]
        if not outputs:
            raise ValidationFailed.from_errors([FieldError("file", "the re-scorer needs an output named probabilities, [N, 2]")])
        self.input_name = inputs[0].name

    def predict(self, image: Image.Image) -> list[dict]:
        shapes = self.base.predict(image)
        boxes = [index for index, shape in enumerate(shapes) if shape["type"] in ("rectangle", "polygon")]
        if not boxes:
            return shapes
        features = detection_features(np.asarray(image.convert("RGB")), [shapes[index] for index in boxes])
        try:
            probabilities = self.session.run(["probabilities"], {self.input_name: features})[0]
        except Exception as error:  # onnxruntime's pybind errors share no base class
            raise RuntimeFailed(f"the re-scorer failed on {len(boxes)} boxes: {error}", kind=self.kind) from error
        rescored = list(shapes)
        for row, index in enumerate(boxes):
            rescored[index] = {**shapes[index], "score": float(np.clip(probabilities[row, -1], 0.0, 1.0))}
        return rescored


def runtime_open(*, artifact: bytes | None, contract: dict, labels: dict[int, str]) -> RescoredRuntime:
    """The re-scored version of a clean rescored_detections contract: its base version opened as serving opens any
    version (once per process), then the re-scorer. ValidationFailed names the field at fault."""
    from dashboard.models import ModelVersion
    from serving.services.runs import ModelUnavailable, model_version_open

    base_id = contract["settings"]["base_model_version_id"]
    base = ModelVersion.objects.filter(pk=base_id).first()
    if base is None:
        raise ValidationFailed.from_errors([FieldError("contract.settings.base_model_version_id",
                                                       f"no model version {base_id}")])
    if base.runtime == "opencv" and (base.contract or {}).get("model") == "rescored_detections":
        raise ValidationFailed.from_errors([FieldError("contract.settings.base_model_version_id",
                                                       "is re-scored itself: re-score its base instead")])
    try:
        opened = model_version_open(base)
    except ModelUnavailable as error:
        raise ValidationFailed.from_errors([FieldError("contract.settings.base_model_version_id", str(error))]) from error
    return RescoredRuntime(artifact, contract=contract, labels=labels, base=opened)
