"""Celery tasks of outlier scoring; dashboard/tasks.py imports them so that workers register them."""
from celery import shared_task

from dashboard.models import Deployment, PredictedAsset
from dashboard.outliers.services import asset_outlier_score, deployment_rescore


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def predicted_asset_score_outlier(asset_id: str) -> None:
    """Score one asset (features kept); the score stays None until the deployment has a reference.

    Ingest enqueues dashboard.tasks.predicted_asset_process, which scores too; this one stays for messages
    queued before that, and for scoring an asset on its own.
    """
    asset = PredictedAsset.objects.select_related("deployment", "data").filter(pk=asset_id).first()
    if asset is not None:
        asset_outlier_score(asset=asset)


@shared_task(acks_late=True)
def deployment_rescore_outliers(deployment_id: str) -> int:
    """Rebuild the deployment's reference from history and score all its assets (unreadable images are skipped)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    return 0 if deployment is None else deployment_rescore(deployment=deployment)
