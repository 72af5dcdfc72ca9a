"""Celery tasks of the core, each named after the service it calls: thin, idempotent, taking ids."""
import datetime as dt

from celery import shared_task
from django.conf import settings

from dashboard.models import Data, ExportJob
from dashboard.services import datalake, datasets


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def data_thumbnail_make(data_id: str) -> None:
    data = Data.objects.filter(pk=data_id).first()
    if data is not None:
        datalake.data_thumbnail_make(data=data, size=settings.LOUPE_THUMBNAIL_SIZE)


@shared_task(expires=240)
def data_thumbnails_backfill(limit: int = 500) -> int:
    """Re-enqueue thumbnails that were never made (a task lost with a broker, say); beat runs it every 5 minutes."""
    missing = list(Data.objects.filter(thumbnail="").values_list("id", flat=True)[:limit])
    for data_id in missing:
        data_thumbnail_make.delay(str(data_id))
    return len(missing)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def export_job_run(job_id: str) -> str | None:
    """Zip a dataset version for an ExportJob and store the file; the job row tells the progress."""
    job = ExportJob.objects.select_related("version__dataset").filter(pk=job_id).first()
    return datasets.export_job_run(job=job).status if job is not None else None


@shared_task(expires=3000)
def export_jobs_expire() -> int:
    """Delete export zips older than LOUPE_EXPORT_KEEP_DAYS; beat runs it every hour."""
    return datasets.export_jobs_expire(older_than=dt.timedelta(days=settings.LOUPE_EXPORT_KEEP_DAYS))
