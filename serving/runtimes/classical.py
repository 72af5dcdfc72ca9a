"""The classical runtime: OpenCV and scikit-learn models (face cascades, contour segmentation, a colour-HOG
classifier), each producing Loupe's raw_predictions wire format."""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

RawPredictions = dict[str, list[Any]]


class ClassicalModel:
    """``predict`` takes an RGB uint8 array and times itself into ``last_latency`` (seconds).

    Instances are shared through ``demo_models``' cache, so ``last_latency`` assumes one caller at a time.
    """

    name: str
    version: str
    labels: dict[int, str]
    last_latency: float = 0.0

    def predict(self, image: np.ndarray) -> RawPredictions:
        self._prepare()  # one-off loading/training is not inference latency
        start = time.perf_counter()
        predictions = self._infer(image)
        self.last_latency = time.perf_counter() - start
        return predictions

    def _prepare(self) -> None:
        pass

    def _infer(self, image: np.ndarray) -> RawPredictions:
        raise NotImplementedError


def _gray_at(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Greyscale copy no longer than ``long_side``, and the factor from it back to ``image``."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, long_side / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray, 1.0 / scale


# --- object detection -------------------------------------------------------------------------

@functools.cache
def _cascade(filename: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + filename)
    assert not cascade.empty(), filename
    return cascade


def squash(weight: float, center: float, spread: float) -> float:
    """Logistic map of a cascade's final-stage weight to [0, 1].

    The weight is the sum of the last stage's weak classifiers for the best window of a group;
    its scale differs per cascade file, so ``center`` (weight scored 0.5) and ``spread`` are
    set per cascade from weights seen on true and false detections of the demo images.
    """
    return 1.0 / (1.0 + math.exp(min(50.0, -(weight - center) / spread)))


class HaarFaceDetector(ClassicalModel):
    """Viola-Jones faces on a downscaled, equalised frame, then eyes searched in each face's upper part."""

    labels = {1: "face", 2: "eye"}

    def __init__(self, name: str, version: str, face_cascade: str, *, scale_factor: float,
                 min_neighbors: int, min_size: int, center: float, spread: float,
                 eye_cascade: str = "haarcascade_eye.xml", eye_center: float = 1.5, eye_spread: float = 0.7,
                 work_side: int = 320) -> None:
        self.name, self.version = name, version
        self.face_cascade, self.eye_cascade = face_cascade, eye_cascade
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.center, self.spread = center, spread
        self.eye_center, self.eye_spread = eye_center, eye_spread
        self.work_side = work_side

    def _prepare(self) -> None:
        _cascade(self.face_cascade)
        _cascade(self.eye_cascade)

    def _infer(self, image: np.ndarray) -> RawPredictions:
        gray, back = _gray_at(image, self.work_side)
        gray = cv2.equalizeHist(gray)
        height, width = image.shape[:2]
        found: list[tuple[int, float, list[int]]] = []

        def add(label: int, x: int, y: int, w: int, h: int, score: float) -> None:
            top, left = min(int(y * back), height - 1), min(int(x * back), width - 1)
            bottom, right = min(round((y + h) * back), height - 1), min(round((x + w) * back), width - 1)
            found.append((label, round(score, 4), [top, left, bottom, right]))

        faces, _, weights = _cascade(self.face_cascade).detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        for (x, y, w, h), weight in zip(faces, weights):
            add(1, x, y, w, h, squash(float(weight), self.center, self.spread))
            upper = gray[y:y + h // 2 + h // 8, x:x + w]
            eyes, _, eye_weights = _cascade(self.eye_cascade).detectMultiScale3(
                upper, scaleFactor=1.1, minNeighbors=3, minSize=(max(8, w // 8),) * 2,
                maxSize=(w // 2, w // 2), outputRejectLevels=True)
            # A face has two eyes; more are duplicates or nostrils.
            for (ex, ey, ew, eh), eye_weight in sorted(zip(eyes, eye_weights), key=lambda e: -e[1])[:2]:
                add(2, x + ex, y + ey, ew, eh, squash(float(eye_weight), self.eye_center, self.eye_spread))
        # Parallel cascade evaluation can emit groups in any order; sort for reproducible payloads.
        found.sort(key=lambda f: (-f[1], f[0], f[2]))
        return {"detection_classes": [f[0] for f in found], "detection_scores": [f[1] for f in found],
                "detection_boxes": [f[2] for f in found]}


# --- segmentation -----------------------------------------------------------------------------

MAX_SHAPES = 15


class ContourSegmenter(ClassicalModel):
    """Threshold, morphological cleanup, outer contours simplified to polygons.

    Class: "coin" for round blobs (circularity 4*pi*area/perimeter^2 >= 0.75), else "other region".
    Score: solidity * contrast / (contrast + 25), with contrast the absolute difference of mean
    grey level inside the shape and in a ring around it; round, well-separated blobs score high.
    """

    labels = {1: "coin", 2: "other region"}

    def __init__(self, name: str, version: str, method: str, work_side: int = 400) -> None:
        assert method in ("otsu", "adaptive")
        self.name, self.version, self.method, self.work_side = name, version, method, work_side

    def _mask(self, gray: np.ndarray) -> np.ndarray:
        blurred = cv2.GaussianBlur(gray, (5, 5), 0)
        if self.method == "otsu":
            _, mask = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        else:
            # Local threshold copes with uneven lighting; the block spans about one coin (OpenCV's least is 3).
            block = max(3, max(gray.shape) // 8 | 1)
            mask = cv2.adaptiveThreshold(blurred, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
                                         cv2.THRESH_BINARY, block, -5)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)

    def _infer(self, image: np.ndarray) -> RawPredictions:
        gray, back = _gray_at(image, self.work_side)
        contours, _ = cv2.findContours(self._mask(gray), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = 0.0015 * gray.size
        contours = sorted((c for c in contours if cv2.contourArea(c) >= min_area),
                          key=cv2.contourArea, reverse=True)[:MAX_SHAPES]
        height, width = image.shape[:2]
        ring_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        classes, scores, masks = [], [], []
        for contour in contours:
            area, perimeter = cv2.contourArea(contour), cv2.arcLength(contour, True)
            hull_area = cv2.contourArea(cv2.convexHull(contour))
            x, y, w, h = cv2.boundingRect(contour)
            x0, y0 = max(0, x - 6), max(0, y - 6)
            roi = gray[y0:y + h + 6, x0:x + w + 6]
            inside = np.zeros(roi.shape, np.uint8)
            cv2.drawContours(inside, [contour - [x0, y0]], -1, 255, cv2.FILLED)
            ring = cv2.dilate(inside, ring_kernel) & ~inside
            contrast = abs(cv2.mean(roi, inside)[0] - cv2.mean(roi, ring)[0]) if ring.any() else 0.0
            polygon = cv2.approxPolyDP(contour, 0.01 * perimeter, True).reshape(-1, 2)
            if len(polygon) < 3:
                continue
            points = np.minimum(np.round(polygon * back), [width - 1, height - 1]).astype(int)
            classes.append(1 if 4 * math.pi * area / perimeter ** 2 >= 0.75 else 2)
            scores.append(round(area / max(hull_area, 1.0) * contrast / (contrast + 25), 4))
            masks.append(points.tolist())
        return {"detection_classes": classes, "detection_scores": scores, "detection_masks": masks}


# --- classification ---------------------------------------------------------------------------

# HOG over the whole squeezed frame: window, block, block stride, cell, orientations.
_HOG = cv2.HOGDescriptor((64, 64), (32, 32), (16, 16), (16, 16), 9)


def colour_hog_features(image: np.ndarray) -> np.ndarray:
    """HSV colour histogram (8x4x4) and a coarse HOG (16 px cells) of the frame squeezed to 64x64."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    shape = _HOG.compute(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)).ravel()
    return np.concatenate([hist / hist.sum(), shape]).astype(np.float32)


class SceneClassifier(ClassicalModel):
    """A fitted scikit-learn classifier over colour-HOG features of the whole frame; top-1 output.

    `fitted` returns the fitted estimator (with predict_proba and classes_); it is called at first use, so
    whoever builds the estimator decides when its fitting happens, and caches it.
    """

    def __init__(self, name: str, version: str, labels: dict[int, str], fitted: Callable[[], Any]) -> None:
        self.name, self.version, self.labels, self._fitted = name, version, dict(labels), fitted

    def _prepare(self) -> None:
        self._fitted()

    def _infer(self, image: np.ndarray) -> RawPredictions:
        pipeline = self._fitted()
        probabilities = pipeline.predict_proba(colour_hog_features(image)[None])[0]
        best = int(np.argmax(probabilities))
        return {"detection_classes": [int(pipeline.classes_[best])],
                "detection_scores": [round(float(probabilities[best]), 4)]}
