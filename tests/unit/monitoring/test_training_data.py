"""The training-data reference: set, built by a worker (READY or FAILED), disabled; its API and its polled status."""
import pytest

from dashboard.errors import ValidationFailed
from dashboard.models import AssetStatus, JobStatus, PredictedAsset
from dashboard.services.datasets import dataset_create, dataset_import_coco, dataset_version_create
from monitoring.models import OutlierReference, ReferenceSource, TrainingDataReference
from monitoring.services.outliers import deployment_rescore
from monitoring.services.training_data import training_data_compute, training_data_disable, training_data_set
from tests.unit.pipelines.test_feedback_loop import DET, api, assets, dataset_versions, detection, field_of  # noqa: F401


@pytest.fixture
def training_version(organization, jpeg_bytes):
    """A detection version of 12 annotated images, enough for a reference (k + 1 = 9)."""
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="train"), version="v1", type=DET)
    coco = {"images": [{"id": i, "file_name": f"t{i}.jpg"} for i in range(12)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [2, 3, 20 + i, 10]} for i in range(12)],
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}
    dataset_import_coco(version=version, coco=coco, images={f"t{i}.jpg": jpeg_bytes(seed=200 + i) for i in range(12)})
    return version


def test_set_training_data_is_pending_until_a_worker_builds_it(
    api, api_tokens, detection, training_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api("POST", f"/api/deployment/{detection.id}/pipeline/td/setup", api_tokens["admin"],
                       {"dataset_version_id": str(training_version.id)})
    assert response.status_code == 202 and response.json()["status"] == "PENDING" and len(callbacks) == 1
    check = api("GET", f"/api/deployment/{detection.id}/pipeline/td/check", api_tokens["labeler"]).json()
    assert (check["status"], check["progress"], check["message"]) == ("PENDING", 0.0, "")


def test_training_reference_replaces_the_history_one_and_survives_a_rescore(detection, training_version, assets):
    assets(10, AssetStatus.TO_REVIEW)
    deployment_rescore(deployment=detection, size=10)  # features, and the reference from history
    history = OutlierReference.objects.get(deployment=detection, is_active=True)
    training_data_set(deployment=detection, dataset_version=training_version)
    reference = training_data_compute(deployment=detection)
    assert (reference.status, reference.progress, reference.message) == (JobStatus.READY, 1.0, "")
    active = OutlierReference.objects.get(deployment=detection, is_active=True)
    assert active.source == ReferenceSource.TRAINING and active.size == 12
    history.refresh_from_db()
    assert history.is_active is False
    assert deployment_rescore(deployment=detection, size=10) == 10
    assert OutlierReference.objects.get(deployment=detection, is_active=True).pk == active.pk
    assert not PredictedAsset.objects.filter(outlier_score__isnull=True).exists()


def test_the_training_data_is_described_in_the_rollups_bins_and_becomes_the_drift_reference(
        detection, training_version):
    from monitoring.services.drift import TRAINING_FEATURES, drift_reference

    training_data_set(deployment=detection, dataset_version=training_version)
    reference = training_data_compute(deployment=detection)
    assert reference.size == 12
    assert sum(reference.histograms["brightness"]) == 12 and sum(reference.histograms["shapes_per_asset"]) == 12
    assert sum(reference.histograms["shape_area"]) == 12 and reference.classes == {"1": 6, "2": 6}
    described = drift_reference(deployment=detection)
    assert (described["kind"], described["size"], described["features"]) == ("training", 12, TRAINING_FEATURES)


def test_training_reference_of_too_few_images_fails_with_a_message(detection, organization, jpeg_bytes):
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="tiny"), version="v1", type=DET)
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], "categories": [{"id": 1, "name": "car"}]}
    dataset_import_coco(version=version, coco=coco, images={"a.jpg": jpeg_bytes()})
    training_data_set(deployment=detection, dataset_version=version)
    reference = training_data_compute(deployment=detection)
    assert reference.status == JobStatus.FAILED and "at least 9" in reference.message
    assert not OutlierReference.objects.filter(source=ReferenceSource.TRAINING).exists()


def test_training_data_needs_images_and_the_deployments_type(detection, deployments, dataset_versions, training_version):
    with pytest.raises(ValidationFailed) as caught:
        training_data_set(deployment=detection, dataset_version=dataset_versions[0])
    assert caught.value.errors[0].field == "dataset_version_id"
    with pytest.raises(ValidationFailed):
        training_data_set(deployment=deployments["SEGMENTATION"], dataset_version=training_version)


def test_disable_goes_back_to_history(api, api_tokens, detection, training_version, django_capture_on_commit_callbacks):
    path = f"/api/deployment/{detection.id}/pipeline/td"
    assert field_of(api("PUT", path + "/disable", api_tokens["admin"])) == ["training_data"]
    training_data_set(deployment=detection, dataset_version=training_version)
    training_data_compute(deployment=detection)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api("PUT", path + "/disable", api_tokens["admin"])
    assert response.status_code == 200 and response.json()["status"] is None and len(callbacks) == 1
    assert not TrainingDataReference.objects.exists()
    assert not OutlierReference.objects.filter(is_active=True).exists()
    with pytest.raises(ValidationFailed):
        training_data_disable(deployment=detection)


def test_training_status_is_polled_while_computing(client, users, detection, training_version):
    training_data_set(deployment=detection, dataset_version=training_version)
    client.force_login(users["labeler"])
    partial = client.get(f"/deployments/{detection.id}/feedback-loop/training", headers={"HX-Request": "true"})
    assert b'hx-trigger="every 1s"' in partial.content and b"<progress" in partial.content
    training_data_compute(deployment=detection)
    done = client.get(f"/deployments/{detection.id}/feedback-loop/training", headers={"HX-Request": "true"})
    assert b"Ready" in done.content and b"hx-trigger" not in done.content


def test_an_unexpected_error_still_ends_the_training_reference_as_failed(detection, training_version, monkeypatch):
    def broken(**_):
        raise RuntimeError("boom")

    monkeypatch.setattr("monitoring.services.outliers.outlier_reference_from_training", broken)
    training_data_set(deployment=detection, dataset_version=training_version)
    with pytest.raises(RuntimeError):
        training_data_compute(deployment=detection)
    reference = TrainingDataReference.objects.get(deployment=detection)
    assert reference.status == JobStatus.FAILED and "internal error" in reference.message
