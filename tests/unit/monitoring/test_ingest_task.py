"""The worker's task of one monitored frame: the thumbnail of new data and the outlier score, one read of the image."""
import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from dashboard.models import Data
from monitoring.models import AssetFeatures
from monitoring.services.ingest import prediction_ingest
from monitoring.services.outliers import asset_outlier_score
from monitoring.tasks import predicted_asset_process

DET = "OBJECT_DETECTION"


@pytest.fixture
def frame(deployments, monitor_payload, jpeg_bytes):
    def ingest(seed: int):
        payload = monitor_payload(DET, image=jpeg_bytes(800, 600, seed=seed), width=800, height=600)
        return prediction_ingest(deployment=deployments[DET], payload=payload).asset

    return ingest


def _features(asset) -> np.ndarray:
    return np.frombuffer(bytes(AssetFeatures.objects.get(asset=asset).vector), dtype="<f4")


def test_the_task_makes_the_thumbnail_and_the_features_of_the_scoring_task(frame):
    asset = frame(1)
    predicted_asset_process(str(asset.id), thumbnail=True)

    data = Data.objects.get(pk=asset.data_id)
    with default_storage.open(data.thumbnail.name, "rb") as file:
        thumbnail = Image.open(file)
        assert (thumbnail.format, thumbnail.size) == ("WEBP", (320, 240))
    from_bytes = _features(asset)
    # The same vector, bit for bit, as scoring alone reading the image from storage on its own.
    AssetFeatures.objects.filter(asset=asset).delete()
    asset_outlier_score(asset=asset)
    np.testing.assert_array_equal(_features(asset), from_bytes)


def test_a_frame_of_known_data_gets_its_features_and_no_new_thumbnail(frame):
    asset = frame(2)
    predicted_asset_process(str(asset.id), thumbnail=False)
    assert Data.objects.get(pk=asset.data_id).thumbnail.name == ""
    assert len(_features(asset)) > 0


def test_the_score_is_kept_even_when_the_thumbnail_fails(frame, monkeypatch):
    from monitoring.services import frames

    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(frames, "thumbnail_write", broken)
    asset = frame(3)
    with pytest.raises(OSError):
        predicted_asset_process._orig_run(str(asset.id))  # the task's body, without Celery's autoretry around it
    assert len(_features(asset)) > 0


def test_a_deleted_asset_is_skipped(db):
    predicted_asset_process("00000000-0000-0000-0000-000000000000")
