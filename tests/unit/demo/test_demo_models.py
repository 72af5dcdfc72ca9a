"""Demo content: payload validity, determinism, and that the classical models really work."""
from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import pytest
from PIL import Image

from demo import DEMO_DEPLOYMENTS, DEPLOYMENT_TYPES, demo_images, demo_models, demo_payloads
from demo.images import ODD_KINDS, make_image, sample_image
from demo.classical import CATEGORIES
from demo.payloads import WINDOW_SECONDS

NOW = 1_800_000_000.0
LABELS = {d["type"]: d["labels"] for d in DEMO_DEPLOYMENTS}


@pytest.fixture(scope="module")
def batches() -> dict[str, list[dict[str, Any]]]:
    return {t: list(demo_payloads(t, 24, seed=1, now=NOW)) for t in DEPLOYMENT_TYPES}


def check_predictions(raw: dict[str, list], deployment_type: str, width: int, height: int) -> None:
    classes, scores = raw["detection_classes"], raw["detection_scores"]
    assert len(classes) == len(scores)
    assert all(isinstance(c, int) and c in LABELS[deployment_type] for c in classes)
    assert all(isinstance(s, float) and math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)
    if deployment_type == "CLASSIFICATION":
        assert set(raw) == {"detection_classes", "detection_scores"} and len(classes) == 1
    elif deployment_type == "OBJECT_DETECTION":
        assert len(raw["detection_boxes"]) == len(classes)
        for top, left, bottom, right in raw["detection_boxes"]:
            assert all(isinstance(v, int) for v in (top, left, bottom, right))
            assert 0 <= top <= bottom <= height - 1 and 0 <= left <= right <= width - 1
    else:
        assert len(raw["detection_masks"]) == len(classes) <= 15
        for polygon in raw["detection_masks"]:
            assert len(polygon) >= 3
            assert all(isinstance(x, int) and isinstance(y, int) for x, y in polygon)
            assert all(0 <= x <= width - 1 and 0 <= y <= height - 1 for x, y in polygon)


@pytest.mark.parametrize("deployment_type", DEPLOYMENT_TYPES)
def test_payloads_follow_the_wire_format(batches: dict, deployment_type: str) -> None:
    batch = batches[deployment_type]
    assert len(batch) == 24
    assert len({p["filename"] for p in batch}) == 24
    for p in batch:
        decoded = Image.open(io.BytesIO(base64.b64decode(p["image"])))
        assert decoded.size == (p["width"], p["height"])
        assert decoded.format == {"image/jpeg": "JPEG", "image/png": "PNG"}[p["content_type"]]
        assert 320 <= max(p["width"], p["height"]) <= 800
        assert p["source"] in ("camera-1", "camera-2", "upload")
        assert p["tags"] and all(isinstance(t, str) for t in p["tags"])
        assert isinstance(p["metadata"], dict)
        assert 0 < p["latency"] < 5 and 0 < p["shadow_latency"] < 5
        assert NOW - WINDOW_SECONDS <= p["timestamp"] <= NOW
        check_predictions(p["raw_predictions"], deployment_type, p["width"], p["height"])
        check_predictions(p["shadow_raw_predictions"], deployment_type, p["width"], p["height"])
    assert [p["timestamp"] for p in batch] == sorted(p["timestamp"] for p in batch)
    # Every model finds something on most frames of its own deployment.
    assert sum(bool(p["raw_predictions"]["detection_classes"]) for p in batch) >= 8


@pytest.mark.parametrize("deployment_type", DEPLOYMENT_TYPES)
def test_ingest_parser_accepts_the_predictions(batches: dict, deployment_type: str) -> None:
    from dashboard.shapes import parse_raw_predictions  # the server's own rules, imported with Django set up

    for p in batches[deployment_type]:
        for key in ("raw_predictions", "shadow_raw_predictions"):
            parsed = parse_raw_predictions(p[key], inference_type=deployment_type, class_ids=LABELS[deployment_type],
                                           width=p["width"], height=p["height"], prefix=key)
            assert not parsed.errors and not parsed.warnings, (p["filename"], parsed.errors, parsed.warnings)
            assert len(parsed.shapes) == len(p[key]["detection_classes"])


def test_deployments_match_their_models() -> None:
    assert [d["type"] for d in DEMO_DEPLOYMENTS] == list(DEPLOYMENT_TYPES)
    assert len({d["name"] for d in DEMO_DEPLOYMENTS}) == 3
    for deployment in DEMO_DEPLOYMENTS:
        champion, shadow = demo_models(deployment["type"])
        assert deployment["labels"] == champion.labels == shadow.labels
        assert min(deployment["labels"]) == 1
        assert (deployment["champion"]["model_name"], deployment["champion"]["version_name"]) == (champion.name, champion.version)
        assert deployment["champion"]["runtime"] == deployment["shadow"]["runtime"] == "opencv"
        assert deployment["shadow"]["model_name"] != champion.name
        assert 0 <= deployment["min_threshold"] < 1


@pytest.mark.parametrize("deployment_type", DEPLOYMENT_TYPES)
def test_same_seed_gives_same_payloads(deployment_type: str) -> None:
    def strip(p: dict) -> dict:
        return {k: v for k, v in p.items() if k not in ("latency", "shadow_latency")}

    first = [strip(p) for p in demo_payloads(deployment_type, 6, seed=7, now=NOW)]
    again = [strip(p) for p in demo_payloads(deployment_type, 6, seed=7, now=NOW)]
    other = [strip(p) for p in demo_payloads(deployment_type, 6, seed=8, now=NOW)]
    assert first == again
    assert first != other


def test_haar_champion_finds_the_astronauts_face() -> None:
    astronaut = np.ascontiguousarray(sample_image("astronaut"))
    face = (60, 165, 170, 280)  # top, left, bottom, right of her face in the 512x512 original

    def iou(a: list[int], b: tuple[int, ...]) -> float:
        h = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        w = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
        return h * w / (area(a) + area(b) - h * w)

    for model in demo_models("OBJECT_DETECTION"):
        raw = model.predict(astronaut)
        faces = [(b, s) for c, b, s in zip(raw["detection_classes"], raw["detection_boxes"],
                                           raw["detection_scores"]) if c == 1]
        assert any(iou(box, face) > 0.4 and score > 0.5 for box, score in faces), (model.name, faces)
        assert model.last_latency > 0


def test_classifiers_beat_chance_on_held_out_frames() -> None:
    frames = [make_image(i, seed=4242, mix="scenes", odd_share=0.0) for i in range(90)]
    truth = [CATEGORIES.index(f.metadata["category"]) + 1 for f in frames]
    champion, shadow = demo_models("CLASSIFICATION")
    for model, floor in ((champion, 0.7), (shadow, 0.45)):
        predicted = [model.predict(f.pixels())["detection_classes"][0] for f in frames]
        accuracy = np.mean(np.array(predicted) == np.array(truth))
        assert accuracy >= floor, (model.name, accuracy)  # chance is 1/6


def test_a_few_odd_frames_and_a_late_drift() -> None:
    frames = list(demo_images(100, seed=3, mix="scenes"))
    odd = [f for f in frames if "anomaly" in f.metadata]
    assert len(odd) == 5
    assert {f.metadata["anomaly"] for f in odd} <= set(ODD_KINDS)
    dark = [f.pixels().mean() for f in odd if f.metadata["anomaly"] == "very-dark"]
    assert all(2 < mean < 30 for mean in dark)  # dark, but not black: a reviewer still sees what is in it
    assert [f.filename for f in frames[:10]] == [f.filename for f in demo_images(10, seed=3, mix="scenes")]
    assert all(f.metadata["drift"] == 0 for f in frames[:85])
    assert all(f.metadata["drift"] > 0 for f in frames[-10:])
    brightness = [f.pixels().mean() for f in frames if "anomaly" not in f.metadata]
    assert np.mean(brightness[-12:]) < np.mean(brightness[:80])
