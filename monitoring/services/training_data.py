"""Writes of the training-data reference: the dataset version a deployment's outlier scores are measured against."""
import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import DatasetVersion, Deployment, JobStatus
from dashboard.services.background import task_send, task_send_on_commit
from dashboard.services.datasets import dataset_version_check
from monitoring.models import OutlierReference, ReferenceSource, TrainingDataReference
from monitoring.services import outliers
from monitoring.services.stats import TrainingFigures

logger = logging.getLogger(__name__)


def training_data_set(*, deployment: Deployment, dataset_version: DatasetVersion) -> TrainingDataReference:
    """Make this version the deployment's training data; a worker builds the outlier reference from it."""
    from monitoring import tasks

    dataset_version_check(deployment=deployment, dataset_version=dataset_version)
    if not dataset_version.assets.exists():
        raise ValidationFailed.from_errors([FieldError("dataset_version_id", "has no images")])
    with transaction.atomic():
        reference, _ = TrainingDataReference.objects.update_or_create(
            deployment=deployment,
            defaults={"dataset_version": dataset_version, "status": JobStatus.PENDING, "progress": 0.0, "message": ""},
        )
        task_send_on_commit(task=tasks.training_data_compute, args=[str(deployment.pk)])  # PENDING: swept if lost
    return reference


def training_data_compute(*, deployment: Deployment) -> TrainingDataReference | None:
    """Build the reference from the training data (COMPUTING -> READY or FAILED), then rescore the deployment."""
    from monitoring import tasks

    reference = TrainingDataReference.objects.select_related("dataset_version").filter(deployment=deployment).first()
    if reference is None:
        return None  # disabled since it was enqueued
    row = TrainingDataReference.objects.filter(pk=reference.pk, dataset_version_id=reference.dataset_version_id)
    row.update(status=JobStatus.COMPUTING, progress=0.0, message="")

    def progress(share: float) -> None:
        row.update(progress=round(min(share, 1.0) * 0.95, 3))

    try:
        described = TrainingFigures()
        outliers.outlier_reference_from_training(deployment=deployment, version=reference.dataset_version,
                                                 progress=progress, observe=described.add)
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
        # What the training data looks like, kept for drift: its histograms in the rollups' bins.
        row.update(status=JobStatus.READY, progress=1.0, size=described.count, histograms=described.histograms,
                   classes=described.classes)
        task_send_on_commit(task=tasks.deployment_rescore, args=[str(deployment.pk)])
    reference.refresh_from_db()
    return reference


def training_data_disable(*, deployment: Deployment) -> None:
    """Forget the training data: scores go back to the deployment's own history (rebuilt by a rescore)."""
    from monitoring import tasks

    with transaction.atomic():
        deleted, _ = TrainingDataReference.objects.filter(deployment=deployment).delete()
        changed = OutlierReference.objects.filter(
            deployment=deployment, is_active=True, source=ReferenceSource.TRAINING
        ).update(is_active=False)
        if not deleted and not changed:
            raise ValidationFailed.from_errors([FieldError("training_data", "is not set for this deployment")])
        task_send_on_commit(task=tasks.deployment_rescore, args=[str(deployment.pk)])


def training_data_catch_up(*, older_than: dt.timedelta, limit: int) -> int:
    """Send the build again for training data left PENDING more than `older_than` (its message lost with the
    broker); how many were sent. Each send touches the row, so a slow queue gets one more message per period."""
    from monitoring import tasks

    cutoff = timezone.now()
    waiting = list(TrainingDataReference.objects.filter(status=JobStatus.PENDING, updated_at__lt=cutoff - older_than)
                   .order_by("updated_at").values_list("pk", "deployment_id")[:limit])
    sent = 0
    for pk, deployment_id in waiting:
        if not task_send(task=tasks.training_data_compute, args=[str(deployment_id)]):
            break
        TrainingDataReference.objects.filter(pk=pk, status=JobStatus.PENDING).update(updated_at=cutoff)
        sent += 1
    return sent
