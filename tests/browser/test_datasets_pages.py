"""Datasets and the feedback loop in a real browser: an admin creates a dataset and imports a COCO file, browses the
annotations, exports the version as a COCO zip made by a real Celery worker, and runs a deployment's feedback loop
and training data; a labeler sees the same settings but cannot change them."""
import io
import json
import re
import zipfile

import pytest
from playwright.sync_api import expect
from pycocotools.coco import COCO

from dashboard.models import Dataset, DatasetAsset, ExportJob, JobStatus
from monitoring.models import OutlierReference, ReferenceSource, TrainingDataReference
from pipelines.models import FeedbackLoop
from dashboard.services.datasets import dataset_create, dataset_import_coco, dataset_version_create
from pipelines.services.feedback_loop import feedback_loop_setup
from tests.browser.test_queue import log_in
# The integration suite's real Celery worker, on a private redis-server. The tests below take `celery_app_live`
# (every task goes to that Redis, where nothing consumes it yet) and start the worker with
# request.getfixturevalue("celery_worker_live") only once the page has shown the PENDING state: what the page
# shows before and after the worker runs is then certain, and the export and the reference are the real ones.
from tests.integration.conftest import celery_app_live, celery_worker_live, redis_server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

DET = "OBJECT_DETECTION"
IMAGES = 12  # a training reference needs at least k + 1 = 9 images
WIDTH, HEIGHT = 320, 240


def coco_file(n_images: int = IMAGES) -> dict:
    """Two boxes per image: a car, and a person (whose box grows with the image's number)."""
    images = [{"id": i, "file_name": f"street-{i:02}.jpg", "width": WIDTH, "height": HEIGHT}
              for i in range(1, n_images + 1)]
    annotations = []
    for image in images:
        annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": 1,
                            "bbox": [80, 80, 80, 80], "iscrowd": 0, "area": 6400})
        annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": 2,
                            "bbox": [170, 110, 40 + image["id"], 110], "iscrowd": 0, "area": (40 + image["id"]) * 110})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}


@pytest.fixture
def street_images(jpeg_bytes):
    """file name -> the bytes of a 320x240 JPEG, one per image of coco_file()."""
    return {f"street-{i:02}.jpg": jpeg_bytes(WIDTH, HEIGHT, seed=400 + i) for i in range(1, IMAGES + 1)}


@pytest.fixture
def roads_version(organization, street_images):
    """Detection version "roads v1" holding coco_file()'s 12 images and 24 boxes (imported with the service)."""
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="roads"),
                                     version="v1", type=DET)
    dataset_import_coco(version=version, coco=coco_file(), images=street_images)
    return version


def images_zip(images: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in images.items():
            archive.writestr(f"images/{name}", content)
    return buffer.getvalue()


def test_admin_creates_a_dataset_imports_coco_and_sees_the_boxes(page, live_server, users, organization,
                                                                   street_images, screenshot_dir):
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, live_server, "admin")
    page.get_by_role("link", name="Datasets").click()
    expect(page.locator(".empty")).to_contain_text("No datasets yet")

    page.get_by_label("Name", exact=True).click()
    page.keyboard.type("parking-lot")
    page.keyboard.press("Tab")  # to "First version", which says v1
    expect(page.get_by_label("First version")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("2024-06")
    page.get_by_label("Type").select_option(label="Object detection")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/datasets/versions/[0-9a-f-]+/$"))
    version = Dataset.objects.get(organization=organization, name="parking-lot").versions.get()
    assert (version.version, version.type) == ("2024-06", DET)
    expect(page.locator("h1")).to_have_text("parking-lot 2024-06")
    expect(page.locator(".empty")).to_contain_text("No images yet")

    page.get_by_label("Annotations (COCO JSON)").set_input_files(
        {"name": "instances.json", "mimeType": "application/json", "buffer": json.dumps(coco_file()).encode()})
    page.get_by_label("Images (zip)").set_input_files(
        {"name": "images.zip", "mimeType": "application/zip", "buffer": images_zip(street_images)})
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".flash-success")).to_have_text(f"Imported {IMAGES} images.")

    assert version.assets.count() == IMAGES
    assert sorted(DatasetAsset.objects.filter(version=version).values_list("filename", flat=True)) == sorted(street_images)
    version.refresh_from_db()
    assert version.labels == {"1": "car", "2": "person"}
    chips = page.locator(".labels .label-chip")
    expect(chips).to_have_text(["1 · car", "2 · person"])
    # The chips are the legend: each in the colour its class's boxes are drawn with.
    chip_colors = chips.locator("svg path").evaluate_all("paths => paths.map(p => p.getAttribute('fill'))")
    expect(page.locator(".thumbs .thumb")).to_have_count(IMAGES)
    # Every image drawn with its two boxes, in the image's own pixel space.
    expect(page.locator(".thumbs .thumb svg rect")).to_have_count(2 * IMAGES)
    first = page.locator(".thumbs .thumb").first
    expect(first.locator(".filename")).to_have_text("street-01.jpg")
    expect(first.locator(".meta")).to_have_text("2 shapes")
    assert first.locator("svg").get_attribute("viewBox") == f"0 0 {WIDTH} {HEIGHT}"
    boxes = first.locator("svg rect").evaluate_all(
        "rects => rects.map(r => [r.x.baseVal.value, r.y.baseVal.value, r.width.baseVal.value, r.height.baseVal.value])")
    assert boxes == [[80, 80, 80, 80], [170, 110, 41, 110]]
    assert first.locator("svg rect title").all_text_contents() == ["car", "person"]  # a person's annotation: no score
    assert first.locator("svg rect").evaluate_all("rects => rects.map(r => r.getAttribute('stroke'))") == chip_colors
    assert len(set(chip_colors)) == 2
    # The image loaded and the boxes are rendered on screen, not only present in the markup.
    assert first.locator("svg image").evaluate("image => image.getBBox().width") == WIDTH
    expect(first.locator("svg rect").first).to_be_visible()
    assert first.locator("svg rect").first.bounding_box()["width"] > 20
    page.screenshot(path=str(screenshot_dir / "dataset-version.png"), full_page=True)

    page.get_by_role("link", name="Datasets").first.click()
    row = page.locator("table.table tbody tr", has_text="parking-lot")
    expect(row.locator(f"[data-count='{version.id}']")).to_have_text(str(IMAGES))
    assert not csp_errors, csp_errors


def test_admin_exports_a_version_as_coco_and_downloads_it(page, live_server, users, roads_version, celery_app_live,
                                                         request, screenshot_dir, tmp_path):
    log_in(page, live_server, "admin")
    page.get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name="v1").click()
    expect(page.locator("h1")).to_have_text("roads v1")

    page.get_by_role("button", name="COCO zip").click()
    jobs = page.locator("#export-jobs li")
    expect(jobs).to_have_count(1)
    job = ExportJob.objects.get(version=roads_version)
    assert (job.format, job.status) == ("coco", JobStatus.PENDING)
    # No worker yet: the job waits in the queue and its row shows a progress bar, polled every second.
    expect(jobs.first.locator("progress")).to_be_visible()
    expect(jobs.first).to_contain_text("Pending · 0 %")
    expect(jobs.first).to_have_attribute("hx-trigger", "every 1s")

    request.getfixturevalue("celery_worker_live")  # the worker starts, takes the job and writes the zip
    download_link = jobs.first.get_by_role("link", name="download")
    expect(download_link).to_be_visible(timeout=30_000)
    expect(jobs.first.locator("progress")).to_have_count(0)
    job.refresh_from_db()
    assert (job.status, job.progress) == (JobStatus.READY, 1.0) and job.file
    page.screenshot(path=str(screenshot_dir / "export-job.png"), full_page=True)

    with page.expect_download() as caught:
        download_link.click()
    download = caught.value
    assert download.suggested_filename == "roads-v1-coco.zip"
    with zipfile.ZipFile(download.path()) as archive:
        names = set(archive.namelist())
        assert names == {"annotations.json"} | {f"images/street-{i:02}.jpg" for i in range(1, IMAGES + 1)}
        (tmp_path / "annotations.json").write_bytes(archive.read("annotations.json"))
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getImgIds()) == IMAGES and len(coco.getAnnIds()) == 2 * IMAGES
    assert {category["name"] for category in coco.loadCats(coco.getCatIds())} == {"car", "person"}
    image_id = next(i for i, image in coco.imgs.items() if image["file_name"] == "street-03.jpg")
    assert (coco.imgs[image_id]["width"], coco.imgs[image_id]["height"]) == (WIDTH, HEIGHT)
    boxes = sorted((coco.cats[a["category_id"]]["name"], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)))
    assert boxes == [("car", [80, 80, 80, 80]), ("person", [170, 110, 43, 110])]


def test_admin_runs_the_feedback_loop_and_training_data(page, live_server, users, deployments, roads_version,
                                                        celery_app_live, request, screenshot_dir):
    deployment = deployments[DET]
    log_in(page, live_server, "admin")
    page.get_by_role("link", name=deployment.name).click()
    page.get_by_role("link", name="Pipeline: feedback loop, training, deployment").click()
    page.wait_for_url(re.compile(r"/feedback-loop/$"))
    expect(page.locator("#training")).to_contain_text("None: scores are measured against the deployment's own history")

    page.get_by_role("button", name="Set up the feedback loop").click()
    state = page.locator("[data-loop-state]")
    expect(state).to_have_text("active")
    expect(page.get_by_text("None: submitted predictions have nowhere to go.")).to_be_visible()

    page.get_by_label("Attach").select_option(label="roads v1 (12)")
    page.get_by_role("button", name="Attach to the loop").click()
    attached = page.locator("section.card").first.locator("table tbody tr")
    expect(attached).to_have_count(1)
    expect(attached.first).to_contain_text("roads v1")
    expect(attached.first.locator("td").nth(1)).to_have_text("12")
    expect(page.locator(".flash-success")).to_have_text("Attached roads v1: submitted predictions are added to it.")
    loop = FeedbackLoop.objects.get(deployment=deployment)
    assert list(loop.dataset_versions.all()) == [roads_version]
    expect(page.get_by_label("Attach")).to_have_count(0)  # nothing else of this type to attach, and it says so
    expect(page.get_by_text("No other object detection dataset version to attach")).to_be_visible()

    page.get_by_role("button", name="Turn off").click()
    expect(state).to_have_text("inactive")
    loop.refresh_from_db()
    assert loop.active is False
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(state).to_have_text("active")
    loop.refresh_from_db()
    assert loop.active is True

    page.get_by_label("Training data").select_option(label="roads v1 (12)")
    page.get_by_role("button", name="Use as training data").click()
    training = page.locator("#training")
    # Nothing consumes the queue yet: PENDING, with its progress bar, polled every second.
    expect(training.locator("[data-training-status]")).to_have_text("Pending")
    expect(training.locator("progress")).to_be_visible()
    expect(training.locator("[data-training-progress]")).to_have_text("0 %")
    expect(training).to_have_attribute("hx-trigger", "every 1s")
    assert TrainingDataReference.objects.get(deployment=deployment).status == JobStatus.PENDING
    page.screenshot(path=str(screenshot_dir / "feedback-loop.png"), full_page=True)

    request.getfixturevalue("celery_worker_live")  # the worker builds the reference: the poll shows it READY
    expect(training.locator("[data-training-status]")).to_have_text("Ready", timeout=30_000)
    expect(training.locator("progress")).to_have_count(0)
    reference = TrainingDataReference.objects.get(deployment=deployment)
    assert (reference.dataset_version_id, reference.status, reference.progress) == (roads_version.id, JobStatus.READY, 1.0)
    active = OutlierReference.objects.get(deployment=deployment, is_active=True)
    assert active.source == ReferenceSource.TRAINING and active.size == IMAGES

    # Disabling asks first: the button only opens the confirmation.
    disable = page.get_by_role("button", name="Disable it")
    expect(disable).to_be_hidden()
    page.get_by_text("Disable the training data reference…").click()
    expect(disable).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "feedback-loop-disable.png"), full_page=True)
    disable.click()
    expect(page.locator(".flash-success")).to_contain_text("Training data disabled")
    expect(page.locator("#training")).to_contain_text("None: scores are measured against the deployment's own history")
    assert not TrainingDataReference.objects.filter(deployment=deployment).exists()


def test_labeler_sees_the_feedback_loop_but_cannot_change_it(page, live_server, users, deployments, roads_version):
    deployment = deployments[DET]
    feedback_loop_setup(deployment=deployment, dataset_version=roads_version)
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{deployment.id}/")
    page.get_by_role("link", name="Pipeline: feedback loop, training, deployment").click()
    expect(page.get_by_test_id("read-only")).to_have_text("Only an admin of Acme Vision changes these settings.")
    expect(page.locator("[data-loop-state]")).to_have_text("active")
    expect(page.locator("section.card").first.locator("table tbody tr")).to_contain_text("roads v1")
    expect(page.locator("#training")).to_contain_text("None")
    expect(page.locator("main button")).to_have_count(0)
    expect(page.locator("main select")).to_have_count(0)

    # A forged POST (with a valid CSRF token) is refused, and changes nothing.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(f"{live_server.url}/deployments/{deployment.id}/feedback-loop/",
                                 form={"action": "deactivate"}, headers={"X-CSRFToken": token},
                                 max_redirects=0)
    assert response.status == 403 and "CSRF verification failed" not in response.text()  # refused for the role, not for the token
    assert FeedbackLoop.objects.get(deployment=deployment).active is True
