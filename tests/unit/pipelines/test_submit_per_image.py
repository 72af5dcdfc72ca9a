"""A dataset version holds one asset per image: a submit, a COCO import or an upgrade never makes a second copy."""
import datetime as dt
import io
import json
import zipfile

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from dashboard.models import Annotation, AssetStatus, DatasetAsset, PredictedAsset
from dashboard.services.datasets import (
    dataset_create, dataset_import_coco, dataset_version_create, dataset_version_export,
)
from monitoring.services.ingest import prediction_ingest
from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit

DET = "OBJECT_DETECTION"


def box(x):
    return {"type": "rectangle", "label_id": 2, "score": 1.0, "x": x, "y": 2, "w": 10, "h": 12}


@pytest.fixture
def version(organization):
    return dataset_version_create(dataset=dataset_create(organization=organization, name="fl"), version="v1", type=DET)


@pytest.fixture
def reviewed_frame(deployments, monitor_payload, users):
    """reviewed_frame(image, shapes, minutes_ago) -> a REVIEWED predicted asset of that image, reviewed then."""
    def make(image: bytes, shapes: list, minutes_ago: float):
        payload = monitor_payload(DET, image=image, timestamp=timezone.now().timestamp() - minutes_ago * 60)
        asset = prediction_ingest(deployment=deployments[DET], payload=payload).asset
        PredictedAsset.objects.filter(pk=asset.pk).update(
            status=AssetStatus.REVIEWED, reviewed_shapes=shapes, reviewed_by=users["labeler"],
            reviewed_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
        return PredictedAsset.objects.get(pk=asset.pk)
    return make


def test_an_image_submitted_again_from_another_frame_keeps_one_asset_with_the_newest_review(
    deployments, version, reviewed_frame, jpeg_bytes,
):
    detection = deployments[DET]
    feedback_loop_setup(deployment=detection, dataset_version=version)
    same, other = jpeg_bytes(64, 48, seed=1), jpeg_bytes(64, 48, seed=2)
    first = reviewed_frame(same, [box(1)], minutes_ago=30)
    result = feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk=first.pk))
    assert (result.submitted, result.added, result.updated) == (1, 1, 0)
    # The same image seen again later (another frame), reviewed with other shapes, and a new image beside it.
    later, new = reviewed_frame(same, [box(5), box(20)], minutes_ago=5), reviewed_frame(other, [box(3)], minutes_ago=4)
    result = feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk__in=[later.pk, new.pk]))
    assert (result.submitted, result.added, result.updated) == (2, 1, 1)
    assert version.assets.count() == 2
    kept = version.assets.get(data=first.data)
    assert kept.annotation.shapes == [box(5), box(20)] and kept.source_asset_id == later.pk


def test_the_submit_confirmation_says_how_many_images_are_new_and_how_many_it_updates_before_submitting(
    deployments, version, reviewed_frame, jpeg_bytes, client, users,
):
    detection = deployments[DET]
    feedback_loop_setup(deployment=detection, dataset_version=version)
    same, other = jpeg_bytes(64, 48, seed=5), jpeg_bytes(64, 48, seed=6)
    first = reviewed_frame(same, [box(1)], minutes_ago=30)
    feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk=first.pk))
    later, new = reviewed_frame(same, [box(5)], minutes_ago=5), reviewed_frame(other, [box(3)], minutes_ago=4)

    client.force_login(users["labeler"])
    page = client.get(f"/deployments/{detection.id}/queue/submit", {"asset": [str(later.pk), str(new.pk)]})
    assert page.status_code == 200
    assert '<span data-testid="submit-preview">1 new image, 1 updated</span>' in page.content.decode()
    # Only a preview: nothing was submitted.
    assert PredictedAsset.objects.filter(pk__in=[later.pk, new.pk], status=AssetStatus.REVIEWED).count() == 2
    assert version.assets.count() == 1


def test_of_two_frames_of_one_image_in_one_submit_the_newest_review_wins(deployments, version, reviewed_frame, jpeg_bytes):
    detection = deployments[DET]
    feedback_loop_setup(deployment=detection, dataset_version=version)
    image = jpeg_bytes(64, 48, seed=3)
    newer = reviewed_frame(image, [box(9)], minutes_ago=1)
    older = reviewed_frame(image, [box(4)], minutes_ago=50)
    result = feedback_loop_submit(deployment=detection, assets=PredictedAsset.objects.filter(pk__in=[newer.pk, older.pk]))
    assert (result.submitted, result.added, result.updated) == (2, 1, 0)
    assert [asset.annotation.shapes for asset in version.assets.all()] == [[box(9)]]


def test_a_coco_import_of_an_image_the_version_holds_replaces_its_annotation(version, jpeg_bytes):
    image = jpeg_bytes(64, 48, seed=4)

    def coco(x):
        return {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [x, 2, 10, 12]}],
                "categories": [{"id": 2, "name": "person"}]}

    dataset_import_coco(version=version, coco=coco(1), images={"a.jpg": image})
    dataset_import_coco(version=version, coco=coco(7), images={"images/a.jpg": image})
    assert version.assets.count() == 1 and Annotation.objects.count() == 1
    assert version.assets.get().annotation.shapes[0]["x"] == 7
    target = io.BytesIO()
    dataset_version_export(version=version, format="coco", target=target)
    exported = json.loads(zipfile.ZipFile(target).read("annotations.json"))
    assert len(exported["images"]) == 1 and len(exported["annotations"]) == 1


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_keeps_the_newest_asset_of_an_image_held_twice(organization, deployments, jpeg_bytes):
    from dashboard.services.datalake import data_get_or_create, image_store
    from dashboard.services.images import image_inspect

    executor = MigrationExecutor(connection)
    executor.migrate([("dashboard", "0003_work_pending_markers")])
    old = executor.loader.project_state([("dashboard", "0003_work_pending_markers")]).apps
    content = jpeg_bytes(64, 48, seed=5)
    facts = image_inspect(content=content, field="image")
    data, _ = data_get_or_create(organization_id=organization.pk, stored=image_store(content=content, facts=facts),
                                 facts=facts, filename="a.jpg", source="dataset", tags=[], metadata={})
    Dataset, Version = old.get_model("dashboard", "Dataset"), old.get_model("dashboard", "DatasetVersion")
    Asset, Note = old.get_model("dashboard", "DatasetAsset"), old.get_model("dashboard", "Annotation")
    version = Version.objects.create(dataset=Dataset.objects.create(organization_id=organization.pk, name="old"),
                                     version="v1", type=DET)
    for x in (1, 2):  # the older copy first
        asset = Asset.objects.create(version=version, data_id=data.pk, filename="a.jpg", width=64, height=48)
        Asset.objects.filter(pk=asset.pk).update(created_at=timezone.now() - dt.timedelta(hours=3 - x))
        Note.objects.create(asset=asset, shapes=[box(x)])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    kept = DatasetAsset.objects.filter(version_id=version.pk)
    assert kept.count() == 1 and kept.get().annotation.shapes == [box(2)]
