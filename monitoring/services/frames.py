"""The per-frame work a worker does for each monitored frame once it is stored: its thumbnail, then its score."""
import datetime as dt
import functools
import io
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from PIL import Image

from dashboard.models import Data, Deployment, PredictedAsset, Prediction
from dashboard.services.background import send_key_hold, send_key_release, task_send, task_send_once
from dashboard.services.datalake import data_open, data_thumbnail_make, thumbnail_webp, thumbnail_write
from monitoring.services.stats import stats_mark_stale, stats_refresh_soon

logger = logging.getLogger(__name__)


def predicted_asset_process(*, asset: PredictedAsset, thumbnail: bool = True, batch: int | None = None) -> list:
    """The per-frame work of `asset` and of up to `batch` - 1 other frames of its deployment still waiting
    (oldest first), in one transaction (see _frames_commit); for `asset`, a thumbnail only when `thumbnail`.
    Returns the ids of the frames it processed; a failure of `asset` itself is raised after the commit, for the
    task's retries. The sweep's message for one frame; `batch` defaults to settings.LOUPE_FRAME_BATCH."""
    batch = batch or settings.LOUPE_FRAME_BATCH
    with transaction.atomic():
        # Read again under the lock: a prediction that replaced the one the message named is the work to do now.
        asset = _claim().select_related("deployment", "data").filter(pk=asset.pk).first()
        if asset is None:
            return []  # done meanwhile, or another worker holds it now
        others = _waiting(asset.deployment_id, limit=batch - 1, exclude=[asset.pk]) if batch > 1 else []
        assets = [asset, *others]
        for other in others:
            other.deployment = asset.deployment  # one label map and reference for the batch
        done, failures = _frames_commit(assets=assets, thumbnails={a.pk for a in assets if a is not asset or thumbnail},
                                        retried=asset.pk)
    if asset.pk in failures:
        raise failures[asset.pk]
    return done


def frames_drain_request(*, deployment_id) -> None:
    """Once the current transaction commits, ask a worker to drain the deployment's waiting frames: one message at
    a time per deployment, however many frames arrive while it waits or works (frames_drain looks again after it
    lets the next request send)."""
    transaction.on_commit(functools.partial(_drain_send, deployment_id, 0))


def _drain_send(deployment_id, slot: int, *, successor: bool = False) -> bool:
    """The drain's message for `slot`: unless one is outstanding (its key), or, for a drain's `successor`, whatever
    (the drain holds the key and hands it on)."""
    from monitoring import tasks

    message = dict(task=tasks.frames_drain, args=[str(deployment_id)], kwargs={"slot": slot} if slot else None)
    if successor:
        return task_send(**message)
    return task_send_once(**message, key=_drain_key(deployment_id, slot), ttl=DRAIN_KEY_SECONDS)


def _drain_key(deployment_id, slot: int) -> str:
    return f"loupe:frames-drain:{deployment_id}:{slot}"


# How long a drain's request keeps later requests from sending without the drain renewing it: a worker killed
# mid-drain delays the next frames' message by at most this long (its own message comes back later).
DRAIN_KEY_SECONDS = 10.0
# How long a drain works before it sends its successor and ends, so that a steady stream of frames does not keep
# a worker process from its other tasks.
DRAIN_TURN_SECONDS = 5.0


def frames_drain(*, deployment_id, slot: int = 0, batch: int | None = None) -> int:
    """The per-frame work of the deployment's waiting frames, `batch` at a time, oldest first, until none is left
    or its turn ends (DRAIN_TURN_SECONDS: it then sends its successor); how many frames it processed. Each batch is
    claimed and committed as in predicted_asset_process; a frame that fails is counted as a send and left to the
    next drain or the sweep.

    Slot 0 is the drain that ingest's requests send; while its batches come full it asks for a helper in the next
    slot (up to settings.LOUPE_FRAME_DRAINS at once), so several workers share a busy deployment. Before its last
    look a drain releases its request: a frame committed while the request was taken (no message sent for it)
    is then seen by that look, or by the drain a new request sends."""
    batch = batch or settings.LOUPE_FRAME_BATCH
    key = _drain_key(deployment_id, slot)
    processed, failed, released = 0, set(), False
    turn_ends = time.monotonic() + DRAIN_TURN_SECONDS
    while True:
        with transaction.atomic():
            assets = _waiting(deployment_id, limit=batch, exclude=failed)
            if assets:
                deployment = Deployment.objects.get(pk=deployment_id)  # again each batch: a new reference shows
                for asset in assets:
                    asset.deployment = deployment
                done, failures = _frames_commit(assets=assets, thumbnails={a.pk for a in assets})
        if not assets:
            if released:
                return processed
            send_key_release(key=key)
            released = True
            continue
        processed += len(done)
        failed.update(failures)
        if not released:
            send_key_hold(key=key, ttl=DRAIN_KEY_SECONDS)
            if len(assets) == batch and slot + 1 < settings.LOUPE_FRAME_DRAINS:
                _drain_send(deployment_id, slot + 1)
            elif settings.LOUPE_FRAME_GATHER:
                # A drain that keeps up would otherwise take the few frames that arrived during its last batch,
                # paying a batch's statements for each few: let the next batch gather first.
                time.sleep(settings.LOUPE_FRAME_GATHER)
            if time.monotonic() > turn_ends and _drain_send(deployment_id, slot, successor=True):
                # Its successor, at the back of the queue, holds the request from here: the tasks queued on this
                # worker meanwhile (stats, alerts, other deployments' drains) run before it.
                return processed


def _claim():
    """Frames waiting for their work, locked for this transaction; rows another worker holds are skipped (SKIP
    LOCKED), so each frame is processed by one worker, and a worker killed mid-batch commits nothing: its frames
    are still waiting for the next message or the sweep."""
    return PredictedAsset.objects.select_for_update(skip_locked=True, no_key=True, of=("self",)).filter(
        processed_at__isnull=True)


def _waiting(deployment_id, *, limit: int, exclude) -> list[PredictedAsset]:
    """Up to `limit` of the deployment's waiting frames (with their data), oldest first, claimed; not those sent
    too often already, nor those of `exclude`."""
    return list(_claim().select_related("data").filter(deployment_id=deployment_id, process_sends__lt=MAX_PROCESS_SENDS)
                .exclude(pk__in=list(exclude)).order_by("created_at")[:limit])


def _frames_commit(*, assets: list[PredictedAsset], thumbnails: set, retried=None) -> tuple[list, dict]:
    """frames_work on claimed frames of one deployment, inside the caller's transaction: the frames done are
    marked processed; each other one keeps what could be done (its score without a thumbnail, say) and counts as
    one send of the sweep's, except `retried` (its task retries it). Returns (ids done, id -> exception)."""
    failures = frames_work(assets=assets, thumbnails=thumbnails)
    done = [a.pk for a in assets if a.pk not in failures]
    now = timezone.now()
    PredictedAsset.objects.filter(pk__in=done).update(processed_at=now)
    if failures:
        PredictedAsset.objects.filter(pk__in=list(failures)).exclude(pk=retried).update(
            process_sends=F("process_sends") + 1, process_sent_at=now)
    transaction.on_commit(functools.partial(logger.info, "frames processed: %s", " ".join(str(pk) for pk in done)))
    return done, failures


def frames_work(*, assets: list[PredictedAsset], thumbnails: set) -> dict:
    """The work of frames of one deployment (with their data): thumbnails of the data of `thumbnails` (asset ids)
    that has none, features, scores, stats marks, written in a few statements for all. Returns asset id ->
    the exception that stopped part of its work."""
    from monitoring.services.outliers import asset_vectors_store, assets_score, features_of_content, stored_vectors

    if not assets:
        return {}
    deployment = assets[0].deployment
    size = settings.LOUPE_THUMBNAIL_SIZE
    failures: dict = {}
    vectors = stored_vectors(assets=assets)
    shapes = dict(Prediction.objects.filter(asset_id__in=[a.pk for a in assets if a.pk not in vectors],
                                            is_shadow=False).values_list("asset_id", "shapes"))
    class_ids = sorted(deployment.class_ids)
    computed, thumbnailed = {}, {}
    for asset in assets:
        data = asset.data
        make_thumbnail = asset.pk in thumbnails and not data.thumbnail and data.pk not in thumbnailed
        if asset.pk in vectors and not make_thumbnail:
            continue
        try:
            with data_open(data) as file:
                content = file.read()
            image = Image.open(io.BytesIO(content))
            if image.format != "JPEG":
                image.load()  # a PNG is decoded once, whole, for both
            if asset.pk not in vectors:
                computed[asset.pk] = features_of_content(asset=asset, content=content, image=image,
                                                         shapes=shapes.get(asset.pk) or [], class_ids=class_ids)
            if make_thumbnail:
                # A JPEG's own decode: draft picks another scale for the thumbnail than for the features.
                webp = thumbnail_webp(image=image if image.format != "JPEG" else Image.open(io.BytesIO(content)),
                                      size=size)
                thumbnailed[data.pk] = thumbnail_write(data=data, size=size, content=webp)
        except Exception as error:  # an unreadable image, a storage error: the other frames go on
            logger.warning("per-frame work of asset %s: %s", asset.pk, error)
            failures[asset.pk] = error
    asset_vectors_store(vectors=computed)
    vectors.update(computed)
    if thumbnailed:
        Data.objects.bulk_update([Data(pk=pk, thumbnail=path) for pk, path in thumbnailed.items()], ["thumbnail"])
        for asset in assets:
            if asset.data_id in thumbnailed:
                asset.data.thumbnail = thumbnailed[asset.data_id]
    assets_score(deployment=deployment, vectors=vectors)
    # Features and score (or what of them exists) change what the assets add to the stats rollups.
    stats_mark_stale(deployment_id=deployment.pk, asset_ids=[asset.pk for asset in assets])
    stats_refresh_soon(deployment_id=deployment.pk)
    return failures


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
