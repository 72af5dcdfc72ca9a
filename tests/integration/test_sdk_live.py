"""loupe_sdk against a real Loupe server: the seeds' examples and every client call the SDK makes."""

import io
import random
import sys
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

try:
    import loupe_sdk  # noqa: F401
except ImportError:  # the package is not pip-installed in this environment: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from loupe_sdk import Client, ModelVersion
from loupe_sdk.exceptions import BadRequestError, ConflictError, NotFoundError, PredictionFormatError
from loupe_sdk.types.schemas_prediction import (
    ClassificationPredictionFormat,
    DetectionPredictionFormat,
    SegmentationPredictionFormat,
)

pytestmark = pytest.mark.django_db(transaction=True)

SEED_POLYGON = [[200, 200], [225, 200], [250, 250], [250, 225], [220, 220]]
SEED_BOXES = [[128, 200, 159, 240], [190, 100, 50, 90], [145, 50, 24, 76]]
FIXED_BOXES = [[128, 200, 159, 240], [50, 90, 190, 100], [24, 50, 145, 76]]


def image_bytes(width: int = 600, height: int = 800, image_format: str = "PNG") -> bytes:
    """A fresh image each call, so that no two tests send the same bytes (the server deduplicates on them)."""
    rng = random.Random(uuid.uuid4().int)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(50):
        image.putpixel((rng.randrange(width), rng.randrange(height)), tuple(rng.randrange(256) for _ in range(3)))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def write_png(path: Path, width: int = 600, height: int = 800) -> Path:
    path.write_bytes(image_bytes(width, height))
    return path


def unique_name(suffix: str = ".png") -> str:
    return f"sdk-{uuid.uuid4().hex}{suffix}"


def require_classes(deployment, *class_ids: int) -> None:
    known = {label["id"] for label in deployment.retrieve_information()["labels"]}
    missing = set(class_ids) - known
    assert not missing, f"the demo {deployment.type} deployment's label map lacks class ids {sorted(missing)}"


def ensure_shadow(client: Client, deployment) -> ModelVersion:
    """Give the deployment a shadow model version, preferring one other than its champion."""
    info = deployment.retrieve_information()
    if info["shadow"]:
        return ModelVersion(info["shadow"])
    champion = deployment.get_model_version()
    versions = client.get_model(champion.model_name).list_versions()
    shadow = next((version for version in versions if version.id != champion.id), champion)
    deployment.set_shadow_model(shadow)
    assert deployment.get_shadow_model() == shadow
    return shadow


@pytest.fixture
def client(live_server, demo_org, settings):
    # Deployment info names the monitoring host; make sure it points at this test's live server.
    settings.LOUPE_PUBLIC_URL = live_server.url
    with Client(
        api_token=demo_org.api_token,
        organization_name=demo_org.organization.name,
        host=live_server.url,
    ) as connected:
        yield connected


@pytest.fixture
def segmentation(client, demo_org):
    return client.get_deployment(demo_org.deployments["SEGMENTATION"].name)


@pytest.fixture
def detection(client, demo_org):
    return client.get_deployment(demo_org.deployments["OBJECT_DETECTION"].name)


@pytest.fixture
def classification(client, demo_org):
    return client.get_deployment(demo_org.deployments["CLASSIFICATION"].name)


def test_client_joins_the_organization_and_finds_its_deployments(client, demo_org, live_server):
    assert client.organization_name == demo_org.organization.name
    assert client.role == "admin"
    for inference_type, stored in demo_org.deployments.items():
        deployment = client.get_deployment(stored.name)
        assert (deployment.id, deployment.name, deployment.type) == (str(stored.id), stored.name, inference_type)
        assert deployment.oracle_host == live_server.url
        assert client.get_deployment_by_id(stored.id).name == stored.name
    assert {deployment.name for deployment in client.list_deployments()} >= {
        stored.name for stored in demo_org.deployments.values()
    }
    with pytest.raises(NotFoundError):
        client.get_deployment(unique_name(""))


def test_seed_segmentation_example_is_monitored(segmentation, tmp_path):
    require_classes(segmentation, 1)
    image_path = write_png(tmp_path / "image.png")
    prediction = SegmentationPredictionFormat(
        detection_classes=[1],
        detection_scores=[0.8],
        detection_masks=[SEED_POLYGON],
    )
    data = segmentation.monitor(image_path=str(image_path), latency=0.257, height=800, width=600, prediction=prediction)

    assert uuid.UUID(str(data["id"]))
    assert data["status"] == "TO_REVIEW" and data["warnings"] == []
    asset = segmentation.find_predicted_asset(oracle_prediction_id=data["id"])
    assert asset.id == str(data["predicted_asset_id"]) and asset.data_id == str(data["data_id"])
    assert (asset.filename, asset.width, asset.height, asset.shape_count) == ("image.png", 600, 800, 1)
    assert asset.latency == pytest.approx(0.257)
    champion = asset.get_champion_prediction()
    assert champion["raw_predictions"]["detection_classes"] == [1]
    assert champion["raw_predictions"]["detection_masks"] == [SEED_POLYGON]


def test_seed_detection_example_is_refused_until_its_boxes_are_fixed(detection, tmp_path):
    require_classes(detection, 1, 2)
    total_before = detection.retrieve_information()["counts"]["total"]
    with pytest.raises(PredictionFormatError, match=r"detection_boxes\[1\]"):
        DetectionPredictionFormat(
            detection_classes=[1, 2, 1], detection_boxes=SEED_BOXES, detection_scores=[0.9, 0.7, 0.4]
        )

    prediction = DetectionPredictionFormat(
        detection_classes=[1, 2, 1],
        detection_boxes=FIXED_BOXES,
        detection_scores=[0.9, 0.7, 0.4],
    )
    data = detection.monitor(
        image_path=write_png(tmp_path / unique_name()), latency=0.257, height=800, width=600, prediction=prediction
    )

    asset = detection.find_predicted_asset(id=data["predicted_asset_id"])
    assert asset.oracle_prediction_id == str(data["id"])
    assert asset.get_champion_prediction()["raw_predictions"]["detection_boxes"] == FIXED_BOXES
    assert detection.retrieve_information()["counts"]["total"] == total_before + 1


def test_monitor_bytes_stores_a_jpeg_with_its_source_tags_and_metadata(classification):
    require_classes(classification, 1)
    filename = unique_name(".jpg")
    data = classification.monitor_bytes(
        raw_image=image_bytes(640, 480, "JPEG"),
        content_type="image/jpeg",
        filename=filename,
        latency=0.05,
        height=480,
        width=640,
        prediction=ClassificationPredictionFormat(detection_classes=[1], detection_scores=[0.93]),
        source="camera-1",
        tags=["night"],
        metadata={"site": "north"},
    )
    asset = classification.find_predicted_asset(filename=filename)
    assert asset.oracle_prediction_id == str(data["id"])
    assert (asset.width, asset.height) == (640, 480)
    assert asset.get_shadow_prediction() is None


@pytest.mark.parametrize("shadow_argument", ["shadow_prediction", "shadow_raw_predictions"])
def test_monitor_with_a_shadow_prediction_under_either_name(client, detection, tmp_path, shadow_argument):
    require_classes(detection, 1, 2)
    ensure_shadow(client, detection)
    champion = DetectionPredictionFormat(
        detection_classes=[1], detection_scores=[0.9], detection_boxes=[FIXED_BOXES[0]]
    )
    shadow = DetectionPredictionFormat(detection_classes=[2], detection_scores=[0.6], detection_boxes=[FIXED_BOXES[1]])
    data = detection.monitor(
        write_png(tmp_path / unique_name()),
        latency=0.1,
        height=800,
        width=600,
        prediction=champion,
        shadow_latency=0.3,
        **{shadow_argument: shadow},
    )
    shadow_prediction = detection.find_predicted_asset(oracle_prediction_id=data["id"]).get_shadow_prediction()
    assert shadow_prediction is not None
    assert shadow_prediction["latency"] == pytest.approx(0.3)
    assert shadow_prediction["raw_predictions"]["detection_classes"] == [2]


def test_a_late_shadow_prediction_is_added_once(client, segmentation, tmp_path):
    require_classes(segmentation, 1)
    ensure_shadow(client, segmentation)
    prediction = SegmentationPredictionFormat(
        detection_classes=[1], detection_scores=[0.8], detection_masks=[SEED_POLYGON]
    )
    flattened = [coordinate for point in SEED_POLYGON for coordinate in point]
    shadow = SegmentationPredictionFormat(detection_classes=[1], detection_scores=[0.7], detection_masks=[flattened])

    first = segmentation.monitor(write_png(tmp_path / unique_name()), 0.2, 800, 600, prediction)
    segmentation.monitor_shadow_from_oracle_prediction_id(first["id"], 0.25, shadow)
    assert segmentation.find_predicted_asset(oracle_prediction_id=first["id"]).get_shadow_prediction()[
        "latency"
    ] == pytest.approx(0.25)
    with pytest.raises(ConflictError) as caught:
        segmentation.monitor_shadow_from_oracle_prediction_id(first["id"], 0.25, shadow)
    assert caught.value.status_code == 409 and caught.value.message

    second = segmentation.monitor(write_png(tmp_path / unique_name()), 0.2, 800, 600, prediction)
    asset = segmentation.find_predicted_asset(oracle_prediction_id=second["id"])
    segmentation.monitor_shadow(asset, 0.4, shadow)
    assert segmentation.find_predicted_asset(id=asset.id).get_shadow_prediction() is not None


def test_the_same_frame_sent_twice_is_stored_once(classification):
    require_classes(classification, 1)
    frame = dict(
        raw_image=image_bytes(),
        content_type="png",
        filename=unique_name(),
        latency=0.01,
        height=800,
        width=600,
        prediction=ClassificationPredictionFormat(detection_classes=[1], detection_scores=[0.5]),
        timestamp=time.time() - 5,
    )
    classification.monitor_bytes(**frame)
    with pytest.raises(ConflictError):
        classification.monitor_bytes(**frame)
    assert classification.find_predicted_asset(filename=frame["filename"])


def test_find_predicted_asset_by_filename_and_when_nothing_matches(classification):
    require_classes(classification, 1)
    filename = unique_name()
    data = classification.monitor_bytes(
        image_bytes(),
        "image/png",
        filename,
        0.02,
        800,
        600,
        ClassificationPredictionFormat(detection_classes=[1], detection_scores=[0.6]),
    )
    assert classification.find_predicted_asset(filename=filename).oracle_prediction_id == str(data["id"])
    with pytest.raises(NotFoundError):
        classification.find_predicted_asset(filename=unique_name())


def test_list_predicted_assets_pages_through_the_deployment(classification):
    require_classes(classification, 1)
    sent = [
        classification.monitor_bytes(
            image_bytes(),
            "image/png",
            unique_name(),
            0.02,
            800,
            600,
            ClassificationPredictionFormat(detection_classes=[1], detection_scores=[0.4 + index / 10]),
        )["predicted_asset_id"]
        for index in range(3)
    ]

    limited = classification.list_predicted_assets(limit=2, page_size=1)
    assert len(limited) == 2 and len({asset.id for asset in limited}) == 2

    everything = classification.list_predicted_assets(page_size=2, order_by=["-timestamp"])
    assert {str(asset_id) for asset_id in sent} <= {asset.id for asset in everything}
    timestamps = [asset.timestamp for asset in everything]
    assert timestamps == sorted(timestamps, reverse=True)
    assert len({asset.id for asset in everything}) == len(everything)


def test_update_min_threshold_is_reflected_in_the_information(detection):
    detection.update(min_threshold=0.4)
    assert detection.retrieve_information()["min_threshold"] == pytest.approx(0.4)
    assert detection.min_threshold == pytest.approx(0.4)


def test_an_unknown_class_id_is_refused_by_the_server_and_nothing_is_stored(classification):
    known = {label["id"] for label in classification.retrieve_information()["labels"]}
    unknown = max(known, default=0) + 1000
    filename = unique_name()
    with pytest.raises(BadRequestError) as caught:
        classification.monitor_bytes(
            image_bytes(),
            "image/png",
            filename,
            0.02,
            800,
            600,
            ClassificationPredictionFormat(detection_classes=[unknown], detection_scores=[0.9]),
        )
    assert caught.value.status_code == 400 and caught.value.message
    assert any("detection_classes" in error["field"] for error in caught.value.errors)
    with pytest.raises(NotFoundError):
        classification.find_predicted_asset(filename=filename)
