"""loupe_sdk's data-pipeline calls against a real Loupe server and worker: feedback loop, training data, export."""
import json
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import loupe_sdk  # noqa: F401
except ImportError:  # the package is not pip-installed in this environment: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from loupe_sdk import Client, DatasetVersion
from loupe_sdk.exceptions import BadRequestError, NotFoundError

from dashboard.models import AssetStatus, DatasetAsset, PredictedAsset
from dashboard.services.datasets import dataset_create, dataset_import_coco, dataset_version_create

pytestmark = pytest.mark.django_db(transaction=True)
DET = "OBJECT_DETECTION"
BOX = {"type": "rectangle", "label_id": 1, "score": 1.0, "x": 4, "y": 6, "w": 20, "h": 10}


@pytest.fixture
def client(live_server, demo_org, settings):
    settings.LOUPE_PUBLIC_URL = live_server.url
    with Client(api_token=demo_org.api_token, organization_name=demo_org.organization.name,
                host=live_server.url) as connected:
        yield connected


@pytest.fixture
def dataset(organization, jpeg_bytes):
    """Dataset "roads": v1 with 12 annotated images (enough for a reference), v2 empty."""
    dataset = dataset_create(organization=organization, name="roads")
    v1 = dataset_version_create(dataset=dataset, version="v1", type=DET)
    dataset_version_create(dataset=dataset, version="v2", type=DET)
    coco = {"images": [{"id": i, "file_name": f"r{i}.jpg"} for i in range(12)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 3, 20, 10 + i]} for i in range(12)],
            "categories": [{"id": 1, "name": "car"}]}
    dataset_import_coco(version=v1, coco=coco, images={f"r{i}.jpg": jpeg_bytes(seed=400 + i) for i in range(12)})
    return dataset


def test_datasets_and_versions(client, dataset, tmp_path):
    roads = client.get_dataset("roads")
    assert [v.version for v in roads.list_versions()] == ["v1", "v2"]
    assert roads.get_version("latest").version == "v2" and roads.get_version("v1").asset_count == 12
    with pytest.raises(NotFoundError):
        roads.get_version("v9")
    with pytest.raises(NotFoundError):
        client.get_dataset("nope")
    path = roads.get_version("v1").export("yolo", tmp_path)
    assert path.name == "roads-v1-yolo.zip"
    with zipfile.ZipFile(path) as archive:
        assert len([n for n in archive.namelist() if n.startswith("labels/")]) == 12
    coco_zip = roads.get_version("v1").export(format="coco", path=tmp_path / "c.zip")
    with zipfile.ZipFile(coco_zip) as archive:
        assert len(json.loads(archive.read("annotations.json"))["annotations"]) == 12
    with pytest.raises(BadRequestError, match="format"):
        roads.get_version("v1").export("voc", tmp_path)


def test_feedback_loop_from_setup_to_submit(client, demo_org, dataset, monitor_payload, jpeg_bytes):
    deployment = client.get_deployment(demo_org.deployments[DET].name)
    v1, v2 = client.get_dataset("roads").list_versions()
    deployment.setup_feedback_loop()
    deployment.attach_dataset_version_to_feedback_loop(v1)
    deployment.attach_dataset_version_to_feedback_loop(v2)
    assert deployment.list_feedback_loop_datasets() == [v1, v2]
    deployment.detach_dataset_version_from_feedback_loop(v1)
    assert [v.version for v in deployment.list_feedback_loop_datasets()] == ["v2"]
    assert isinstance(deployment.list_feedback_loop_datasets()[0], DatasetVersion)

    sent = [deployment.monitor_bytes(jpeg_bytes(seed=500 + i), "image/jpeg", f"f{i}.jpg", 0.1, 48, 64,
                                     monitor_payload(DET)["raw_predictions"]) for i in range(3)]
    ids = [str(answer["predicted_asset_id"]) for answer in sent]
    PredictedAsset.objects.filter(pk__in=ids[:2]).update(status=AssetStatus.REVIEWED, reviewed_shapes=[BOX])
    deployment.toggle_feedback_loop(False)
    with pytest.raises(BadRequestError, match="inactive"):
        deployment.submit_to_feedback_loop(ids)
    deployment.toggle_feedback_loop(True)
    assets = [deployment.find_predicted_asset(id=i) for i in ids]
    assert deployment.submit_to_feedback_loop(assets) == {"submitted": 2, "skipped": 1, "added": 2, "updated": 0}
    with pytest.raises(BadRequestError, match="predicted_asset_ids") as caught:
        deployment.submit_to_feedback_loop(q="status:TO_REVIEW")
    assert caught.value.errors[0]["field"] == "predicted_asset_ids"
    with pytest.raises(ValueError):
        deployment.submit_to_feedback_loop(assets, q="status:REVIEWED")
    assert DatasetAsset.objects.filter(version__version="v2").count() == 2
    assert deployment.find_predicted_asset(id=ids[0]).status == "SUBMITTED"


def test_training_data_reference_with_a_worker(client, demo_org, dataset, celery_worker_live, wait_until):
    deployment = client.get_deployment(demo_org.deployments[DET].name)
    assert deployment.check_training_data_metrics_status() is None
    deployment.set_training_data(client.get_dataset("roads").get_version("v1"))
    assert deployment.check_training_data_metrics_status() in ("PENDING", "COMPUTING", "READY")
    wait_until(lambda: deployment.check_training_data_metrics_status() == "READY", timeout=60)
    deployment.disable_training_data_reference()
    assert deployment.check_training_data_metrics_status() is None
    with pytest.raises(BadRequestError, match="training_data"):
        deployment.disable_training_data_reference()
