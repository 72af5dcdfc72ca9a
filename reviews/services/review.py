"""Writes of the review tool: saving one asset's reviewed shapes under optimistic locking, and bulk accepting."""
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, QuerySet, Subquery
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, NotFound, ValidationFailed
from dashboard.selectors.predictions import asset_predictions
from dashboard.shapes import shapes_validate
from monitoring.services.stats import stats_mark_stale, stats_refresh_soon
from dashboard.models import AssetStatus, AssetTerm, Deployment, InferenceType, PredictedAsset
from reviews.models import Review, ReviewKind
from reviews.services.campaigns import tasks_done_by_review


def _conflict(asset_id) -> Conflict:
    """What the client needs to show both versions: the stored one, its shapes and who saved it."""
    current = PredictedAsset.objects.select_related("reviewed_by").filter(pk=asset_id).first()
    if current is None:
        return NotFound(f"predicted asset {asset_id} not found")
    extra = {
        "version": current.version,
        "status": current.status,
        "reviewed_shapes": current.reviewed_shapes,
        "reviewed_by": current.reviewed_by.get_username() if current.reviewed_by else None,
        "reviewed_at": current.reviewed_at.isoformat() if current.reviewed_at else None,
    }
    if current.status == AssetStatus.SUBMITTED:
        return Conflict("this asset was already submitted to the feedback loop; its review can no longer change", **extra)
    who = extra["reviewed_by"] or "someone"
    return Conflict(f"{who} saved this asset since you opened it (version {current.version})", **extra)


def review_submit(
    *, asset_id, reviewer: AbstractBaseUser, shapes, expected_version: int | None, kind: str = ReviewKind.REVIEW,
    deployment: Deployment | None = None, asset: PredictedAsset | None = None,
) -> PredictedAsset:
    """Save the reviewer's shapes if the asset is still at `expected_version` (None: whatever it is now).

    With `deployment`, an asset of another deployment is not found. `asset` is the asset already read, with its
    version, size and deployment's type (reviews.selectors.asset_for_review), so it is not read again; the
    conditional UPDATE checks the version all the same.

    Returns the asset as saved: its review fields (status, version, reviewed_shapes, reviewed_by, reviewed_at)
    hold what was written; other fields are read only if asked for. A caller that shows more reads it again.
    """
    # Only what validation and the write need: not the stored review, which can be thousands of shapes of JSON.
    if asset is None or asset.pk != asset_id:
        assets = PredictedAsset.objects.filter(deployment=deployment) if deployment is not None else PredictedAsset.objects
        asset = (assets.select_related("deployment")
                 .only("version", "width", "height", "deployment_id", "deployment__type").filter(pk=asset_id).first())
    if asset is None:
        raise NotFound(f"predicted asset {asset_id} not found")
    if expected_version is None:
        expected_version = asset.version
    elif not isinstance(expected_version, int) or isinstance(expected_version, bool):
        raise ValidationFailed.from_errors([FieldError("expected_version", "must be an integer")])
    clean = shapes_validate(shapes=shapes, inference_type=asset.deployment.type, class_ids=asset.deployment.class_ids,
                            width=asset.width, height=asset.height)
    now = timezone.now()
    with transaction.atomic():
        if not _update_if_current(asset_id=asset.pk, version=expected_version, shapes=clean, reviewer=reviewer,
                                  now=now):
            raise _conflict(asset.pk)
        # The history row copies, inside the database, the shapes the UPDATE just stored (its lock holds them till
        # the commit): the JSON is not encoded, sent and parsed a second time.
        stored = PredictedAsset.objects.filter(pk=asset.pk).values("reviewed_shapes")
        Review.objects.create(asset_id=asset.pk, reviewer=reviewer, kind=kind, shapes=Subquery(stored),
                              based_on_version=expected_version)
        reviewed_terms_set(asset_id=asset.pk, deployment_id=asset.deployment_id, shapes=clean)
        tasks_done_by_review(asset_ids=[asset.pk], user=reviewer)
        stats_mark_stale(deployment_id=asset.deployment_id, asset_ids=[asset.pk])
        stats_refresh_soon(deployment_id=asset.deployment_id)
    # The UPDATE matched `expected_version`, so what the row now holds is known without reading it back.
    asset.status, asset.version, asset.reviewed_shapes = AssetStatus.REVIEWED, expected_version + 1, clean
    asset.reviewed_by, asset.reviewed_at = reviewer, now
    return asset


def reviewed_terms_set(*, asset_id, deployment_id, shapes: list[dict]) -> None:
    """The classes the review settled on, as search terms (reviewed_label:car in the queue's language)."""
    AssetTerm.objects.filter(asset_id=asset_id, term__startswith="reviewed:").delete()
    AssetTerm.objects.bulk_create(AssetTerm(deployment_id=deployment_id, asset_id=asset_id, term=f"reviewed:{label_id}")
                                  for label_id in sorted({shape["label_id"] for shape in shapes}))


def _update_if_current(*, asset_id, version: int, shapes: list[dict], reviewer, now=None) -> bool:
    # One conditional UPDATE: the row lock it takes makes the version check and the write one step.
    return bool(
        PredictedAsset.objects.filter(pk=asset_id, version=version)
        .exclude(status=AssetStatus.SUBMITTED)
        .update(reviewed_shapes=shapes, status=AssetStatus.REVIEWED, version=F("version") + 1,
                reviewed_by=reviewer, reviewed_at=now or timezone.now())
    )


def bulk_accept(*, deployment: Deployment, assets: QuerySet[PredictedAsset], reviewer: AbstractBaseUser,
                min_score: float) -> int:
    """Accept the champion's shapes scored at least `min_score` on each asset not yet submitted; how many were saved.

    An asset changed by someone else meanwhile is skipped, not overwritten.
    """
    accepted = []
    candidates = (
        assets.filter(deployment=deployment, status__in=[AssetStatus.TO_REVIEW, AssetStatus.REVIEWED])
        .prefetch_related("predictions").order_by()
    )
    for asset in candidates.iterator(chunk_size=500):
        shapes = [shape for shape in asset_predictions(asset).champion_shapes if shape["score"] >= min_score]
        if deployment.type == InferenceType.CLASSIFICATION and len(shapes) != 1:
            continue  # nothing confident enough to accept: a person must choose the class
        with transaction.atomic():
            if _update_if_current(asset_id=asset.pk, version=asset.version, shapes=shapes, reviewer=reviewer):
                Review.objects.create(asset_id=asset.pk, reviewer=reviewer, kind=ReviewKind.BULK_ACCEPT,
                                      shapes=shapes, based_on_version=asset.version)
                reviewed_terms_set(asset_id=asset.pk, deployment_id=deployment.pk, shapes=shapes)
                accepted.append(asset.pk)
    if accepted:
        tasks_done_by_review(asset_ids=accepted, user=reviewer)
        stats_mark_stale(deployment_id=deployment.pk, asset_ids=accepted)
        stats_refresh_soon(deployment_id=deployment.pk)
    return len(accepted)
