"""A labeler submits three reviewed predictions from the queue; they are in the dataset version's COCO export."""
import io
import json
import re
import zipfile

import pytest
from pycocotools.coco import COCO

from dashboard.models import AssetStatus, PredictedAsset
from dashboard.services.datasets import dataset_create, dataset_version_create
from pipelines.services.feedback_loop import feedback_loop_setup
from monitoring.services.ingest import prediction_ingest
from reviews.services.review import review_submit
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_three_reviewed_predictions_reach_the_coco_export(page, live_server, users, organization, deployments,
                                                          monitor_payload, client, api_tokens, screenshot_dir,
                                                          tmp_path):
    deployment = deployments["OBJECT_DETECTION"]
    dataset = dataset_create(organization=organization, name="cars-training")
    version = dataset_version_create(dataset=dataset, version="v1", type=deployment.type,
                                     labels={1: "car", 2: "person", 3: "bike", 4: "truck"})
    feedback_loop_setup(deployment=deployment, dataset_version=version)
    assets = [prediction_ingest(deployment=deployment, payload=monitor_payload("OBJECT_DETECTION",
                                                                               filename=f"frame-{i}.jpg")).asset
              for i in range(5)]
    fixed = {"type": "rectangle", "label_id": 2, "score": 1.0, "x": 4, "y": 6, "w": 20, "h": 30}
    for asset in assets[:3]:
        review_submit(asset_id=asset.id, reviewer=users["labeler"], shapes=[fixed], expected_version=asset.version)

    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{deployment.id}/queue/?view=table")
    for asset in assets:  # ticks all five: the two not reviewed must be left out
        page.check(f"input[name=asset][value='{asset.id}']")
    page.click("[data-testid=bulk-submit]")
    page.wait_for_url(re.compile(r"/queue/submit"))
    assert page.locator("h1").inner_text() == "Submit 3 reviewed predictions to the feedback loop?"
    assert page.locator("[data-testid=submit-preview]").inner_text() == "3 new images, 0 updated"
    page.screenshot(path=str(screenshot_dir / "submit-confirm.png"), full_page=True)
    page.click("[data-testid=confirm-submit]")
    assert page.locator("[data-testid=submitted]").inner_text() == "3 predictions submitted"
    assert page.locator("[data-testid=submit-images]").inner_text() == "3 new images, 0 updated"
    page.screenshot(path=str(screenshot_dir / "submit-done.png"), full_page=True)

    statuses = {asset.id: PredictedAsset.objects.get(pk=asset.id).status for asset in assets}
    assert [statuses[asset.id] for asset in assets] == [AssetStatus.SUBMITTED] * 3 + [AssetStatus.TO_REVIEW] * 2

    response = client.get(f"/api/dataset/version/{version.id}/export", {"format": "coco"},
                          HTTP_AUTHORIZATION=f"Bearer {api_tokens['labeler']}")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content))
    annotation_file = tmp_path / "annotations.json"
    annotation_file.write_bytes(archive.read("annotations.json"))
    coco = COCO(str(annotation_file))
    assert sorted(image["file_name"].rsplit("/", 1)[-1] for image in coco.dataset["images"]) == [
        "frame-0.jpg", "frame-1.jpg", "frame-2.jpg"]
    boxes = [annotation["bbox"] for annotation in coco.dataset["annotations"]]
    assert boxes == [[4, 6, 20, 30]] * 3
    assert {coco.cats[a["category_id"]]["name"] for a in coco.dataset["annotations"]} == {"person"}
    assert json.loads(archive.read("annotations.json"))["images"]
