"""The opencv runtime: the classical models of serving.runtimes.classical (Haar face cascades, contour segmentation,
a colour-HOG classifier whose fitted head is an ONNX file), opened from an opencv contract."""
import os
import threading

import cv2
import numpy as np
from PIL import Image

from dashboard.errors import FieldError, ValidationFailed
from serving.contracts import contract_validate
from serving.runtimes import Runtime, RuntimeFailed
from serving.runtimes.classical import (
    ClassicalModel, ContourSegmenter, HaarFaceDetector, SceneClassifier, colour_hog_features,
)
from serving.runtimes.decoding import Frame, OutputsUnreadable, shapes_from_wire

FEATURE_LENGTH = len(colour_hog_features(np.zeros((64, 64, 3), np.uint8)))


class OnnxClassifierHead:
    """A classifier over feature vectors, run by onnxruntime, in the shape SceneClassifier expects of a fitted
    scikit-learn estimator: ``predict_proba`` and ``classes_`` (the label id of each probability column)."""

    def __init__(self, artifact: bytes, classes: list[int]):
        import onnxruntime  # here: the other classical models need no onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(artifact, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's pybind errors share no base class
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValidationFailed.from_errors([FieldError("file", f"not an ONNX model onnxruntime can load: {reason}")]) from error
        inputs = self.session.get_inputs()
        errors = []
        if len(inputs) != 1 or len(inputs[0].shape or ()) != 2 or inputs[0].type != "tensor(float)":
            errors.append(FieldError("file", "the classifier must take one float input of [N, features]"))
        elif isinstance(inputs[0].shape[1], int) and inputs[0].shape[1] != FEATURE_LENGTH:
            errors.append(FieldError("file", f"the classifier takes {inputs[0].shape[1]} features, colour-HOG gives {FEATURE_LENGTH}"))
        outputs = [node for node in self.session.get_outputs() if node.type == "tensor(float)" and len(node.shape or ()) == 2]
        named = [node for node in outputs if node.name == "probabilities"]
        chosen = named[0] if named else (outputs[0] if len(outputs) == 1 else None)
        if chosen is None:
            errors.append(FieldError("file", "the classifier needs one float output of [N, classes] named probabilities"))
        elif isinstance(chosen.shape[1], int) and chosen.shape[1] != len(classes):
            errors.append(FieldError("contract.settings.classes", f"lists {len(classes)} label ids, the classifier has {chosen.shape[1]} classes"))
        if errors:
            raise ValidationFailed.from_errors(errors)
        self.input_name, self.output_name = inputs[0].name, chosen.name
        self.classes_ = np.array(classes)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: features.astype(np.float32)})[0]


def _cascade_checked(settings: dict, errors: list[FieldError]) -> None:
    for key in ("face_cascade", "eye_cascade"):
        if not os.path.exists(os.path.join(cv2.data.haarcascades, settings[key])):
            errors.append(FieldError(f"contract.settings.{key}", f"OpenCV ships no cascade named {settings[key]!r}"))


def _classical_model(contract: dict, artifact: bytes | None) -> ClassicalModel:
    settings = dict(contract["settings"])
    errors: list[FieldError] = []
    if contract["model"] == "haar_faces":
        _cascade_checked(settings, errors)
        if errors:
            raise ValidationFailed.from_errors(errors)
        return HaarFaceDetector("haar_faces", "", settings.pop("face_cascade"), **settings)
    if contract["model"] == "contours":
        return ContourSegmenter("contours", "", settings["method"], work_side=settings["work_side"])
    if not artifact:
        raise ValidationFailed.from_errors([FieldError("file", "a colour_hog_classifier version needs its ONNX classifier file")])
    head = OnnxClassifierHead(bytes(artifact), settings["classes"])
    labels = {int(label): str(label) for label in settings["classes"]}
    return SceneClassifier("colour_hog_classifier", "", labels, lambda: head)


class OpenCvRuntime(Runtime):
    kind = "opencv"

    def __init__(self, artifact: bytes | None, *, contract: dict, labels: dict[int, str]):
        if not contract.get("task"):
            raise ValidationFailed.from_errors([FieldError("contract.task", "required: pass the contract through contract_validate first")])
        self.contract = contract_validate(contract, inference_type=contract["task"], runtime="opencv")
        self.labels = dict(labels)
        self.model = _classical_model(self.contract, artifact)
        answered = sorted(self.model.labels) if self.contract["model"] != "colour_hog_classifier" else self.contract["settings"]["classes"]
        missing = [label for label in answered if label not in self.labels]
        if self.labels and missing:
            raise ValidationFailed.from_errors([FieldError("labels", f"the {self.contract['model']} model answers label ids {', '.join(map(str, answered))}; the label map lacks {', '.join(map(str, missing))}")])
        self.model.predict(np.zeros((64, 64, 3), np.uint8))  # loads cascades (and fits nothing): the first answer is not slower
        # A ClassicalModel times itself into one attribute, so one prediction at a time per runtime.
        self._lock = threading.Lock()

    def predict(self, image: Image.Image) -> list[dict]:
        pixels = np.asarray(image.convert("RGB"))
        with self._lock:
            raw = self.model.predict(pixels)
        try:
            return shapes_from_wire(raw, task=self.contract["task"], frame=Frame.identity(image.width, image.height))
        except OutputsUnreadable as error:
            raise RuntimeFailed(str(error), kind=self.kind) from error


def runtime_open(*, artifact: bytes | None, endpoint: str | None, contract: dict, labels: dict[int, str],
                 threads: int | None = 1) -> OpenCvRuntime:
    """An OpenCvRuntime; ValidationFailed on field ``file``, ``labels`` or ``contract.*`` when it cannot run.

    ``threads`` sets OpenCV's thread pool for the whole process (None keeps OpenCV's choice): serving workers scale by
    processes, and a pool per process spin-waits against the others on a busy machine.
    """
    if threads is not None:
        cv2.setNumThreads(threads)
    if contract.get("model") == "rescored_detections":
        from serving.runtimes.rescored import runtime_open as rescored_open

        return rescored_open(artifact=artifact, contract=contract_validate(contract, inference_type="OBJECT_DETECTION",
                                                                            runtime="opencv"), labels=labels)
    return OpenCvRuntime(artifact, contract=contract, labels=labels)
