"""Celery tasks of the core: thin, idempotent wrappers that take ids and call a service."""
import datetime as dt

from celery import shared_task
from django.conf import settings

from dashboard.models import Data, Deployment, ExportJob, PredictedAsset
from dashboard.outliers.services import asset_outlier_score
from dashboard.outliers.tasks import deployment_rescore_outliers, predicted_asset_score_outlier  # noqa: F401  (registers them)
from dashboard.services.datalake import data_open, data_thumbnail_make
from dashboard.services.datasets import export_job_run, export_jobs_expire
from dashboard.services.feedback_loop import training_data_compute


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def data_make_thumbnail(data_id: str) -> None:
    data = Data.objects.filter(pk=data_id).first()
    if data is not None:
        data_thumbnail_make(data=data, size=settings.LOUPE_THUMBNAIL_SIZE)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def predicted_asset_process(asset_id: str, thumbnail: bool = True) -> None:
    """The worker's share of one monitored frame, the one task ingest enqueues: the thumbnail of its data (when
    the frame brought new data, `thumbnail`), then its outlier score, from a single read of the image.

    The score is computed even when the thumbnail fails, as when they were two tasks; a retry redoes only what
    is missing (a thumbnail is made once, stored features are reused).
    """
    asset = PredictedAsset.objects.select_related("deployment", "data").filter(pk=asset_id).first()
    if asset is None:
        return
    content = None
    try:
        if thumbnail and not asset.data.thumbnail:
            with data_open(asset.data) as file:
                content = file.read()
            data_thumbnail_make(data=asset.data, size=settings.LOUPE_THUMBNAIL_SIZE, content=content)
    finally:
        asset_outlier_score(asset=asset, content=content)


@shared_task(expires=240)
def data_thumbnails_backfill(limit: int = 500) -> int:
    """Re-enqueue thumbnails that were never made (a task lost with a broker, say); beat runs it every 5 minutes."""
    missing = list(Data.objects.filter(thumbnail="").values_list("id", flat=True)[:limit])
    for data_id in missing:
        data_make_thumbnail.delay(str(data_id))
    return len(missing)


@shared_task(acks_late=True)
def deployment_compute_training_reference(deployment_id: str) -> str | None:
    """Build the deployment's outlier reference from its training data; the row tells the status (READY, FAILED)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    reference = training_data_compute(deployment=deployment) if deployment is not None else None
    return reference.status if reference is not None else None


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def dataset_version_export_task(job_id: str) -> str | None:
    """Zip a dataset version for an ExportJob and store the file; the job row tells the progress."""
    job = ExportJob.objects.select_related("version__dataset").filter(pk=job_id).first()
    return export_job_run(job=job).status if job is not None else None


@shared_task(expires=3000)
def export_jobs_cleanup() -> int:
    """Delete export zips older than LOUPE_EXPORT_KEEP_DAYS; beat runs it every hour."""
    return export_jobs_expire(older_than=dt.timedelta(days=settings.LOUPE_EXPORT_KEEP_DAYS))
