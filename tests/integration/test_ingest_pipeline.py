"""Ingest through the HTTP API with a real Redis and a real Celery worker: the thumbnail task runs after commit."""
import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from dashboard.models import Data, PredictedAsset

pytestmark = pytest.mark.django_db(transaction=True)


def test_monitored_frame_gets_its_thumbnail_from_the_worker(
    celery_worker_live, wait_until, deployments, api_tokens, api_login, monitor_post, monitor_payload, jpeg_bytes
):
    deployment = deployments["OBJECT_DETECTION"]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    response = monitor_post(deployment, monitor_payload("OBJECT_DETECTION", image=jpeg_bytes(800, 600),
                                                       width=800, height=600), jwt)
    assert response.status_code == 201, response.content

    data = Data.objects.get(pk=response.json()["data_id"])
    thumbnail = wait_until(lambda: Data.objects.get(pk=data.pk).thumbnail.name, timeout=20)
    with default_storage.open(thumbnail, "rb") as file:
        image = Image.open(io.BytesIO(file.read()))
        assert image.format == "WEBP"
        assert max(image.size) <= 320 and image.size == (320, 240)


def test_a_refused_frame_enqueues_nothing(
    celery_worker_live, deployments, api_tokens, api_login, monitor_post, monitor_payload
):
    deployment = deployments["OBJECT_DETECTION"]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    bad = monitor_payload("OBJECT_DETECTION", raw_predictions={"detection_classes": [99], "detection_scores": [0.5],
                                                               "detection_boxes": [[1, 1, 5, 5]]})
    response = monitor_post(deployment, bad, jwt)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "raw_predictions.detection_classes[0]"
    assert not PredictedAsset.objects.exists() and not Data.objects.exists()
    inspector = celery_worker_live.app.control.inspect(destination=[celery_worker_live.hostname], timeout=5)
    assert not any((inspector.reserved() or {}).values())
