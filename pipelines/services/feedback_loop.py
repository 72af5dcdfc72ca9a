"""Writes of the feedback loop: setting it up, attaching dataset versions, and submitting reviewed predictions."""
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, QuerySet

from dashboard.errors import FieldError, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import AssetStatus, DatasetVersion, Deployment, PredictedAsset
from dashboard.services.datasets import AssetPut, dataset_assets_put, dataset_version_check
from monitoring.services.stats import stats_mark_stale, stats_refresh_soon
from pipelines.models import FeedbackLoop
from pipelines.services.training import continuous_training_check


@dataclass(frozen=True)
class SubmitResult:
    submitted: int
    skipped: int
    added: int = 0  # images new to the versions (summed over the attached versions)
    updated: int = 0  # images the versions held already, whose annotation the newest review replaced


def _loop_of(deployment: Deployment) -> FeedbackLoop:
    loop = FeedbackLoop.objects.filter(deployment=deployment).first()
    if loop is None:
        raise ValidationFailed.from_errors(
            [FieldError("feedback_loop", "is not set up for this deployment: set it up first (pipeline/fl/setup)")]
        )
    return loop


def feedback_loop_setup(*, deployment: Deployment, dataset_version: DatasetVersion | None = None) -> FeedbackLoop:
    """Set up the deployment's feedback loop (active), attaching the version if one is given; safe to repeat."""
    if dataset_version is not None:
        dataset_version_check(deployment=deployment, dataset_version=dataset_version)
    with transaction.atomic():
        loop, _ = FeedbackLoop.objects.get_or_create(deployment=deployment)
        if dataset_version is not None:
            loop.dataset_versions.add(dataset_version)
    return loop


def feedback_loop_attach(*, deployment: Deployment, dataset_version: DatasetVersion) -> FeedbackLoop:
    dataset_version_check(deployment=deployment, dataset_version=dataset_version)
    loop = _loop_of(deployment)
    loop.dataset_versions.add(dataset_version)
    return loop


def feedback_loop_detach(*, deployment: Deployment, dataset_version: DatasetVersion) -> FeedbackLoop:
    loop = _loop_of(deployment)
    if not loop.dataset_versions.filter(pk=dataset_version.pk).exists():
        raise ValidationFailed.from_errors([FieldError("dataset_version_id", "is not attached to the feedback loop")])
    loop.dataset_versions.remove(dataset_version)
    return loop


def feedback_loop_toggle(*, deployment: Deployment, active: bool) -> FeedbackLoop:
    fields = Fields()
    active = fields.boolean(active, "active")
    fields.check()
    loop = _loop_of(deployment)
    FeedbackLoop.objects.filter(pk=loop.pk).update(active=active)
    loop.active = active
    return loop


def feedback_loop_submit(*, deployment: Deployment, assets: QuerySet[PredictedAsset]) -> SubmitResult:
    """Add the REVIEWED assets among `assets`, with their reviewed shapes, to every attached dataset version.

    Each asset is claimed by a conditional update (REVIEWED -> SUBMITTED): of two submits racing for it, only
    one claims it, so nothing lands twice. The others given (to review, already submitted) are skipped.
    """
    with transaction.atomic():
        loop = _loop_of(deployment)
        if not loop.active:
            raise ValidationFailed.from_errors(
                [FieldError("feedback_loop", "is inactive: turn it on (PUT pipeline/fl {\"active\": true}) to submit")]
            )
        versions = list(loop.dataset_versions.all())
        if not versions:
            raise ValidationFailed.from_errors(
                [FieldError("dataset_version_id", "no dataset version is attached to the feedback loop")]
            )
        candidates = list(assets.filter(deployment=deployment).select_related("data").order_by("timestamp", "id"))
        reviewed = [asset for asset in candidates if asset.status == AssetStatus.REVIEWED]
        if not reviewed:
            counts = {status: sum(a.status == status for a in candidates) for status in AssetStatus.values}
            detail = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "none found"
            raise ValidationFailed.from_errors(
                [FieldError("predicted_asset_ids", f"none of these predicted assets is REVIEWED ({detail})")]
            )
        claimed = [
            asset for asset in reviewed
            if PredictedAsset.objects.filter(pk=asset.pk, status=AssetStatus.REVIEWED)
            .update(status=AssetStatus.SUBMITTED, version=F("version") + 1)
        ]
        # A version keeps one asset per image: an image it holds already (submitted before from another frame of
        # the same image, or imported) takes the newest review as its annotation.
        newest_last = sorted(claimed, key=lambda asset: (asset.reviewed_at is not None, asset.reviewed_at, asset.pk))
        items = [AssetPut(data_id=asset.data_id, filename=asset.filename or asset.data.filename, width=asset.width,
                          height=asset.height, shapes=asset.reviewed_shapes or [], created_by_id=asset.reviewed_by_id,
                          source_asset_id=asset.pk) for asset in newest_last]
        added = updated = 0
        for version in versions:
            version_added, version_updated = dataset_assets_put(version=version, items=items)
            added, updated = added + version_added, updated + version_updated
        if claimed:
            stats_mark_stale(deployment_id=deployment.pk, asset_ids=[asset.pk for asset in claimed])
            stats_refresh_soon(deployment_id=deployment.pk)
            _labels_adopt(deployment, versions)
            FeedbackLoop.objects.filter(pk=loop.pk).update(
                submitted_since_training=F("submitted_since_training") + len(claimed)
            )
            # In this transaction, after the count: of racing submits, the one that crossed the threshold starts it.
            continuous_training_check(deployment=deployment)
    return SubmitResult(submitted=len(claimed), skipped=len(candidates) - len(claimed), added=added, updated=updated)


def _labels_adopt(deployment: Deployment, versions: list[DatasetVersion]) -> None:
    # A version learns the names of the deployment's classes it did not know, so exports can name them.
    names = {str(label.class_id): label.name for label in deployment.labels.all()}
    for version in versions:
        missing = {key: name for key, name in names.items() if key not in version.labels}
        if missing:
            version.labels = {**version.labels, **missing}
            version.save(update_fields=["labels"])
