"""Outlier scores through a real Celery worker: one task per asset, and the rescore that the first reference starts."""
from dashboard.models import PredictedAsset
from monitoring.models import OutlierReference
from monitoring.tasks import deployment_rescore, predicted_asset_process
from monitoring.services.ingest import prediction_ingest


def _ingest(deployment, monitor_payload, jpeg_bytes, count: int) -> list[PredictedAsset]:
    return [
        prediction_ingest(
            deployment=deployment,
            payload=monitor_payload(deployment.type, image=jpeg_bytes(64, 48, seed=i), timestamp=1_700_000_000 + i),
        ).asset
        for i in range(count)
    ]


def test_every_asset_gets_a_score_once_the_reference_exists(
    celery_worker_live, deployments, monitor_payload, jpeg_bytes, settings, wait_until
):
    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10
    deployment = deployments["OBJECT_DETECTION"]
    assets = _ingest(deployment, monitor_payload, jpeg_bytes, 14)
    # Enqueued here, not by ingest, so that this test does not depend on how ingest is wired.
    for asset in assets:
        predicted_asset_process.delay(str(asset.id), thumbnail=False)

    # Assets 1-9 find no reference; the 10th builds it and enqueues the rescore that scores them too.
    unscored = PredictedAsset.objects.filter(deployment=deployment, outlier_score__isnull=True)
    wait_until(lambda: not unscored.exists(), timeout=60, message="some assets never got an outlier score")
    reference = OutlierReference.objects.get(deployment=deployment, is_active=True)
    assert (reference.source, reference.size) == ("history", 10)
    scores = list(PredictedAsset.objects.filter(deployment=deployment).values_list("outlier_score", flat=True))
    assert all(0 <= score <= 1 for score in scores)
    assert {asset.version for asset in PredictedAsset.objects.filter(deployment=deployment)} == {1}


def test_rescore_task_scores_a_deployment(
    celery_worker_live, deployments, monitor_payload, jpeg_bytes, settings, wait_until
):
    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10
    deployment = deployments["SEGMENTATION"]
    _ingest(deployment, monitor_payload, jpeg_bytes, 12)

    deployment_rescore.delay(str(deployment.id))
    unscored = PredictedAsset.objects.filter(deployment=deployment, outlier_score__isnull=True)
    wait_until(lambda: not unscored.exists(), timeout=60, message="the rescore did not score every asset")
    assert OutlierReference.objects.filter(deployment=deployment, is_active=True).count() == 1
