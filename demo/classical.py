"""The demo's models: which classical runtime model is champion and shadow of each demo deployment, the scene
classifier's training on crops of the sample images, and how the registry serves them (opencv contracts, and an ONNX
pixels classifier built here)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from demo import images
from serving.runtimes.classical import (
    ClassicalModel, ContourSegmenter, HaarFaceDetector, SceneClassifier, colour_hog_features,
)

CATEGORIES = ("person", "animal", "object", "texture", "document", "scene")


@functools.cache
def training_crops(per_category: int = 60, seed: int = 7919) -> tuple[list[np.ndarray], list[int]]:
    """Augmented crops of the sample images labeled by category id (1-based in ``CATEGORIES``).

    The seed differs from any payload seed, so training never sees the exact frames it scores.
    """
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    labels: list[int] = []
    for label, category in enumerate(CATEGORIES, start=1):
        names = [n for n, c in images.SAMPLES.items() if c == category and n in images.MIXES["scenes"]]
        for i in range(per_category):
            crop = images.random_crop(images.sample_image(names[i % len(names)]), rng, 0.4)
            # Small long side: features squeeze frames to 64 px anyway, and it keeps training fast.
            crops.append(images.augment(crop, rng, 160)[0])
            labels.append(label)
    return crops, labels


@functools.cache
def _training_features() -> tuple[np.ndarray, list[int]]:
    crops, labels = training_crops()
    return np.stack([colour_hog_features(c) for c in crops]), labels


@functools.cache
def _fitted(kind: str) -> Any:
    # Imported here: scikit-learn is slow to import and only the classifier needs it.
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, labels = _training_features()
    # Strong regularisation: converges in well under a second and keeps probabilities modest.
    # Ball tree, not brute force: brute k-NN pays ~30 ms of thread-pool setup per single-image call.
    estimator = (LogisticRegression(C=0.05, max_iter=500) if kind == "logreg"
                 else KNeighborsClassifier(n_neighbors=9, weights="distance", algorithm="ball_tree"))
    return make_pipeline(StandardScaler(), estimator).fit(x, labels)


@functools.cache
def demo_models(deployment_type: str) -> tuple[ClassicalModel, ClassicalModel]:
    """(champion, shadow) for a deployment type; cached so cascades and fits happen once."""
    if deployment_type == "OBJECT_DETECTION":
        return (
            HaarFaceDetector("haar-frontalface-default", "4.14-sf1.2-n4-288px", "haarcascade_frontalface_default.xml",
                             scale_factor=1.2, min_neighbors=4, min_size=24, center=2.5, spread=1.5,
                             work_side=288),
            HaarFaceDetector("haar-frontalface-alt2", "4.14-sf1.25-n3-256px", "haarcascade_frontalface_alt2.xml",
                             scale_factor=1.25, min_neighbors=3, min_size=24, center=55.5, spread=0.6,
                             work_side=256),
        )
    if deployment_type == "SEGMENTATION":
        return (ContourSegmenter("otsu-contours", "1.0", "otsu"),
                ContourSegmenter("adaptive-threshold-contours", "1.0", "adaptive"))
    if deployment_type == "CLASSIFICATION":
        labels = {i: c for i, c in enumerate(CATEGORIES, start=1)}
        return (SceneClassifier("colour-hog-logreg", "1.0-c0.05", labels, functools.partial(_fitted, "logreg")),
                SceneClassifier("colour-hog-knn", "1.0-k9", labels, functools.partial(_fitted, "knn")))
    raise ValueError(f"unknown deployment type {deployment_type!r}")


# --- the demo's models in the registry ----------------------------------------------------------

def _onnx_of(pipeline: Any, features: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(pipeline, initial_types=[("features", FloatTensorType([None, features]))],
                           options={"zipmap": False}, target_opset=17).SerializeToString()


def demo_registration(model: ClassicalModel) -> tuple[dict, Callable[[], bytes | None]]:
    """How the registry serves a demo model with the opencv runtime: its contract, and a function that builds its
    file (the colour-HOG classifier's fitted head converted to ONNX; the cascades and contours need none)."""
    if isinstance(model, HaarFaceDetector):
        settings = {key: getattr(model, key) for key in (
            "face_cascade", "eye_cascade", "scale_factor", "min_neighbors", "min_size", "center", "spread",
            "eye_center", "eye_spread", "work_side")}
        return {"model": "haar_faces", "settings": settings}, lambda: None
    if isinstance(model, ContourSegmenter):
        return {"model": "contours", "settings": {"method": model.method, "work_side": model.work_side}}, lambda: None
    if isinstance(model, SceneClassifier):
        def head() -> bytes:
            pipeline = model._fitted()
            return _onnx_of(pipeline, _training_features()[0].shape[1])

        return {"model": "colour_hog_classifier", "settings": {"classes": list(range(1, len(CATEGORIES) + 1))}}, head
    raise ValueError(f"no registration for {type(model).__name__}")


# The ONNX version the demo shows as a shadow: a logistic regression on the frame squeezed to 16x16 RGB pixels.
PIXELS_SIDE = 16
PIXELS_CONTRACT = {"input": {"layout": "flat", "size": [PIXELS_SIDE, PIXELS_SIDE]},
                   "outputs": {"probabilities": "probabilities"}, "class_offset": 1}


def pixels_features(image: np.ndarray) -> np.ndarray:
    """What PIXELS_CONTRACT feeds the ONNX model: the frame stretched to 16x16 (Pillow, bilinear), /255, flattened."""
    from PIL import Image

    small = Image.fromarray(image).convert("RGB").resize((PIXELS_SIDE, PIXELS_SIDE), Image.BILINEAR)
    return (np.asarray(small, dtype=np.float32) / 255).reshape(-1)


def pixels_classifier_onnx() -> bytes:
    """The pixels classifier, trained on the scene classifier's crops and converted to ONNX with skl2onnx."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    crops, labels = training_crops()
    x = np.stack([pixels_features(crop) for crop in crops])
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000)).fit(x, labels)
    return _onnx_of(pipeline, x.shape[1])
