"""Monitoring ingest through HTTP: POST /api/deployment/{id}/predictions and /api/prediction/{id}/shadow.

Requests go the seeds' way (a JSON text with no Content-Type) with a JWT from POST /api/auth/login.
Bad input must be answered with a JSON error naming the field, and must store nothing at all.
"""
import base64
import functools
import io
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from dashboard.shapes import shapes_to_raw
from dashboard.models import Data, PredictedAsset, Prediction
from tests.fixtures import VALID_SHADOW_PREDICTIONS

DET, SEG, CLS = "OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION"


# ---------------------------------------------------------------- helpers and fixtures


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def stored(settings) -> dict:
    """Everything an ingest could leave behind."""
    return {
        "assets": PredictedAsset.objects.count(),
        "predictions": Prediction.objects.count(),
        "data": Data.objects.count(),
        "files": len(media_files(settings)),
    }


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def error_fields(response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


class _LazyJwts(dict):
    def __init__(self, login):
        super().__init__()
        self.login = login

    def __missing__(self, deployment_type):
        self[deployment_type] = self.login(deployment_type)
        return self[deployment_type]


@pytest.fixture
def jwts(deployments, api_tokens, api_login):
    """type -> a JWT of the ML lead (who may ingest) bound to that deployment; logs in on first use."""
    return _LazyJwts(lambda deployment_type: api_login(api_tokens["ml_lead"], deployments[deployment_type]))


@pytest.fixture
def send(deployments, jwts, monitor_post):
    """send(type, body, **headers): POST a monitored prediction to that type's deployment."""

    def post(deployment_type, body, **headers):
        return monitor_post(deployments[deployment_type], body, jwts[deployment_type], **headers)

    return post


@functools.cache
def bomb_png() -> bytes:
    """A 20000x20000 PNG (400 million pixels) that weighs a few kilobytes: only its header is honest."""
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG", compress_level=9)
    content = buffer.getvalue()
    assert len(content) < 100_000
    return content


@pytest.fixture
def kit(monitor_payload, jpeg_bytes, png_bytes):
    return SimpleNamespace(payload=monitor_payload, jpeg=jpeg_bytes, png=png_bytes, bomb=bomb_png)


def with_raw(kit, deployment_type, **raw_changes):
    payload = kit.payload(deployment_type)
    payload["raw_predictions"].update(raw_changes)
    return payload


def json_text_with(payload: dict, placeholder: str, literal: str) -> str:
    """The payload's JSON text with the string "placeholder" replaced by a bare literal (NaN, Infinity, 1e999...)."""
    text = json.dumps(payload)
    assert f'"{placeholder}"' in text
    return text.replace(f'"{placeholder}"', literal)


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, "GIF")
    return buffer.getvalue()


HUGE_INT = "1" + "0" * 400  # valid JSON, but no float can hold it

# ---------------------------------------------------------------- the bad-input corpus

# (id, deployment type, body builder(kit) -> dict or JSON text, status, field the errors must name)
BAD_INPUTS = [
    # filename
    ("filename-missing", DET, lambda k: k.payload(DET, filename=...), 400, "filename"),
    ("filename-number", DET, lambda k: k.payload(DET, filename=123), 400, "filename"),
    ("filename-empty", DET, lambda k: k.payload(DET, filename="  "), 400, "filename"),
    ("filename-list", DET, lambda k: k.payload(DET, filename=["a.jpg"]), 400, "filename"),
    ("filename-only-a-folder", DET, lambda k: k.payload(DET, filename="frames/"), 400, "filename"),
    ("filename-too-long", DET, lambda k: k.payload(DET, filename="x" * 300 + ".jpg"), 400, "filename"),
    # content_type
    ("content-type-missing", DET, lambda k: k.payload(DET, content_type=...), 400, "content_type"),
    ("content-type-gif", DET, lambda k: k.payload(DET, content_type="image/gif"), 400, "content_type"),
    ("content-type-number", DET, lambda k: k.payload(DET, content_type=7), 400, "content_type"),
    # width / height
    ("width-missing", DET, lambda k: k.payload(DET, width=...), 400, "width"),
    ("width-string", DET, lambda k: k.payload(DET, width="64"), 400, "width"),
    ("width-float", DET, lambda k: k.payload(DET, width=64.5), 400, "width"),
    ("width-zero", DET, lambda k: k.payload(DET, width=0), 400, "width"),
    ("width-bool", DET, lambda k: k.payload(DET, width=True), 400, "width"),
    ("height-missing", DET, lambda k: k.payload(DET, height=...), 400, "height"),
    ("height-negative", DET, lambda k: k.payload(DET, height=-48), 400, "height"),
    ("height-list", DET, lambda k: k.payload(DET, height=[48]), 400, "height"),
    ("height-huge", DET, lambda k: k.payload(DET, height=10**9), 400, "height"),
    # image
    ("image-missing", DET, lambda k: k.payload(DET, image=...), 400, "image"),
    ("image-number", DET, lambda k: k.payload(DET, image=12345), 400, "image"),
    ("image-empty", DET, lambda k: k.payload(DET, image=""), 400, "image"),
    ("image-invalid-base64", DET, lambda k: k.payload(DET, image="this is *not* base64!"), 400, "image"),
    ("image-not-an-image", DET, lambda k: k.payload(DET, image=b64(b"just some text, not pixels" * 20)), 400, "image"),
    ("image-truncated-jpeg", DET, lambda k: k.payload(DET, image=b64(k.jpeg(64, 48, seed=5)[:-200])), 400, "image"),
    ("image-truncated-png", DET, lambda k: k.payload(DET, image=b64(k.png(64, 48, seed=5)[:-40]), content_type="png"), 400, "image"),
    ("image-gif", DET, lambda k: k.payload(DET, image=b64(gif_bytes()), content_type="image/png"), 400, "image"),
    ("image-decompression-bomb", DET, lambda k: k.payload(DET, image=b64(k.bomb()), content_type="image/png"), 413, "image"),
    # latency
    ("latency-missing", DET, lambda k: k.payload(DET, latency=...), 400, "latency"),
    ("latency-string", DET, lambda k: k.payload(DET, latency="0.2"), 400, "latency"),
    ("latency-negative", DET, lambda k: k.payload(DET, latency=-0.1), 400, "latency"),
    ("latency-bool", DET, lambda k: k.payload(DET, latency=True), 400, "latency"),
    ("latency-nan", DET, lambda k: json_text_with(k.payload(DET, latency="@"), "@", "NaN"), 400, "latency"),
    ("latency-infinity", DET, lambda k: json_text_with(k.payload(DET, latency="@"), "@", "Infinity"), 400, "latency"),
    ("latency-huge-integer", DET, lambda k: json_text_with(k.payload(DET, latency="@"), "@", HUGE_INT), 400, "latency"),
    # source, tags, metadata, timestamp
    ("source-number", DET, lambda k: k.payload(DET, source=5), 400, "source"),
    ("tags-string", DET, lambda k: k.payload(DET, tags="entrance,night"), 400, "tags"),
    ("tags-object", DET, lambda k: k.payload(DET, tags={"a": 1}), 400, "tags"),
    ("tags-number-item", DET, lambda k: k.payload(DET, tags=["ok", 3]), 400, "tags[1]"),
    ("tags-empty-item", DET, lambda k: k.payload(DET, tags=[""]), 400, "tags[0]"),
    ("metadata-list", DET, lambda k: k.payload(DET, metadata=[1, 2]), 400, "metadata"),
    ("metadata-string", DET, lambda k: k.payload(DET, metadata="camera=1"), 400, "metadata"),
    ("metadata-nan", DET, lambda k: json_text_with(k.payload(DET, metadata={"gain": "@"}), "@", "NaN"), 400, "metadata"),
    ("timestamp-string", DET, lambda k: k.payload(DET, timestamp="yesterday"), 400, "timestamp"),
    ("timestamp-negative", DET, lambda k: k.payload(DET, timestamp=-5), 400, "timestamp"),
    ("timestamp-bool", DET, lambda k: k.payload(DET, timestamp=True), 400, "timestamp"),
    ("timestamp-nan", DET, lambda k: json_text_with(k.payload(DET, timestamp="@"), "@", "NaN"), 400, "timestamp"),
    ("timestamp-huge-integer", DET, lambda k: json_text_with(k.payload(DET, timestamp="@"), "@", HUGE_INT), 400, "timestamp"),
    # raw_predictions as a whole
    ("raw-missing", DET, lambda k: k.payload(DET, raw_predictions=...), 400, "raw_predictions"),
    ("raw-list", DET, lambda k: k.payload(DET, raw_predictions=[[1, 2]]), 400, "raw_predictions"),
    ("raw-string", DET, lambda k: k.payload(DET, raw_predictions="car"), 400, "raw_predictions"),
    ("raw-missing-boxes", DET, lambda k: k.payload(DET, raw_predictions={"detection_classes": [], "detection_scores": []}), 400, "raw_predictions.detection_boxes"),
    ("raw-missing-scores", CLS, lambda k: k.payload(CLS, raw_predictions={"detection_classes": [1]}), 400, "raw_predictions.detection_scores"),
    ("raw-missing-masks", SEG, lambda k: k.payload(SEG, raw_predictions={"detection_classes": [], "detection_scores": []}), 400, "raw_predictions.detection_masks"),
    ("raw-classes-not-a-list", CLS, lambda k: with_raw(k, CLS, detection_classes=2), 400, "raw_predictions.detection_classes"),
    ("incoherent-lists", DET, lambda k: with_raw(k, DET, detection_scores=[0.9]), 400, "raw_predictions"),
    ("incoherent-masks", SEG, lambda k: with_raw(k, SEG, detection_classes=[3, 1]), 400, "raw_predictions"),
    # classes and scores
    ("unknown-class-id", DET, lambda k: with_raw(k, DET, detection_classes=[1, 9]), 400, "raw_predictions.detection_classes[1]"),
    ("bool-class-id", DET, lambda k: with_raw(k, DET, detection_classes=[True, 2]), 400, "raw_predictions.detection_classes[0]"),
    ("string-class-id", CLS, lambda k: with_raw(k, CLS, detection_classes=["2"]), 400, "raw_predictions.detection_classes[0]"),
    ("score-nan", DET, lambda k: json_text_with(with_raw(k, DET, detection_scores=[0.9, "@"]), "@", "NaN"), 400, "raw_predictions.detection_scores[1]"),
    ("score-infinity", DET, lambda k: json_text_with(with_raw(k, DET, detection_scores=["@", 0.9]), "@", "Infinity"), 400, "raw_predictions.detection_scores[0]"),
    ("score-minus-infinity", CLS, lambda k: json_text_with(with_raw(k, CLS, detection_scores=["@"]), "@", "-Infinity"), 400, "raw_predictions.detection_scores[0]"),
    ("score-negative", DET, lambda k: with_raw(k, DET, detection_scores=[0.9, -0.2]), 400, "raw_predictions.detection_scores[1]"),
    ("score-over-one", SEG, lambda k: with_raw(k, SEG, detection_scores=[1.01]), 400, "raw_predictions.detection_scores[0]"),
    ("score-string", CLS, lambda k: with_raw(k, CLS, detection_scores=["0.8"]), 400, "raw_predictions.detection_scores[0]"),
    ("score-huge-integer", CLS, lambda k: json_text_with(with_raw(k, CLS, detection_scores=["@"]), "@", HUGE_INT), 400, "raw_predictions.detection_scores[0]"),
    # boxes
    ("inverted-box-of-the-seeds", DET, lambda k: with_raw(k, DET, detection_boxes=[[10, 5, 30, 25], [190, 100, 50, 90]]), 400, "raw_predictions.detection_boxes[1]"),
    ("box-of-3-numbers", DET, lambda k: with_raw(k, DET, detection_boxes=[[10, 5, 30], [2, 3, 40, 60]]), 400, "raw_predictions.detection_boxes[0]"),
    ("box-of-strings", DET, lambda k: with_raw(k, DET, detection_boxes=[[10, 5, 30, 25], ["2", "3", "40", "60"]]), 400, "raw_predictions.detection_boxes[1]"),
    ("box-nan", DET, lambda k: json_text_with(with_raw(k, DET, detection_boxes=[[10, 5, 30, 25], [2, "@", 40, 60]]), "@", "NaN"), 400, "raw_predictions.detection_boxes[1]"),
    ("box-huge-integer", DET, lambda k: json_text_with(with_raw(k, DET, detection_boxes=[[10, 5, 30, 25], [2, 3, "@", 60]]), "@", HUGE_INT), 400, "raw_predictions.detection_boxes[1]"),
    # polygons
    ("polygon-of-2-points", SEG, lambda k: with_raw(k, SEG, detection_masks=[[[5, 5], [30, 5]]]), 400, "raw_predictions.detection_masks[0]"),
    ("polygon-flat-odd-length", SEG, lambda k: with_raw(k, SEG, detection_masks=[[5, 5, 30, 5, 30]]), 400, "raw_predictions.detection_masks[0]"),
    ("polygon-flat-of-2-points", SEG, lambda k: with_raw(k, SEG, detection_masks=[[5, 5, 30, 5]]), 400, "raw_predictions.detection_masks[0]"),
    ("polygon-bad-point", SEG, lambda k: with_raw(k, SEG, detection_masks=[[[5, 5], [30, 5], [30]]]), 400, "raw_predictions.detection_masks[0][2]"),
    ("polygon-huge-integer", SEG, lambda k: json_text_with(with_raw(k, SEG, detection_masks=[[[5, 5], [30, "@"], [30, 20]]]), "@", HUGE_INT), 400, "raw_predictions.detection_masks[0][1]"),
    # shadow
    ("shadow-without-latency", DET, lambda k: k.payload(DET, with_shadow=True, shadow_latency=...), 400, "shadow_latency"),
    ("shadow-latency-without-shadow", DET, lambda k: k.payload(DET, shadow_latency=0.3), 400, "shadow_raw_predictions"),
    ("shadow-latency-negative", DET, lambda k: k.payload(DET, with_shadow=True, shadow_latency=-1), 400, "shadow_latency"),
    ("shadow-unknown-class", SEG, lambda k: k.payload(SEG, with_shadow=True, shadow_raw_predictions={"detection_classes": [8], "detection_scores": [0.5], "detection_masks": [[[1, 1], [9, 1], [9, 9]]]}), 400, "shadow_raw_predictions.detection_classes[0]"),
    ("shadow-inverted-box", DET, lambda k: k.payload(DET, with_shadow=True, shadow_raw_predictions={"detection_classes": [1], "detection_scores": [0.5], "detection_boxes": [[190, 100, 50, 90]]}), 400, "shadow_raw_predictions.detection_boxes[0]"),
    ("shadow-not-an-object", CLS, lambda k: k.payload(CLS, with_shadow=True, shadow_raw_predictions=[1]), 400, "shadow_raw_predictions"),
    # the body itself
    ("body-not-json", DET, lambda k: "filename=frame.jpg&width=64", 400, "body"),
    ("body-truncated-json", DET, lambda k: json.dumps(k.payload(DET))[:-10], 400, "body"),
    ("body-json-array", DET, lambda k: json.dumps([k.payload(DET)]), 400, "body"),
    ("body-json-string", DET, lambda k: '"hello"', 400, "body"),
    ("body-empty", DET, lambda k: "", 400, "body"),
    ("body-not-utf8", DET, lambda k: b"\xff\xfe{not json", 400, "body"),
    ("body-deeply-nested", DET, lambda k: "[" * 100_000 + "]" * 100_000, 400, "body"),
]


@pytest.mark.parametrize(
    "deployment_type, build, status, field", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(kit, send, settings, deployment_type, build, status, field):
    before = stored(settings)
    response = send(deployment_type, build(kit))
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert field in error_fields(response), body
    assert stored(settings) == before


def test_the_seeds_detection_example_is_refused_for_its_inverted_boxes(send, monitor_payload, settings):
    # Exactly the seed's prediction (in a 600x800 frame): the second and third boxes have bottom < top.
    raw = {
        "detection_classes": [1, 2, 1],
        "detection_boxes": [[128, 200, 159, 240], [190, 100, 50, 90], [145, 50, 24, 76]],
        "detection_scores": [0.9, 0.7, 0.4],
    }
    response = send(DET, monitor_payload(DET, raw_predictions=raw, width=600, height=800))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"field": "raw_predictions.detection_boxes[1]", "message": "bottom (50) < top (190)"} in errors
    assert "raw_predictions.detection_boxes[2]" in error_fields(response)
    assert stored(settings)["assets"] == 0


def test_every_error_of_a_request_is_reported_at_once(send, monitor_payload):
    payload = monitor_payload(DET, filename=..., latency=-1, tags=[1])
    payload["raw_predictions"]["detection_classes"] = [1, 9]
    response = send(DET, payload)
    assert response.status_code == 400
    assert {"filename", "latency", "tags[0]", "raw_predictions.detection_classes[1]"} <= set(error_fields(response))
    assert "more" in response.json()["message"]


def test_an_oversize_body_is_refused_with_413_json(send, monitor_payload, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    payload = monitor_payload(DET)
    assert len(json.dumps(payload)) > 2_000
    before = stored(settings)
    response = send(DET, payload)
    assert response.status_code == 413
    assert response.json()["message"] and error_fields(response) == ["body"]
    assert stored(settings) == before


def test_an_image_over_the_byte_limit_is_refused_with_413(send, monitor_payload, settings):
    settings.LOUPE_MAX_IMAGE_BYTES = 500
    before = stored(settings)
    response = send(DET, monitor_payload(DET))
    assert response.status_code == 413 and error_fields(response) == ["image"]
    assert stored(settings) == before


def test_a_shadow_for_a_deployment_without_shadow_model_is_refused(deployments, send, monitor_payload, settings):
    deployment = deployments[DET]
    deployment.shadow = None
    deployment.save()
    before = stored(settings)
    response = send(DET, monitor_payload(DET, with_shadow=True))
    assert response.status_code == 400 and "shadow_raw_predictions" in error_fields(response)
    assert stored(settings) == before


# ---------------------------------------------------------------- happy paths

EXPECTED_CHAMPION_SHAPES = {
    DET: [
        {"type": "rectangle", "label_id": 1, "score": 0.9, "x": 5, "y": 10, "w": 20, "h": 20},
        {"type": "rectangle", "label_id": 2, "score": 0.7, "x": 3, "y": 2, "w": 57, "h": 38},
    ],
    SEG: [{"type": "polygon", "label_id": 3, "score": 0.6, "points": [[5, 5], [30, 5], [30, 20], [5, 20]]}],
    CLS: [{"type": "classification", "label_id": 2, "score": 0.8}],
}


@pytest.mark.parametrize("deployment_type", [DET, SEG, CLS])
def test_a_valid_prediction_is_stored_whole(deployments, send, monitor_payload, jpeg_bytes, settings, deployment_type):
    deployment = deployments[deployment_type]
    image = jpeg_bytes(64, 48, seed=42)
    before = stored(settings)

    response = send(deployment_type, monitor_payload(deployment_type, image=image, with_shadow=True, timestamp=1700000000.5))

    assert response.status_code == 201, response.content
    body = response.json()
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["warnings"] == [] and body["status"] == "TO_REVIEW"
    after = stored(settings)
    assert after == {"assets": before["assets"] + 1, "predictions": before["predictions"] + 2,
                     "data": before["data"] + 1, "files": before["files"] + 1}

    asset = PredictedAsset.objects.get(oracle_prediction_id=body["id"])
    assert (str(asset.id), str(asset.data_id)) == (body["predicted_asset_id"], body["data_id"])
    assert asset.deployment == deployment
    assert (asset.width, asset.height, asset.latency) == (64, 48, 0.25)
    assert asset.timestamp.timestamp() == 1700000000.5
    champion = asset.predictions.get(is_shadow=False)
    shadow = asset.predictions.get(is_shadow=True)
    assert champion.model_version_id == deployment.champion_id and champion.latency == 0.25
    assert champion.shapes == EXPECTED_CHAMPION_SHAPES[deployment_type]
    assert shadow.model_version_id == deployment.shadow_id and shadow.latency == 0.5
    assert shapes_to_raw(shadow.shapes, deployment_type) == VALID_SHADOW_PREDICTIONS[deployment_type]
    scores = [shape["score"] for shape in champion.shapes]
    assert (asset.shape_count, asset.min_score, asset.max_score) == (len(scores), min(scores), max(scores))

    data = asset.data
    assert (data.filename, data.content_type, data.width, data.height, data.size) == ("frame.jpg", "image/jpeg", 64, 48, len(image))
    assert (data.source, data.tags, data.metadata) == ("camera-1", ["entrance", "night"], {"camera": "cam-1", "gain": 2})
    assert data.organization == deployment.organization
    stored_file = Path(settings.MEDIA_ROOT) / data.image.name
    assert stored_file.read_bytes() == image


def test_a_json_content_type_is_accepted_too(deployments, jwts, client, monitor_payload):
    response = client.post(
        f"/api/deployment/{deployments[CLS].id}/predictions",
        data=monitor_payload(CLS),
        content_type="application/json",
        headers={"Authorization": f"Bearer {jwts[CLS]}"},
    )
    assert response.status_code == 201, response.content


def test_the_defaults_apply_when_optional_fields_are_left_out(send, monitor_payload):
    response = send(CLS, monitor_payload(CLS, source=..., tags=..., metadata=...))
    assert response.status_code == 201, response.content
    data = Data.objects.get(pk=response.json()["data_id"])
    assert (data.source, data.tags, data.metadata) == ("serving", [], {})
    asset = PredictedAsset.objects.get(pk=response.json()["predicted_asset_id"])
    assert abs(asset.timestamp.timestamp() - response.json()["timestamp"]) < 1e-3
    assert asset.predictions.filter(is_shadow=True).count() == 0


def test_empty_prediction_lists_are_stored_like_any_frame(send, monitor_payload):
    empty = {"detection_classes": [], "detection_scores": [], "detection_boxes": []}
    response = send(DET, monitor_payload(DET, raw_predictions=empty))
    assert response.status_code == 201, response.content
    asset = PredictedAsset.objects.get(pk=response.json()["predicted_asset_id"])
    assert (asset.shape_count, asset.min_score, asset.max_score) == (0, None, None)
    assert asset.predictions.get().shapes == []


def test_flattened_polygons_of_the_seeds_are_accepted(send, monitor_payload):
    raw = {"detection_classes": [1], "detection_scores": [0.5], "detection_masks": [[5, 5, 30, 5, 30, 20]]}
    response = send(SEG, monitor_payload(SEG, raw_predictions=raw))
    assert response.status_code == 201, response.content
    shapes = Prediction.objects.get(asset__pk=response.json()["predicted_asset_id"]).shapes
    assert shapes[0]["points"] == [[5, 5], [30, 5], [30, 20]]


def test_a_declared_size_different_from_the_image_is_accepted_with_a_warning(send, monitor_payload, jpeg_bytes):
    # The shapes are in 640x480 coordinates; the image itself is 64x48.
    raw = {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[100, 200, 300, 400]]}
    response = send(DET, monitor_payload(DET, image=jpeg_bytes(64, 48), width=640, height=480, raw_predictions=raw))
    assert response.status_code == 201, response.content
    warnings = response.json()["warnings"]
    assert len(warnings) == 1 and "640x480" in warnings[0] and "64x48" in warnings[0]
    asset = PredictedAsset.objects.select_related("data").get(pk=response.json()["predicted_asset_id"])
    assert (asset.width, asset.height) == (640, 480)
    assert (asset.data.width, asset.data.height) == (64, 48)
    assert asset.predictions.get().shapes[0] == {"type": "rectangle", "label_id": 1, "score": 0.9, "x": 200, "y": 100, "w": 200, "h": 200}


def test_a_box_reaching_outside_the_frame_is_clipped_with_a_warning(send, monitor_payload):
    raw = {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[-4, 10, 60, 70]]}
    response = send(DET, monitor_payload(DET, raw_predictions=raw))
    assert response.status_code == 201
    assert any("raw_predictions.detection_boxes[0]" in warning for warning in response.json()["warnings"])
    shape = Prediction.objects.get(asset__pk=response.json()["predicted_asset_id"]).shapes[0]
    assert (shape["x"], shape["y"], shape["w"], shape["h"]) == (10, 0, 54, 48)


@pytest.mark.parametrize(
    "content_type, image_format, stored_as",
    [("png", "png", "image/png"), ("JPEG", "jpeg", "image/jpeg"), ("IMAGE/PNG", "png", "image/png"),
     ("jpg", "jpeg", "image/jpeg"), ("image/jpeg", "jpeg", "image/jpeg")],
)
def test_content_type_aliases_are_accepted(send, monitor_payload, jpeg_bytes, png_bytes, content_type, image_format, stored_as):
    image = png_bytes(64, 48, seed=3) if image_format == "png" else jpeg_bytes(64, 48, seed=3)
    response = send(DET, monitor_payload(DET, image=image, content_type=content_type, filename=f"frame.{image_format}"))
    assert response.status_code == 201, response.content
    assert response.json()["warnings"] == []
    assert Data.objects.get(pk=response.json()["data_id"]).content_type == stored_as


def test_a_data_url_image_is_accepted(send, monitor_payload, png_bytes):
    image = png_bytes(64, 48, seed=8)
    response = send(DET, monitor_payload(DET, image="data:image/png;base64," + b64(image), content_type="png"))
    assert response.status_code == 201, response.content
    assert Data.objects.get(pk=response.json()["data_id"]).size == len(image)


def test_a_path_in_the_filename_is_dropped(send, monitor_payload):
    response = send(DET, monitor_payload(DET, filename="../../etc/cams\\front/frame-7.jpg"))
    assert response.status_code == 201
    assert Data.objects.get(pk=response.json()["data_id"]).filename == "frame-7.jpg"


# ---------------------------------------------------------------- repeats


def test_the_same_idempotency_key_twice_is_a_409_and_stores_once(send, monitor_payload, settings):
    payload = monitor_payload(DET)
    first = send(DET, payload, **{"Idempotency-Key": "req-123"})
    assert first.status_code == 201
    after_first = stored(settings)
    second = send(DET, payload, **{"Idempotency-Key": "req-123"})
    assert second.status_code == 409
    assert second.json()["message"]
    assert stored(settings) == after_first
    assert PredictedAsset.objects.filter(idempotency_key="req-123").count() == 1


def test_a_repeated_idempotency_key_with_other_bytes_stores_nothing_either(send, monitor_payload, settings):
    # The key names the request: a second request under it is refused, its (different) image included.
    assert send(DET, monitor_payload(DET), **{"Idempotency-Key": "req-456"}).status_code == 201
    after_first = stored(settings)
    second = send(DET, monitor_payload(DET), **{"Idempotency-Key": "req-456"})
    assert second.status_code == 409
    assert stored(settings) == after_first


def test_an_idempotency_key_is_scoped_to_its_deployment(send, monitor_payload):
    assert send(DET, monitor_payload(DET), **{"Idempotency-Key": "shared"}).status_code == 201
    assert send(CLS, monitor_payload(CLS), **{"Idempotency-Key": "shared"}).status_code == 201


def test_the_same_image_and_timestamp_twice_is_a_409_and_stores_once(send, monitor_payload, jpeg_bytes, settings):
    image = jpeg_bytes(64, 48, seed=11)
    first = send(DET, monitor_payload(DET, image=image, timestamp=1700000123.25))
    assert first.status_code == 201
    after_first = stored(settings)
    second = send(DET, monitor_payload(DET, image=image, timestamp=1700000123.25))
    assert second.status_code == 409
    assert second.json()["message"]
    assert stored(settings) == after_first


def test_the_same_image_with_another_timestamp_is_a_new_asset_on_the_same_data(send, monitor_payload, jpeg_bytes, settings):
    image = jpeg_bytes(64, 48, seed=12)
    first = send(DET, monitor_payload(DET, image=image, timestamp=1700000000.0, tags=["a"]))
    second = send(DET, monitor_payload(DET, image=image, timestamp=1700000060.0, tags=["b"]))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["data_id"] == second.json()["data_id"]
    assert first.json()["id"] != second.json()["id"]
    assert PredictedAsset.objects.count() == 2 and Data.objects.count() == 1
    assert len(media_files(settings)) == 1
    assert Data.objects.get().tags == ["a", "b"]


def test_the_same_image_in_two_deployments_shares_one_data_row(send, monitor_payload, jpeg_bytes):
    image = jpeg_bytes(64, 48, seed=13)
    assert send(DET, monitor_payload(DET, image=image)).status_code == 201
    assert send(CLS, monitor_payload(CLS, image=image)).status_code == 201
    assert PredictedAsset.objects.count() == 2 and Data.objects.count() == 1


# ---------------------------------------------------------------- the tasks enqueued at ingest


@pytest.fixture
def sent_tasks(monkeypatch):
    """The ingest task's sends, recorded instead of reaching a broker: a list of (task name, args, kwargs)."""
    from monitoring.tasks import frames_drain

    sent = []
    monkeypatch.setattr(
        frames_drain, "apply_async",
        lambda args=None, kwargs=None, **options: sent.append((frames_drain.name, tuple(args or ()), kwargs or {})),
    )
    return sent


def test_a_new_frame_asks_for_its_deployments_drain_on_commit(
    send, monitor_payload, deployments, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = send(DET, monitor_payload(DET))
    assert response.status_code == 201
    assert len(callbacks) == 1
    assert sent_tasks == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()
    assert sent_tasks == [("monitoring.tasks.frames_drain", (str(deployments[DET].pk),), {})]


def test_without_redis_every_frame_sends_its_drain(send, monitor_payload, jpeg_bytes, deployments,
                                                   django_capture_on_commit_callbacks, sent_tasks):
    # The unit tests' broker is the filesystem transport: no key to hold the message back, so one each.
    image = jpeg_bytes(64, 48, seed=14)
    with django_capture_on_commit_callbacks(execute=True):
        assert send(DET, monitor_payload(DET, image=image)).status_code == 201
        assert send(DET, monitor_payload(DET, image=image)).status_code == 201
    assert sent_tasks == [("monitoring.tasks.frames_drain", (str(deployments[DET].pk),), {})] * 2


def test_a_refused_request_enqueues_nothing(send, monitor_payload, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert send(DET, monitor_payload(DET, latency=-1)).status_code == 400
    assert callbacks == []


# ---------------------------------------------------------------- late shadow predictions


@pytest.fixture
def monitored(send, monitor_payload):
    """A champion-only monitored frame of the detection deployment; its ingest answer."""
    response = send(DET, monitor_payload(DET))
    assert response.status_code == 201
    return response.json()


def post_shadow(client, oracle_prediction_id, body, jwt):
    return client.post(
        f"/api/prediction/{oracle_prediction_id}/shadow",
        data=json.dumps(body),
        content_type="",
        headers={"Authorization": f"Bearer {jwt}"},
    )


SHADOW_BODY = {"shadow_raw_predictions": VALID_SHADOW_PREDICTIONS[DET], "shadow_latency": 0.4}


def test_a_late_shadow_prediction_is_stored(client, jwts, monitored, deployments):
    response = post_shadow(client, monitored["id"], SHADOW_BODY, jwts[DET])
    assert response.status_code == 201, response.content
    assert response.json()["id"] == monitored["id"]
    shadow = Prediction.objects.get(asset__pk=monitored["predicted_asset_id"], is_shadow=True)
    assert shadow.model_version_id == deployments[DET].shadow_id and shadow.latency == 0.4
    assert shadow.shapes == [{"type": "rectangle", "label_id": 4, "score": 0.5, "x": 2, "y": 1, "w": 20, "h": 19}]


def test_a_second_shadow_prediction_is_a_409(client, jwts, monitored):
    assert post_shadow(client, monitored["id"], SHADOW_BODY, jwts[DET]).status_code == 201
    again = post_shadow(client, monitored["id"], SHADOW_BODY, jwts[DET])
    assert again.status_code == 409 and again.json()["message"]
    assert Prediction.objects.filter(asset__pk=monitored["predicted_asset_id"], is_shadow=True).count() == 1


def test_a_shadow_for_a_frame_that_already_came_with_one_is_a_409(client, jwts, send, monitor_payload):
    first = send(DET, monitor_payload(DET, with_shadow=True)).json()
    assert post_shadow(client, first["id"], SHADOW_BODY, jwts[DET]).status_code == 409


def test_a_shadow_for_an_unknown_prediction_is_a_404(client, jwts):
    response = post_shadow(client, uuid.uuid4(), SHADOW_BODY, jwts[DET])
    assert response.status_code == 404 and response.json()["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"shadow_raw_predictions": {**VALID_SHADOW_PREDICTIONS[DET], "detection_classes": [9]}, "shadow_latency": 0.4},
         "shadow_raw_predictions.detection_classes[0]"),
        ({"shadow_raw_predictions": {**VALID_SHADOW_PREDICTIONS[DET], "detection_boxes": [[190, 100, 50, 90]]}, "shadow_latency": 0.4},
         "shadow_raw_predictions.detection_boxes[0]"),
        ({"shadow_raw_predictions": VALID_SHADOW_PREDICTIONS[DET]}, "shadow_latency"),
        ({"shadow_latency": 0.4}, "shadow_raw_predictions"),
        ([SHADOW_BODY], "body"),
    ],
    ids=["unknown-class", "inverted-box", "no-latency", "no-prediction", "array-body"],
)
def test_a_bad_shadow_is_a_400_naming_the_field(client, jwts, monitored, body, field):
    response = post_shadow(client, monitored["id"], body, jwts[DET])
    assert response.status_code == 400
    assert field in error_fields(response)
    assert not Prediction.objects.filter(asset__pk=monitored["predicted_asset_id"], is_shadow=True).exists()


def test_a_shadow_with_a_jwt_of_another_deployment_is_a_401(client, jwts, monitored):
    response = post_shadow(client, monitored["id"], SHADOW_BODY, jwts[CLS])
    assert response.status_code == 401
    assert not Prediction.objects.filter(asset__pk=monitored["predicted_asset_id"], is_shadow=True).exists()


# ---------------------------------------------------------------- changes apply to the next request


def test_a_new_champion_is_credited_with_the_next_prediction(send, monitor_payload, deployments, client, api_tokens):
    deployment = deployments[DET]
    assert send(DET, monitor_payload(DET)).status_code == 201
    new_champion = deployment.shadow  # promote the shadow
    response = client.post(
        f"/api/deployment/{deployment.id}/model", data=json.dumps({"model_version_id": str(new_champion.id)}),
        content_type="application/json", headers={"Authorization": f"Bearer {api_tokens['admin']}"},
    )
    assert response.status_code == 200
    after = send(DET, monitor_payload(DET))
    assert after.status_code == 201
    champion = Prediction.objects.get(asset__pk=after.json()["predicted_asset_id"], is_shadow=False)
    assert champion.model_version_id == new_champion.id


def test_a_class_adopted_from_a_new_model_is_accepted_at_once(send, monitor_payload, deployments, client, api_tokens):
    from dashboard.models import ModelVersion

    deployment = deployments[CLS]
    assert send(CLS, monitor_payload(CLS)).status_code == 201
    version = ModelVersion.objects.create(model=deployment.champion.model, version=3, name="more classes",
                                          labels={"1": "car", "5": "scooter"})
    response = client.post(
        f"/api/deployment/{deployment.id}/model", data=json.dumps({"model_version_id": str(version.id)}),
        content_type="application/json", headers={"Authorization": f"Bearer {api_tokens['admin']}"},
    )
    assert response.status_code == 200
    raw = {"detection_classes": [5], "detection_scores": [0.9]}
    assert send(CLS, monitor_payload(CLS, raw_predictions=raw)).status_code == 201


def test_a_member_removed_from_the_organization_stops_ingesting_at_once(send, monitor_payload, users):
    assert send(DET, monitor_payload(DET)).status_code == 201
    users["ml_lead"].memberships.all().delete()
    assert send(DET, monitor_payload(DET)).status_code in (401, 403, 404)
    assert PredictedAsset.objects.count() == 1


def test_a_member_demoted_to_labeler_stops_ingesting_at_once(send, monitor_payload, users):
    assert send(DET, monitor_payload(DET)).status_code == 201
    users["ml_lead"].memberships.update(role="labeler")
    assert send(DET, monitor_payload(DET)).status_code == 403
    assert PredictedAsset.objects.count() == 1
