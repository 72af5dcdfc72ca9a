"""The per-frame work a worker does for each monitored frame once it is stored: its thumbnail, then its score."""
import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard.models import Data, PredictedAsset
from dashboard.services.background import task_send
from dashboard.services.datalake import data_open, data_thumbnail_make
from monitoring.services.outliers import asset_outlier_score
from monitoring.services.stats import stats_mark_stale, stats_refresh_soon


def predicted_asset_process(*, asset: PredictedAsset, thumbnail: bool = True) -> None:
    """The thumbnail of the frame's data (when the frame brought new data, `thumbnail`), then its outlier score,
    from a single read of the image, then a refresh of the stats rollups.

    The score is computed even when the thumbnail fails; a retry redoes only what is missing (a thumbnail is made
    once, stored features are reused). Once all of it is done the frame is marked processed (`processed_at`), which
    is what the sweep (predicted_assets_catch_up) looks for.
    """
    content = None
    try:
        if thumbnail and not asset.data.thumbnail:
            with data_open(asset.data) as file:
                content = file.read()
            data_thumbnail_make(data=asset.data, size=settings.LOUPE_THUMBNAIL_SIZE, content=content)
    finally:
        try:
            asset_outlier_score(asset=asset, content=content)
        finally:
            # Features and score (or what of them exists) change what the asset adds to the stats rollups.
            stats_mark_stale(deployment_id=asset.deployment_id, asset_ids=[asset.pk])
            stats_refresh_soon(deployment_id=asset.deployment_id)
    # Only the prediction this work read: one that replaced it since (monitor_data) has work of its own.
    PredictedAsset.objects.filter(pk=asset.pk, oracle_prediction_id=asset.oracle_prediction_id,
                                  processed_at__isnull=True).update(
        processed_at=timezone.now())


# A frame whose work was sent this many times without being done (an image no worker can read, say) is left
# alone; its count shows in the admin.
MAX_PROCESS_SENDS = 5


def predicted_assets_catch_up(*, older_than: dt.timedelta, limit: int) -> int:
    """Send the per-frame work again for frames whose work is not done `older_than` after they were stored or last
    sent (the message lost with the broker, a worker killed, a send that failed), oldest first, at most `limit` of
    them; how many were sent. Safe to run twice at once: the work is idempotent, and each send is counted."""
    from monitoring import tasks

    now = timezone.now()
    waiting = list(
        PredictedAsset.objects.filter(processed_at__isnull=True, process_sends__lt=MAX_PROCESS_SENDS)
        .annotate(last_sent=Coalesce("process_sent_at", "created_at")).filter(last_sent__lt=now - older_than)
        .order_by("last_sent").values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for asset_id in waiting:
        if not task_send(task=tasks.predicted_asset_process, args=[str(asset_id)]):
            break  # the broker is down: the next run starts again from the oldest
        PredictedAsset.objects.filter(pk=asset_id).update(process_sends=F("process_sends") + 1, process_sent_at=now)
        sent += 1
    return sent


def deployment_frames_process(*, deployment, progress: Callable[[int], None] | None = None) -> int:
    """The per-frame work of every waiting frame of the deployment done here, in batches, rather than one task per
    frame: thumbnails, then one rescore (features in batches, one reference, every score at once), then the stats;
    the frames are marked processed, so their queued tasks find nothing to do. How many frames it processed.

    For a process that stores many frames before any worker runs (the demo's seeding)."""
    from monitoring.services.outliers import deployment_rescore
    from monitoring.services.stats import stats_refresh

    waiting = deployment.predicted_assets.filter(processed_at__isnull=True)
    pending = list(waiting.values_list("pk", flat=True))
    if not pending:
        return 0
    datas = Data.objects.filter(pk__in=waiting.values("data_id"), thumbnail="")
    for data in datas.iterator(chunk_size=200):
        data_thumbnail_make(data=data, size=settings.LOUPE_THUMBNAIL_SIZE)
    deployment_rescore(deployment=deployment, progress=progress)
    PredictedAsset.objects.filter(pk__in=pending, processed_at__isnull=True).update(processed_at=timezone.now())
    stats_refresh(deployment=deployment)
    return len(pending)
