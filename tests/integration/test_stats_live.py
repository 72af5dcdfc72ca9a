"""Predictions sent through loupe_sdk show in get_stats within 10 s: a real Redis, a real Celery worker, a live server."""
import time

import pytest
from loupe_sdk import Client
from loupe_sdk.types.enums import ServiceMetrics
from loupe_sdk.types.schemas_prediction import DetectionPredictionFormat

pytestmark = pytest.mark.django_db(transaction=True)


def test_predictions_sent_by_the_client_appear_in_get_stats_within_ten_seconds(
        celery_worker_live, live_server, settings, demo_org, jpeg_bytes, tmp_path):
    settings.LOUPE_PUBLIC_URL = live_server.url
    with Client(api_token=demo_org.api_token, organization_name=demo_org.organization.name,
                host=live_server.url) as client:
        deployment = client.get_deployment(demo_org.deployments["OBJECT_DETECTION"].name)
        before = deployment.get_stats(ServiceMetrics.AGGREGATED_PREDICTIONS_DATA)["count"]
        prediction = DetectionPredictionFormat(detection_classes=[1], detection_scores=[0.8],
                                               detection_boxes=[[5, 5, 30, 40]])
        for seed in range(3):
            image = tmp_path / f"frame-{seed}.jpg"
            image.write_bytes(jpeg_bytes(seed=900 + seed))
            deployment.monitor(image_path=image, latency=0.05, height=48, width=64, prediction=prediction)
        sent = time.monotonic()
        while time.monotonic() - sent < 10:
            stats = deployment.get_stats(ServiceMetrics.AGGREGATED_PREDICTIONS_DATA, since=3600)
            if stats["count"] >= before + 3:
                break
            time.sleep(0.3)
        assert stats["count"] == before + 3, stats
        assert stats["latency"]["mean"] == pytest.approx(0.05, rel=0.1)
        items = deployment.get_stats(ServiceMetrics.PREDICTIONS_DATA, since=3600)["items"]
        assert len(items) == 3 and all(item["shape_count"] == 1 for item in items)
