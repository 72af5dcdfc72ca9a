"""Celery tasks of the core: thin, idempotent wrappers that take ids and call a service."""
from celery import shared_task
from django.conf import settings

from dashboard.models import Data
from dashboard.outliers.tasks import deployment_rescore_outliers, predicted_asset_score_outlier  # noqa: F401  (registers them)
from dashboard.services.datalake import data_thumbnail_make


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def data_make_thumbnail(data_id: str) -> None:
    data = Data.objects.filter(pk=data_id).first()
    if data is not None:
        data_thumbnail_make(data=data, size=settings.LOUPE_THUMBNAIL_SIZE)


@shared_task(expires=240)
def data_thumbnails_backfill(limit: int = 500) -> int:
    """Re-enqueue thumbnails that were never made (a task lost with a broker, say); beat runs it every 5 minutes."""
    missing = list(Data.objects.filter(thumbnail="").values_list("id", flat=True)[:limit])
    for data_id in missing:
        data_make_thumbnail.delay(str(data_id))
    return len(missing)
