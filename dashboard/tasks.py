"""Celery tasks of the core, each named after the service it calls: thin, idempotent, taking ids."""
import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from dashboard.models import Data, ExportJob, PredictedAsset
from dashboard.services import datalake, datasets
from dashboard.services.background import task_send


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def data_thumbnail_make(data_id: str) -> None:
    data = Data.objects.filter(pk=data_id).first()
    if data is not None:
        datalake.data_thumbnail_make(data=data, size=settings.LOUPE_THUMBNAIL_SIZE)


@shared_task(expires=240)
def data_thumbnails_backfill(limit: int = 500) -> int:
    """Beat, every 5 minutes: thumbnails never made for data outside monitoring (an upload whose task was lost with
    the broker, say), oldest first. A monitored frame's thumbnail is its predicted asset's work, swept with it."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.LOUPE_WORK_GRACE_SECONDS)
    missing = list(Data.objects.filter(thumbnail="", created_at__lt=cutoff)
                   .exclude(Exists(PredictedAsset.objects.filter(data=OuterRef("pk"), processed_at__isnull=True)))
                   .order_by("created_at").values_list("id", flat=True)[:limit])
    sent = 0
    for data_id in missing:
        if not task_send(task=data_thumbnail_make, args=[str(data_id)]):
            break
        sent += 1
    return sent


@shared_task(expires=50)
def export_jobs_catch_up() -> int:
    """Beat, every minute: export jobs whose task was lost stay PENDING; send them again."""
    return datasets.export_jobs_catch_up(older_than=dt.timedelta(seconds=settings.LOUPE_WORK_GRACE_SECONDS * 2),
                                         limit=settings.LOUPE_WORK_BATCH)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def export_job_run(job_id: str) -> str | None:
    """Zip a dataset version for an ExportJob and store the file; the job row tells the progress."""
    job = ExportJob.objects.select_related("version__dataset").filter(pk=job_id).first()
    return datasets.export_job_run(job=job).status if job is not None else None


@shared_task(expires=3000)
def export_jobs_expire() -> int:
    """Delete export zips older than LOUPE_EXPORT_KEEP_DAYS; beat runs it every hour."""
    return datasets.export_jobs_expire(older_than=dt.timedelta(days=settings.LOUPE_EXPORT_KEEP_DAYS))
