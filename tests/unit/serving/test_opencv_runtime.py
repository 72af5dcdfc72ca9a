"""The opencv runtime on real classical models: OpenCV's own Haar cascades, contour segmentation, and a colour-HOG
classifier fitted here with scikit-learn and converted to ONNX."""
import io

import numpy as np
import pytest
from PIL import Image

from dashboard.errors import ValidationFailed
from demo.classical import demo_models
from demo.images import make_image
from serving.contracts import contract_validate
from serving.runtimes import runtime_load
from serving.runtimes.classical import ContourSegmenter, HaarFaceDetector, colour_hog_features
from serving.runtimes.decoding import Frame, shapes_from_wire

HAAR = {"face_cascade": "haarcascade_frontalface_default.xml", "scale_factor": 1.2, "min_neighbors": 4, "min_size": 24,
        "center": 2.5, "spread": 1.5, "work_side": 288}


def opencv_runtime(contract: dict, *, inference_type: str, labels: dict | None = None, artifact: bytes | None = None):
    clean = contract_validate(contract, inference_type=inference_type, runtime="opencv")
    return runtime_load("opencv", artifact=artifact, endpoint=None, contract=clean, labels=labels or {})


def decoded(image) -> Image.Image:
    return Image.open(io.BytesIO(image.content))


def test_haar_faces_answers_what_the_classical_detector_answers():
    runtime = opencv_runtime({"model": "haar_faces", "settings": HAAR}, inference_type="OBJECT_DETECTION",
                             labels={1: "face", 2: "eye"})
    detector = HaarFaceDetector("reference", "", HAAR["face_cascade"], **{k: v for k, v in HAAR.items() if k != "face_cascade"})
    found = 0
    for index in (0, 2, 3, 7):  # demo frames with faces (an astronaut, pasted LFW faces)
        image = make_image(index, 0, "faces")
        expected = shapes_from_wire(detector.predict(image.pixels()), task="OBJECT_DETECTION",
                                    frame=Frame.identity(image.width, image.height))
        shapes = runtime.predict(decoded(image))
        assert shapes == expected
        found += sum(shape["label_id"] == 1 for shape in shapes)
    assert found >= 4  # the comparison above is not of empty lists


def test_contours_segment_the_coins_into_polygons():
    runtime = opencv_runtime({"model": "contours", "settings": {"method": "otsu"}}, inference_type="SEGMENTATION",
                             labels={1: "coin", 2: "other region"})
    image = make_image(0, 0, "coins")
    shapes = runtime.predict(decoded(image))
    expected = ContourSegmenter("reference", "", "otsu").predict(image.pixels())
    assert [shape["label_id"] for shape in shapes] == expected["detection_classes"]
    assert [[list(map(int, point)) for point in shape["points"]] for shape in shapes] == expected["detection_masks"]
    assert shapes and all(shape["type"] == "polygon" and len(shape["points"]) >= 3 for shape in shapes)


def tinted(rng: np.random.Generator, kind: int) -> np.ndarray:
    base = rng.integers(0, 120, size=(48, 64, 3))
    base[:, :, kind] += 110
    return np.clip(base, 0, 255).astype(np.uint8)


def test_a_colour_hog_classifier_with_an_onnx_head_agrees_with_scikit_learn():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    images = [(tinted(rng, kind), kind + 5) for kind in (0, 1, 2) for _ in range(20)]
    features = np.stack([colour_hog_features(image) for image, _ in images])
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, [label for _, label in images])
    head = convert_sklearn(pipeline, initial_types=[("features", FloatTensorType([None, features.shape[1]]))],
                           options={"zipmap": False}, target_opset=17).SerializeToString()
    runtime = opencv_runtime({"model": "colour_hog_classifier", "settings": {"classes": [5, 6, 7]}},
                             inference_type="CLASSIFICATION", labels={5: "red", 6: "green", 7: "blue"}, artifact=head)
    unseen = [tinted(rng, kind) for kind in (2, 0, 1)]
    for pixels, probabilities in zip(unseen, pipeline.predict_proba(np.stack([colour_hog_features(p) for p in unseen]))):
        (shape,) = runtime.predict(Image.fromarray(pixels))
        assert shape["label_id"] == pipeline.classes_[probabilities.argmax()]
        assert shape["score"] == pytest.approx(probabilities.max(), abs=1e-4)
    assert {runtime.predict(Image.fromarray(p))[0]["label_id"] for p in unseen} == {5, 6, 7}


@pytest.mark.parametrize("contract, inference_type, kwargs, field", [
    ({"model": "yolo"}, "OBJECT_DETECTION", {}, "contract.model"),
    ({"model": "contours"}, "OBJECT_DETECTION", {}, "contract.model"),
    ({"model": "haar_faces", "settings": {"face_cascade": "haarcascade_nothing.xml"}}, "OBJECT_DETECTION", {}, "contract.settings.face_cascade"),
    ({"model": "haar_faces", "settings": {"face_cascade": "../../etc/passwd.xml"}}, "OBJECT_DETECTION", {}, "contract.settings.face_cascade"),
    ({"model": "haar_faces", "settings": {"scale_factor": 1}}, "OBJECT_DETECTION", {}, "contract.settings.scale_factor"),
    ({"model": "contours", "settings": {"method": "watershed"}}, "SEGMENTATION", {}, "contract.settings.method"),
    ({"model": "colour_hog_classifier"}, "CLASSIFICATION", {}, "contract.settings.classes"),
    ({"model": "colour_hog_classifier", "settings": {"classes": [1]}}, "CLASSIFICATION", {}, "file"),
    ({"model": "colour_hog_classifier", "settings": {"classes": [1]}}, "CLASSIFICATION", {"artifact": b"not onnx"}, "file"),
    ({"model": "haar_faces"}, "OBJECT_DETECTION", {"labels": {1: "face"}}, "labels"),
])
def test_a_contract_or_file_the_runtime_cannot_open_names_its_field(contract, inference_type, kwargs, field):
    with pytest.raises(ValidationFailed) as raised:
        opencv_runtime(contract, inference_type=inference_type, **kwargs)
    assert field in {error.field for error in raised.value.errors}


def test_the_demo_detectors_settings_make_a_valid_contract():
    champion, _ = demo_models("OBJECT_DETECTION")
    settings = {key: getattr(champion, key) for key in HAAR if key != "face_cascade"}
    clean = contract_validate({"model": "haar_faces", "settings": {"face_cascade": champion.face_cascade, **settings}},
                              inference_type="OBJECT_DETECTION", runtime="opencv")
    assert clean["settings"]["eye_cascade"] == champion.eye_cascade and clean["task"] == "OBJECT_DETECTION"
