"""Writes of a deployment's data pipeline: the feedback loop that turns reviews into training data, and the
training-data reference its outlier scores are measured against."""
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet

from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import (
    Annotation, AssetStatus, DatasetAsset, DatasetVersion, Deployment, FeedbackLoop, JobStatus, OutlierReference,
    PredictedAsset, ReferenceSource, TrainingDataReference,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitResult:
    submitted: int
    skipped: int


def _check_version(*, deployment: Deployment, dataset_version: DatasetVersion, field: str = "dataset_version_id") -> None:
    errors = []
    if dataset_version.dataset.organization_id != deployment.organization_id:
        errors.append(FieldError(field, "belongs to another organization"))
    elif dataset_version.type != deployment.type:
        errors.append(FieldError(field, f"is a {dataset_version.type} version; this deployment is {deployment.type}"))
    if errors:
        raise ValidationFailed.from_errors(errors)


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
        _check_version(deployment=deployment, dataset_version=dataset_version)
    with transaction.atomic():
        loop, _ = FeedbackLoop.objects.get_or_create(deployment=deployment)
        if dataset_version is not None:
            loop.dataset_versions.add(dataset_version)
    return loop


def feedback_loop_attach(*, deployment: Deployment, dataset_version: DatasetVersion) -> FeedbackLoop:
    _check_version(deployment=deployment, dataset_version=dataset_version)
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
    if not isinstance(active, bool):
        raise ValidationFailed.from_errors([FieldError("active", "must be true or false")])
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
        rows, annotations = [], []
        for version in versions:
            for asset in claimed:
                row = DatasetAsset(version=version, data=asset.data, filename=asset.filename or asset.data.filename,
                                   width=asset.width, height=asset.height, source_asset=asset)
                rows.append(row)
                annotations.append(Annotation(asset=row, shapes=asset.reviewed_shapes or [],
                                              created_by_id=asset.reviewed_by_id))
        DatasetAsset.objects.bulk_create(rows)
        Annotation.objects.bulk_create(annotations)
        if claimed:
            _labels_adopt(deployment, versions)
            FeedbackLoop.objects.filter(pk=loop.pk).update(
                submitted_since_training=F("submitted_since_training") + len(claimed)
            )
    return SubmitResult(submitted=len(claimed), skipped=len(candidates) - len(claimed))


def _labels_adopt(deployment: Deployment, versions: list[DatasetVersion]) -> None:
    # A version learns the names of the deployment's classes it did not know, so exports can name them.
    names = {str(label.class_id): label.name for label in deployment.labels.all()}
    for version in versions:
        missing = {key: name for key, name in names.items() if key not in version.labels}
        if missing:
            version.labels = {**version.labels, **missing}
            version.save(update_fields=["labels"])


# Training data reference


def training_data_set(*, deployment: Deployment, dataset_version: DatasetVersion) -> TrainingDataReference:
    """Make this version the deployment's training data; a worker builds the outlier reference from it."""
    from dashboard.tasks import deployment_compute_training_reference

    _check_version(deployment=deployment, dataset_version=dataset_version)
    if not dataset_version.assets.exists():
        raise ValidationFailed.from_errors([FieldError("dataset_version_id", "has no images")])
    with transaction.atomic():
        reference, _ = TrainingDataReference.objects.update_or_create(
            deployment=deployment,
            defaults={"dataset_version": dataset_version, "status": JobStatus.PENDING, "progress": 0.0, "message": ""},
        )
        deployment_compute_training_reference.delay_on_commit(str(deployment.pk))
    return reference


def training_data_compute(*, deployment: Deployment) -> TrainingDataReference | None:
    """Build the reference from the training data (COMPUTING -> READY or FAILED), then rescore the deployment."""
    from dashboard.outliers.services import outlier_reference_from_training
    from dashboard.outliers.tasks import deployment_rescore_outliers

    reference = TrainingDataReference.objects.select_related("dataset_version").filter(deployment=deployment).first()
    if reference is None:
        return None  # disabled since it was enqueued
    row = TrainingDataReference.objects.filter(pk=reference.pk, dataset_version_id=reference.dataset_version_id)
    row.update(status=JobStatus.COMPUTING, progress=0.0, message="")

    def progress(share: float) -> None:
        row.update(progress=round(min(share, 1.0) * 0.95, 3))

    try:
        outlier_reference_from_training(deployment=deployment, version=reference.dataset_version, progress=progress)
    except (ValueError, OSError) as error:
        logger.warning("training reference of deployment %s failed: %s", deployment.pk, error)
        row.update(status=JobStatus.FAILED, message=str(error)[:500])
    except IntegrityError:
        # Another build made the active reference at the same moment (the unique constraint decided).
        row.update(status=JobStatus.FAILED, message="another reference was built at the same moment; set it again")
    except Exception:
        # Whatever went wrong, the page and the client must not wait on COMPUTING forever.
        row.update(status=JobStatus.FAILED, message="internal error; it has been logged")
        raise
    else:
        row.update(status=JobStatus.READY, progress=1.0)
        deployment_rescore_outliers.delay_on_commit(str(deployment.pk))
    reference.refresh_from_db()
    return reference


def training_data_disable(*, deployment: Deployment) -> None:
    """Forget the training data: scores go back to the deployment's own history (rebuilt by a rescore)."""
    from dashboard.outliers.tasks import deployment_rescore_outliers

    with transaction.atomic():
        deleted, _ = TrainingDataReference.objects.filter(deployment=deployment).delete()
        changed = OutlierReference.objects.filter(
            deployment=deployment, is_active=True, source=ReferenceSource.TRAINING
        ).update(is_active=False)
        if not deleted and not changed:
            raise ValidationFailed.from_errors([FieldError("training_data", "is not set for this deployment")])
        deployment_rescore_outliers.delay_on_commit(str(deployment.pk))
