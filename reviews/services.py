"""Writes of the review tool: saving one asset's reviewed shapes under optimistic locking, and bulk accepting."""
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, QuerySet, Subquery
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, NotFound, ValidationFailed
from dashboard.shapes import MAX_POLYGON_POINTS, MAX_SHAPES, is_finite_number
from dashboard.models import AssetStatus, Deployment, InferenceType, PredictedAsset
from reviews.models import Review, ReviewKind


def shapes_validate(*, shapes, deployment: Deployment, width: int, height: int) -> list[dict]:
    """Reviewed shapes in Loupe's format, checked against the deployment's label map and the asset's frame.

    Every error is collected, each naming its shape, so a client can point at all of them at once.
    """
    if not isinstance(shapes, list):
        raise ValidationFailed.from_errors([FieldError("shapes", "must be a list")])
    if len(shapes) > MAX_SHAPES:
        raise ValidationFailed.from_errors([FieldError("shapes", f"{len(shapes)} shapes is over the limit of {MAX_SHAPES}")])
    known = set(deployment.labels.values_list("class_id", flat=True))
    is_classification = deployment.type == InferenceType.CLASSIFICATION
    errors: list[FieldError] = []
    clean = []
    for index, shape in enumerate(shapes):
        where = f"shapes[{index}]"
        if not isinstance(shape, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        before = len(errors)
        kind = shape.get("type")
        label_id = shape.get("label_id")
        if not isinstance(label_id, int) or isinstance(label_id, bool):
            errors.append(FieldError(f"{where}.label_id", f"must be an integer class id, not {label_id!r}"))
        elif label_id not in known:
            listed = ", ".join(str(class_id) for class_id in sorted(known)) or "none"
            errors.append(FieldError(f"{where}.label_id", f"unknown class id {label_id} (the label map has: {listed})"))
        item = {"type": kind, "label_id": label_id}
        score = shape.get("score")
        if score is not None:
            if not is_finite_number(score) or not 0 <= score <= 1:
                errors.append(FieldError(f"{where}.score", f"must be a number in [0, 1], not {score!r}"))
            item["score"] = score
        if is_classification != (kind == "classification"):
            expected = "classification" if is_classification else "rectangle or polygon"
            errors.append(FieldError(f"{where}.type", f"must be {expected} for a {deployment.type} deployment, not {kind!r}"))
        elif kind == "rectangle":
            errors += _rectangle_errors(shape, where, width, height)
            item.update({name: shape.get(name) for name in ("x", "y", "w", "h")})
        elif kind == "polygon":
            errors += _polygon_errors(shape.get("points"), where, width, height)
            item["points"] = shape.get("points")
        if len(errors) == before:
            clean.append(item)
    if is_classification and len(shapes) != 1 and not errors:
        errors.append(FieldError("shapes", f"a classification takes exactly one class, not {len(shapes)}"))
    if errors:
        raise ValidationFailed.from_errors(errors)
    return clean


def _rectangle_errors(shape: dict, where: str, width: int, height: int) -> list[FieldError]:
    values = {name: shape.get(name) for name in ("x", "y", "w", "h")}
    bad = [FieldError(f"{where}.{name}", f"must be a finite number, not {value!r}")
           for name, value in values.items() if not is_finite_number(value)]
    if bad:
        return bad
    x, y, w, h = values.values()
    if w <= 0 or h <= 0:
        return [FieldError(f"{where}.w" if w <= 0 else f"{where}.h", "must be positive")]
    if x < 0 or y < 0 or x + w > width or y + h > height:
        return [FieldError(where, f"box ({x}, {y}, {w}, {h}) leaves the {width}×{height} frame")]
    return []


def _polygon_errors(points, where: str, width: int, height: int) -> list[FieldError]:
    if not isinstance(points, list) or not 3 <= len(points) <= MAX_POLYGON_POINTS:
        return [FieldError(f"{where}.points", f"must be a list of 3 to {MAX_POLYGON_POINTS} [x, y] points")]
    for number, point in enumerate(points):
        if not (isinstance(point, list) and len(point) == 2 and all(is_finite_number(v) for v in point)):
            return [FieldError(f"{where}.points[{number}]", f"must be [x, y] with finite numbers, not {point!r}")]
        if not (0 <= point[0] <= width and 0 <= point[1] <= height):
            return [FieldError(f"{where}.points[{number}]", f"{point} lies outside the {width}×{height} frame")]
    return []


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
    *, asset_id, reviewer: AbstractBaseUser, shapes, expected_version: int | None, kind: str = ReviewKind.REVIEW
) -> PredictedAsset:
    """Save the reviewer's shapes if the asset is still at `expected_version` (None: whatever it is now).

    Returns the asset as saved: its review fields (status, version, reviewed_shapes, reviewed_by, reviewed_at)
    hold what was written; other fields are read only if asked for. A caller that shows more reads it again.
    """
    # Only what validation and the write need: not the stored review, which can be thousands of shapes of JSON.
    asset = (PredictedAsset.objects.select_related("deployment")
             .only("version", "width", "height", "deployment__type").filter(pk=asset_id).first())
    if asset is None:
        raise NotFound(f"predicted asset {asset_id} not found")
    if expected_version is None:
        expected_version = asset.version
    elif not isinstance(expected_version, int) or isinstance(expected_version, bool):
        raise ValidationFailed.from_errors([FieldError("expected_version", "must be an integer")])
    clean = shapes_validate(shapes=shapes, deployment=asset.deployment, width=asset.width, height=asset.height)
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
    # The UPDATE matched `expected_version`, so what the row now holds is known without reading it back.
    asset.status, asset.version, asset.reviewed_shapes = AssetStatus.REVIEWED, expected_version + 1, clean
    asset.reviewed_by, asset.reviewed_at = reviewer, now
    return asset


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
    accepted = 0
    candidates = (
        assets.filter(deployment=deployment, status__in=[AssetStatus.TO_REVIEW, AssetStatus.REVIEWED])
        .prefetch_related("predictions").order_by()
    )
    for asset in candidates.iterator(chunk_size=500):
        champion = next((p for p in asset.predictions.all() if not p.is_shadow), None)
        shapes = [shape for shape in (champion.shapes if champion else []) if shape["score"] >= min_score]
        if deployment.type == InferenceType.CLASSIFICATION and len(shapes) != 1:
            continue  # nothing confident enough to accept: a person must choose the class
        with transaction.atomic():
            if _update_if_current(asset_id=asset.pk, version=asset.version, shapes=shapes, reviewer=reviewer):
                Review.objects.create(asset_id=asset.pk, reviewer=reviewer, kind=ReviewKind.BULK_ACCEPT,
                                      shapes=shapes, based_on_version=asset.version)
                accepted += 1
    return accepted
