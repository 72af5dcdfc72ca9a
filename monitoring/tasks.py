"""Celery tasks of monitoring, each named after the service it calls: thin, idempotent, taking ids."""
import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from dashboard.models import Deployment, PredictedAsset
from dashboard.services.background import task_send
from monitoring.models import QualityReport
from monitoring.services import frames, outliers, quality, stats, training_data


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def predicted_asset_process(asset_id: str, thumbnail: bool = True) -> None:
    """The worker's share of one monitored frame and of others waiting with it, the message the sweep sends for a
    frame (see frames.predicted_asset_process)."""
    # A frame processed already (a second send by the sweep, or done in process by the demo's seeding) is left.
    asset = PredictedAsset.objects.select_related("deployment", "data").filter(
        pk=asset_id, processed_at__isnull=True).first()
    if asset is not None:
        frames.predicted_asset_process(asset=asset, thumbnail=thumbnail)


@shared_task(acks_late=True, autoretry_for=(OSError, InterfaceError, OperationalError), retry_backoff=True,
             max_retries=8)
def frames_drain(deployment_id: str, slot: int = 0) -> int:
    """The work of every frame of the deployment waiting for it (see frames.frames_drain), the task ingest asks
    for; tried again when the database goes away meanwhile."""
    return frames.frames_drain(deployment_id=deployment_id, slot=slot)


@shared_task(expires=25)
def predicted_assets_catch_up() -> int:
    """Beat, every 30 s: the per-frame work (thumbnail, outlier score, stats) of frames stored more than a grace
    period ago and not yet processed, and the builds of training data left PENDING, sent again in bounded batches,
    oldest first (their messages lost with the broker, or a worker killed); returns how many frames were sent."""
    older_than = dt.timedelta(seconds=settings.LOUPE_WORK_GRACE_SECONDS)
    sent = frames.predicted_assets_catch_up(older_than=older_than, limit=settings.LOUPE_WORK_BATCH)
    training_data.training_data_catch_up(older_than=older_than * 2, limit=settings.LOUPE_WORK_BATCH)
    return sent


@shared_task(acks_late=True, autoretry_for=(OSError, InterfaceError, OperationalError), retry_backoff=True,
             max_retries=8)
def deployment_rescore(deployment_id: str) -> int:
    """Rebuild the deployment's reference from history and score all its assets (unreadable images are skipped).

    Tried again when the database goes away meanwhile (a restart): its frames are processed already, so the sweep
    would never send them again, and they would keep no score."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    return 0 if deployment is None else outliers.deployment_rescore(deployment=deployment)


@shared_task(acks_late=True)
def training_data_compute(deployment_id: str) -> str | None:
    """Build the deployment's outlier reference from its training data; the row tells the status (READY, FAILED)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    reference = training_data.training_data_compute(deployment=deployment) if deployment is not None else None
    return reference.status if reference is not None else None


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def stats_refresh(deployment_id: str) -> int:
    """Count the deployment's new and changed assets into its rollups (exactly once, whoever runs it)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    return 0 if deployment is None else stats.stats_refresh(deployment=deployment)


@shared_task(expires=14)
def stats_reconcile() -> int:
    """Beat, every 15 s: queue a refresh for every deployment with counting left to do (a lost task, a worker that
    was down); returns how many."""
    behind = stats.stats_deployments_behind()
    for deployment_id in behind:
        if not task_send(task=stats_refresh, args=[str(deployment_id)]):
            break
    return len(behind)


@shared_task(expires=3000)
def stats_prune() -> int:
    """Beat, every hour: minute rows past their keep-time go (their hours and days keep the figures)."""
    return stats.stats_prune()


@shared_task(acks_late=True)
def quality_report_compute(report_id: str) -> int | None:
    """Compute a stored quality report again for its selection (pages asked; the reviews it covers changed)."""
    report = QualityReport.objects.select_related("deployment").filter(pk=report_id).first()
    return None if report is None else quality.quality_report_compute(report=report).result["images"]


@shared_task(expires=55)
def alerts_evaluate() -> dict:
    """Beat, every 60 s: evaluate every active alert rule from stored rows; webhooks go out as their own tasks."""
    from monitoring.services import alerts

    return alerts.alerts_evaluate()


@shared_task(bind=True, acks_late=True, max_retries=5)
def alert_notify(self, alert_id: str, event: str) -> str:
    """POST one alert transition to its webhook; a failed POST is retried with exponential backoff (2, 4, 8… s,
    capped at 5 min), the last failure recorded on the alert."""
    from monitoring.services import alerts

    try:
        return alerts.alert_notify(alert_id=alert_id, event=event, final_attempt=self.request.retries >= self.max_retries)
    except alerts.WebhookFailed as failure:
        if self.request.retries >= self.max_retries:
            return f"failed: {failure}"
        raise self.retry(exc=failure, countdown=min(300, 2 ** (self.request.retries + 1)))
