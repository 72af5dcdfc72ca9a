"""The training-data reference through a real Celery worker: PENDING -> READY, and the deployment measured against it."""
import pytest

from dashboard.models import JobStatus
from monitoring.models import OutlierReference, ReferenceSource, TrainingDataReference
from dashboard.services.datasets import dataset_create, dataset_import_coco, dataset_version_create
from monitoring.services.training_data import training_data_set
from monitoring.services.ingest import prediction_ingest

DET = "OBJECT_DETECTION"


@pytest.fixture
def training_version(organization, jpeg_bytes):
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="train"), version="v1", type=DET)
    coco = {"images": [{"id": i, "file_name": f"t{i}.jpg"} for i in range(12)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 3, 20 + i, 10]} for i in range(12)],
            "categories": [{"id": 1, "name": "car"}]}
    dataset_import_coco(version=version, coco=coco, images={f"t{i}.jpg": jpeg_bytes(seed=300 + i) for i in range(12)})
    return version


def test_set_training_data_goes_ready_and_becomes_the_active_reference(
    celery_worker_live, deployments, training_version, monitor_payload, wait_until
):
    deployment = deployments[DET]
    assets = [prediction_ingest(deployment=deployment, payload=monitor_payload(DET)).asset for _ in range(3)]
    reference = training_data_set(deployment=deployment, dataset_version=training_version)
    assert reference.status == JobStatus.PENDING

    def status():
        return TrainingDataReference.objects.get(deployment=deployment).status in (JobStatus.READY, JobStatus.FAILED)

    wait_until(status, timeout=60, message="the worker did not build the training reference")
    reference.refresh_from_db()
    assert (reference.status, reference.progress, reference.message) == (JobStatus.READY, 1.0, "")
    active = OutlierReference.objects.get(deployment=deployment, is_active=True)
    assert active.source == ReferenceSource.TRAINING and active.size == 12
    # The rescore it enqueued scores the deployment's assets against the training data, and keeps it active.
    scored = deployment.predicted_assets.filter(pk__in=[a.pk for a in assets], outlier_score__isnull=False)
    wait_until(lambda: scored.count() == 3, timeout=60, message="the rescore did not score the assets")
    assert OutlierReference.objects.get(deployment=deployment, is_active=True).pk == active.pk
