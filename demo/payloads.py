"""The demo's deployments and their ingest payloads in the monitoring API's JSON wire format."""
from __future__ import annotations

import base64
import contextlib
import functools
import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from demo.images import DemoImage, make_image
from demo.classical import (
    PIXELS_CONTRACT, ClassicalModel, demo_models, demo_registration, pixels_classifier_onnx,
)

DEPLOYMENT_TYPES = ("OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION")
_MIX = {"OBJECT_DETECTION": "faces", "SEGMENTATION": "coins", "CLASSIFICATION": "scenes"}
_NAMES = {"OBJECT_DETECTION": "faces-entrance", "SEGMENTATION": "coins-inspection",
          "CLASSIFICATION": "scene-classifier"}
_MIN_THRESHOLD = {"OBJECT_DETECTION": 0.3, "SEGMENTATION": 0.2, "CLASSIFICATION": 0.2}
DAY_SECONDS = 24 * 3600.0
WINDOW_SECONDS = 7 * DAY_SECONDS


def _deployment(deployment_type: str) -> dict[str, Any]:
    champion, shadow = demo_models(deployment_type)
    spec = {
        "name": _NAMES[deployment_type],
        "type": deployment_type,
        "labels": dict(champion.labels),
        # Served by the registry's opencv runtime: the contract says which classical model, `artifact` builds its file.
        "champion": {"model_name": champion.name, "version_name": champion.version, "runtime": "opencv",
                     "registration": functools.partial(demo_registration, champion)},
        "shadow": {"model_name": shadow.name, "version_name": shadow.version, "runtime": "opencv",
                   "registration": functools.partial(demo_registration, shadow)},
        "min_threshold": _MIN_THRESHOLD[deployment_type],
    }
    if deployment_type == "CLASSIFICATION":
        # Shown as the shadow once the demo's predictions are in: an ONNX model served by onnxruntime.
        spec["onnx_shadow"] = {"model_name": "pixels-logreg", "version_name": "1.0-16px", "runtime": "onnx",
                               "registration": lambda: (PIXELS_CONTRACT, pixels_classifier_onnx)}
    return spec


DEMO_DEPLOYMENTS: list[dict[str, Any]] = [_deployment(t) for t in DEPLOYMENT_TYPES]


@contextlib.contextmanager
def _opencv_single_threaded() -> Iterator[None]:
    # Measured on the 2-core box while other jobs ran: OpenCV's thread pool spin-waits under
    # contention (whole demo: 61 s on two threads, 37 s on one); the frames are too small to need it.
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def demo_payloads(deployment_type: str, count: int, seed: int = 0,
                  now: float | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``count`` ingest payloads, oldest first, timestamps spread over the 7 days before ``now``.

    Deterministic given ``seed`` and ``now`` except the measured latencies. The frames of the
    last day drift darker and noisier, so drift charts have something to show. While the
    generator is open OpenCV runs single-threaded (process-wide), restored when it closes.
    """
    if deployment_type not in DEPLOYMENT_TYPES:
        raise ValueError(f"unknown deployment type {deployment_type!r}")
    deployment_type = DEPLOYMENT_TYPES[DEPLOYMENT_TYPES.index(deployment_type)]  # a TextChoices member -> str
    champion, shadow = demo_models(deployment_type)
    now = time.time() if now is None else now
    rng = np.random.default_rng([seed, DEPLOYMENT_TYPES.index(deployment_type)])
    # Sorted uniform draws: a Poisson-like arrival pattern that is still in time order.
    offsets = np.sort(rng.uniform(0, WINDOW_SECONDS, count))
    with _opencv_single_threaded():
        for index, offset in enumerate(offsets):
            drift = max(0.0, (float(offset) - (WINDOW_SECONDS - DAY_SECONDS)) / DAY_SECONDS)
            image = make_image(index, seed, _MIX[deployment_type], drift)
            yield _payload(image, champion, shadow, now - WINDOW_SECONDS + float(offset))


def _payload(image: DemoImage, champion: ClassicalModel, shadow: ClassicalModel, timestamp: float) -> dict[str, Any]:
    pixels = image.pixels()  # score what the server will store, JPEG artefacts included
    raw = champion.predict(pixels)
    shadow_raw = shadow.predict(pixels)
    return {
        "filename": image.filename,
        "content_type": image.content_type,
        "height": image.height,
        "width": image.width,
        "image": base64.b64encode(image.content).decode("ascii"),
        "raw_predictions": raw,
        "latency": round(champion.last_latency, 6),
        "shadow_raw_predictions": shadow_raw,
        "shadow_latency": round(shadow.last_latency, 6),
        "source": image.source,
        "tags": list(image.tags),
        "metadata": dict(image.metadata),
        "timestamp": round(timestamp, 3),
    }
