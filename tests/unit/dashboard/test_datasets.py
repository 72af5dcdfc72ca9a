"""Datasets: creation, COCO import (all or nothing), COCO and YOLO exports read back, export jobs, the pages and API."""
import io
import json
import re
import zipfile

import pytest

from dashboard.errors import Conflict, ValidationFailed
from dashboard.models import Annotation, Data, Dataset, DatasetAsset, ExportJob, JobStatus
from dashboard.services.datasets import (
    dataset_create, dataset_import_coco, dataset_version_create, dataset_version_export, export_job_run,
)

DET, SEG, CLS = "OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION"


@pytest.fixture
def version(organization):
    """An empty OBJECT_DETECTION version "v1" of a dataset "roads"."""
    return dataset_version_create(dataset=dataset_create(organization=organization, name="roads"), version="v1", type=DET)


def coco_file(n_images=3, *, file_name="img{}.jpg", segmentation=False):
    images = [{"id": i, "file_name": file_name.format(i), "width": 64, "height": 48} for i in range(1, n_images + 1)]
    annotations = []
    for image in images:
        annotation = {"id": len(annotations) + 1, "image_id": image["id"], "category_id": 1,
                      "bbox": [4.0, 6.0, 20.0, 10.0], "iscrowd": 0, "area": 200.0}
        if segmentation:
            annotation["segmentation"] = [[4, 6, 24, 6, 24, 16, 4, 16]]
        annotations.append(annotation)
        annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": 2,
                            "bbox": [30, 20, 8.5, 12], "iscrowd": 0, "area": 102.0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}


@pytest.fixture
def coco_images(jpeg_bytes):
    def make(n=3, file_name="img{}.jpg"):
        return {file_name.format(i): jpeg_bytes(64, 48, seed=100 + i) for i in range(1, n + 1)}

    return make


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def export(version, format) -> bytes:
    """The version's zip, written into a file as the export job and the API do."""
    target = io.BytesIO()
    dataset_version_export(version=version, format=format, target=target)
    return target.getvalue()


# ---------------------------------------------------------------- create


def test_dataset_names_are_unique_per_organization(organization, other_organization):
    dataset_create(organization=organization, name="roads")
    dataset_create(organization=other_organization, name="roads")
    with pytest.raises(Conflict):
        dataset_create(organization=organization, name="roads")
    with pytest.raises(ValidationFailed) as caught:
        dataset_create(organization=organization, name="  ")
    assert caught.value.errors[0].field == "name"


def test_version_checks_its_fields(organization):
    dataset = dataset_create(organization=organization, name="roads")
    with pytest.raises(ValidationFailed) as caught:
        dataset_version_create(dataset=dataset, version="", type="VIDEO", labels={"x": "car"})
    assert {e.field for e in caught.value.errors} == {"version", "type", "labels"}
    version = dataset_version_create(dataset=dataset, version="v1", type=DET, labels={1: "car"})
    assert version.labels == {"1": "car"}
    with pytest.raises(Conflict):
        dataset_version_create(dataset=dataset, version="v1", type=DET)


# ---------------------------------------------------------------- COCO import


def test_coco_import_stores_images_once_and_boxes_as_rectangles(version, coco_images):
    images = coco_images(3)
    assert dataset_import_coco(version=version, coco=coco_file(3), images=images) == 3
    version.refresh_from_db()
    assert version.labels == {"1": "car", "2": "person"}
    assets = list(version.assets.select_related("annotation", "data").order_by("filename"))
    assert [a.filename for a in assets] == ["img1.jpg", "img2.jpg", "img3.jpg"]
    assert assets[0].annotation.shapes == [
        {"type": "rectangle", "label_id": 1, "x": 4.0, "y": 6.0, "w": 20.0, "h": 10.0},
        {"type": "rectangle", "label_id": 2, "x": 30, "y": 20, "w": 8.5, "h": 12},
    ]
    assert assets[0].data.source == "dataset" and (assets[0].width, assets[0].height) == (64, 48)
    # The same bytes imported again (another version) share their Data row.
    other = dataset_version_create(dataset=version.dataset, version="v2", type=DET)
    dataset_import_coco(version=other, coco=coco_file(3), images=images)
    assert Data.objects.count() == 3 and DatasetAsset.objects.count() == 6


def test_coco_import_matches_images_by_base_name(version, coco_images):
    images = {f"images/{name}": content for name, content in coco_images(2).items()}
    assert dataset_import_coco(version=version, coco=coco_file(2), images=images) == 2


def test_coco_polygons_become_polygon_shapes_in_a_segmentation_version(organization, coco_images):
    dataset = dataset_create(organization=organization, name="masks")
    version = dataset_version_create(dataset=dataset, version="v1", type=SEG)
    dataset_import_coco(version=version, coco=coco_file(1, segmentation=True), images=coco_images(1))
    shapes = version.assets.get().annotation.shapes
    assert shapes[0] == {"type": "polygon", "label_id": 1, "points": [[4, 6], [24, 6], [24, 16], [4, 16]]}
    # An annotation without segmentation keeps its box.
    assert shapes[1]["type"] == "rectangle"


def test_coco_import_is_all_or_nothing_with_a_bad_image(version, coco_images):
    images = coco_images(3)
    images["img2.jpg"] = images["img2.jpg"][: len(images["img2.jpg"]) // 2]  # truncated
    with pytest.raises(ValidationFailed) as caught:
        dataset_import_coco(version=version, coco=coco_file(3), images=images)
    assert [e.field for e in caught.value.errors] == ["coco.images[1].file_name"]
    assert "truncated" in caught.value.errors[0].message
    assert not DatasetAsset.objects.exists() and not Data.objects.exists() and not Annotation.objects.exists()


def test_coco_import_reports_every_problem_by_field(version, coco_images):
    coco = coco_file(2)
    coco["annotations"][0]["category_id"] = 9
    coco["annotations"][1]["bbox"] = [1, 2, -3, 4]
    coco["annotations"].append({"id": 99, "image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1]})
    coco["images"].append({"id": 3, "file_name": "missing.jpg"})
    with pytest.raises(ValidationFailed) as caught:
        dataset_import_coco(version=version, coco=coco, images=coco_images(2))
    assert [e.field for e in caught.value.errors] == [
        "coco.images[2].file_name", "coco.annotations[0].category_id", "coco.annotations[1]",
        "coco.annotations[4].image_id",
    ]
    assert not DatasetAsset.objects.exists()


@pytest.mark.parametrize("coco, field", [
    ([], "coco"),
    ({"images": [], "categories": [{"id": 1, "name": "car"}]}, "coco.images"),
    ({"images": [{"id": 1, "file_name": "img1.jpg"}], "categories": [{"id": "1"}]}, "coco.categories[0]"),
])
def test_coco_import_refuses_malformed_files(version, coco_images, coco, field):
    with pytest.raises(ValidationFailed) as caught:
        dataset_import_coco(version=version, coco=coco, images=coco_images(1))
    assert field in [e.field for e in caught.value.errors]


# ---------------------------------------------------------------- export


def test_coco_export_reads_back_with_pycocotools(version, coco_images, tmp_path):
    from pycocotools.coco import COCO

    dataset_import_coco(version=version, coco=coco_file(3), images=coco_images(3))
    files = unzip(export(version, "coco"))
    assert sorted(files) == ["annotations.json", "images/img1.jpg", "images/img2.jpg", "images/img3.jpg"]
    (tmp_path / "annotations.json").write_bytes(files["annotations.json"])
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 6
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"car", "person"}
    image_id = next(i for i in coco.getImgIds() if coco.loadImgs(i)[0]["file_name"] == "img1.jpg")
    boxes = sorted((a["category_id"], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)))
    assert boxes == [(1, [4.0, 6.0, 20.0, 10.0]), (2, [30, 20, 8.5, 12])]
    assert files["images/img1.jpg"] == coco_images(3)["img1.jpg"]


def test_coco_export_of_polygons_has_segmentation_and_area(organization, coco_images, tmp_path):
    from pycocotools.coco import COCO

    version = dataset_version_create(dataset=dataset_create(organization=organization, name="m"), version="v1", type=SEG)
    dataset_import_coco(version=version, coco=coco_file(1, segmentation=True), images=coco_images(1))
    (tmp_path / "a.json").write_bytes(unzip(export(version, "coco"))["annotations.json"])
    coco = COCO(str(tmp_path / "a.json"))
    polygon = next(a for a in coco.loadAnns(coco.getAnnIds()) if "segmentation" in a)
    assert polygon["segmentation"] == [[4, 6, 24, 6, 24, 16, 4, 16]] and polygon["area"] == 200
    assert polygon["bbox"] == [4, 6, 20, 10]
    assert coco.annToMask(polygon).sum() > 0


def test_yolo_export_writes_normalized_boxes_and_names(version, coco_images):
    dataset_import_coco(version=version, coco=coco_file(2), images=coco_images(2))
    files = unzip(export(version, "yolo"))
    assert sorted(files) == ["data.yaml", "images/img1.jpg", "images/img2.jpg", "labels/img1.txt", "labels/img2.txt"]
    lines = files["labels/img1.txt"].decode().splitlines()
    # (4 + 20/2) / 64, (6 + 10/2) / 48, 20/64, 10/48; class 1 is YOLO index 0.
    assert lines == ["0 0.218750 0.229167 0.312500 0.208333", "1 0.535156 0.541667 0.132812 0.250000"]
    yaml = files["data.yaml"].decode()
    assert 'names:\n  0: "car"\n  1: "person"\n' in yaml and "nc: 2" in yaml


def test_yolo_export_takes_a_polygons_bounding_box_and_dedupes_file_names(organization, jpeg_bytes):
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="m"), version="v1", type=SEG)
    coco = {"images": [{"id": 1, "file_name": "a/frame.jpg"}, {"id": 2, "file_name": "b/frame.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "segmentation": [[0, 0, 32, 0, 32, 24]]}],
            "categories": [{"id": 3, "name": "bike"}]}
    images = {"a/frame.jpg": jpeg_bytes(seed=1), "b/frame.jpg": jpeg_bytes(seed=2)}
    dataset_import_coco(version=version, coco=coco, images=images)
    files = unzip(export(version, "yolo"))
    assert {"labels/frame.txt", "labels/frame-2.txt", "images/frame.jpg", "images/frame-2.jpg"} <= set(files)
    labels = sorted([files["labels/frame.txt"], files["labels/frame-2.txt"]])
    assert labels == [b"", b"0 0.250000 0.250000 0.500000 0.500000\n"]


def test_export_refuses_unknown_formats_and_yolo_of_classification(organization, version):
    with pytest.raises(ValidationFailed) as caught:
        export(version, "voc")
    assert caught.value.errors[0].field == "format"
    classes = dataset_version_create(dataset=version.dataset, version="c1", type=CLS)
    with pytest.raises(ValidationFailed):
        export(classes, "yolo")


def test_export_job_writes_the_zip_and_reports_progress(version, coco_images):
    from django.core.files.storage import default_storage

    dataset_import_coco(version=version, coco=coco_file(2), images=coco_images(2))
    job = export_job_run(job=ExportJob.objects.create(version=version, format="yolo"))
    assert (job.status, job.progress) == (JobStatus.READY, 1.0)
    with default_storage.open(job.file.name, "rb") as file:
        assert "labels/img2.txt" in unzip(file.read())
    failed = export_job_run(job=ExportJob.objects.create(version=version, format="voc"))
    assert failed.status == JobStatus.FAILED and "format" in failed.message


def test_old_export_jobs_go_with_their_zips(version, coco_images):
    import datetime as dt

    from django.core.files.storage import default_storage
    from django.utils import timezone

    from dashboard.services.datasets import export_jobs_expire

    dataset_import_coco(version=version, coco=coco_file(1), images=coco_images(1))
    old, recent = (export_job_run(job=ExportJob.objects.create(version=version, format="coco")) for _ in range(2))
    ExportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=8))
    assert export_jobs_expire(older_than=dt.timedelta(days=7)) == 1
    assert list(ExportJob.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not default_storage.exists(old.file.name) and default_storage.exists(recent.file.name)


# ---------------------------------------------------------------- API


def test_api_lists_datasets_and_versions_to_members_only(client, api_tokens, outsider_token, version):
    auth = {"Authorization": f"Bearer {api_tokens['labeler']}"}
    items = client.get("/api/datasets", {"name": "roads"}, headers=auth).json()["items"]
    assert [item["name"] for item in items] == ["roads"]
    versions = client.get(f"/api/dataset/{items[0]['id']}/versions", headers=auth).json()["items"]
    assert [(v["id"], v["version"], v["type"], v["asset_count"]) for v in versions] == [(str(version.id), "v1", DET, 0)]
    outsider = {"Authorization": f"Bearer {outsider_token}"}
    assert client.get("/api/datasets", headers=outsider).json()["items"] == []
    response = client.get(f"/api/dataset/{items[0]['id']}/versions", headers=outsider)
    assert response.status_code == 404 and response.json()["message"]


def test_api_export_answers_a_zip_or_a_json_error(client, api_tokens, outsider_token, version, coco_images):
    dataset_import_coco(version=version, coco=coco_file(1), images=coco_images(1))
    auth = {"Authorization": f"Bearer {api_tokens['labeler']}"}
    response = client.get(f"/api/dataset/version/{version.id}/export", {"format": "yolo"}, headers=auth)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert int(response["Content-Length"]) > 0
    assert response["Content-Disposition"] == 'attachment; filename="roads-v1-yolo.zip"'
    assert "labels/img1.txt" in unzip(b"".join(response.streaming_content))
    bad = client.get(f"/api/dataset/version/{version.id}/export", {"format": "voc"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "format"
    outsider = client.get(f"/api/dataset/version/{version.id}/export", headers={"Authorization": f"Bearer {outsider_token}"})
    assert outsider.status_code == 404 and outsider["Content-Type"] == "application/json"
    assert client.get(f"/api/dataset/version/{version.id}/export").status_code == 401


# ---------------------------------------------------------------- pages


def test_dataset_pages_list_versions_and_draw_annotations(client, users, version, coco_images):
    dataset_import_coco(version=version, coco=coco_file(2), images=coco_images(2))
    client.force_login(users["labeler"])
    listing = client.get("/datasets/")
    assert listing.status_code == 200 and b"roads" in listing.content and b"New dataset" not in listing.content
    page = client.get(f"/datasets/versions/{version.id}/")
    assert page.status_code == 200
    assert page.content.count(b"<rect ") == 4 and b"Import COCO" not in page.content
    # A person's annotation has no confidence: its tooltip is the class alone, no made-up score.
    assert re.findall(rb"<title>([^<]*)</title>", page.content)[1:3] == [b"car", b"person"]  # [0]: the page title


def test_version_page_pages_through_its_images(client, users, version, coco_images, settings):
    from dashboard.views import datasets as dataset_views

    dataset_import_coco(version=version, coco=coco_file(5), images=coco_images(5))
    client.force_login(users["labeler"])
    url = f"/datasets/versions/{version.id}/"
    original = dataset_views.IMAGES_PER_PAGE
    dataset_views.IMAGES_PER_PAGE = 2
    try:
        pages = [client.get(url, {"page": n}).content.decode() for n in (1, 2, 3, 4, "x")]
    finally:
        dataset_views.IMAGES_PER_PAGE = original
    assert "1–2 of 5" in pages[0] and 'rel="next"' in pages[0] and 'rel="prev"' not in pages[0]
    assert "3–4 of 5" in pages[1] and 'rel="next"' in pages[1] and 'rel="prev"' in pages[1]
    assert "5–5 of 5" in pages[2] and 'rel="next"' not in pages[2] and pages[2].count('class="thumb"') == 1
    assert "No images on page 4" in pages[3]
    assert "1–2 of 5" in pages[4]  # a page that is not a number is the first


def test_admin_creates_a_dataset_and_imports_coco_through_the_page(client, users, organization, coco_images):
    client.force_login(users["admin"])
    response = client.post("/datasets/", {"organization_id": organization.id, "name": "parking", "version": "v1",
                                          "type": DET})
    version = Dataset.objects.get(name="parking").versions.get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/versions/{version.id}/"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, content in coco_images(2).items():
            zipped.writestr(f"images/{name}", content)
    coco = io.BytesIO(json.dumps(coco_file(2)).encode())
    coco.name = "annotations.json"
    archive.seek(0)
    archive.name = "images.zip"
    response = client.post(f"/datasets/versions/{version.id}/import", {"coco": coco, "images": archive}, follow=True)
    assert b"Imported 2 images" in response.content and version.assets.count() == 2


def test_labelers_may_not_import_and_outsiders_see_nothing(client, users, outsider, version):
    client.force_login(users["labeler"])
    assert client.post(f"/datasets/versions/{version.id}/import").status_code == 403
    assert client.post("/datasets/", {"organization_id": version.dataset.organization_id, "name": "x",
                                      "type": DET}).status_code == 403
    client.force_login(outsider)
    assert client.get(f"/datasets/versions/{version.id}/").status_code == 404
    # Outside the organization it does not exist, for creating in it too.
    assert client.post("/datasets/", {"organization_id": version.dataset.organization_id, "name": "x",
                                      "type": DET}).status_code == 404


def test_export_button_makes_a_job_the_page_polls(client, users, version, coco_images, django_capture_on_commit_callbacks):
    dataset_import_coco(version=version, coco=coco_file(1), images=coco_images(1))
    client.force_login(users["labeler"])
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/datasets/versions/{version.id}/export", {"format": "coco"}, headers={"HX-Request": "true"})
    job = ExportJob.objects.get()
    assert response.status_code == 200 and b'hx-trigger="every 1s"' in response.content and len(callbacks) == 1
    export_job_run(job=job)
    polled = client.get(f"/datasets/exports/{job.id}/", headers={"HX-Request": "true"})
    assert b"download" in polled.content and b"hx-trigger" not in polled.content
    download = client.get(f"/datasets/exports/{job.id}/download")
    assert download.status_code == 200 and "annotations.json" in unzip(b"".join(download.streaming_content))


def test_import_page_refuses_zip_members_over_the_image_limit_before_reading_them(client, users, version, settings):
    settings.LOUPE_MAX_IMAGE_BYTES = 1000
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("images/img1.jpg", b"\0" * 100_000)  # a few hundred bytes zipped
    archive.seek(0)
    archive.name = "images.zip"
    coco = io.BytesIO(json.dumps(coco_file(1)).encode())
    coco.name = "annotations.json"
    client.force_login(users["admin"])
    response = client.post(f"/datasets/versions/{version.id}/import", {"coco": coco, "images": archive}, follow=True)
    assert b"images/img1.jpg is over the limit of 1,000 bytes" in response.content
    assert not version.assets.exists()


def test_a_new_dataset_asks_for_its_type_and_without_one_nothing_is_made(client, users, organization):
    client.force_login(users["admin"])
    page = client.get("/datasets/").content.decode()
    assert re.search(r'<select name="type" required><option value="" selected disabled>', page)
    response = client.post("/datasets/", {"organization_id": organization.id, "name": "parking", "version": "v1"},
                           follow=True)
    assert "type: must be one of" in response.content.decode()
    assert not Dataset.objects.filter(name="parking").exists()  # not a dataset without its version


def test_an_admin_makes_a_new_version_from_the_page_as_a_copy_or_empty(client, users, outsider, version, coco_images):
    from dashboard.models import DatasetVersion

    dataset_import_coco(version=version, coco=coco_file(2), images=coco_images(2))
    client.force_login(users["admin"])
    assert "New version" in client.get(f"/datasets/versions/{version.id}/").content.decode()
    copied = client.post(f"/datasets/versions/{version.id}/new", {"version": "frozen", "start": "copy"}, follow=True)
    frozen = DatasetVersion.objects.get(dataset=version.dataset, version="frozen")
    assert "a copy of v1 (2 images)" in copied.content.decode() and frozen.assets.count() == 2
    assert frozen.type == version.type and frozen.labels == version.labels
    client.post(f"/datasets/versions/{version.id}/new", {"version": "fresh", "start": "empty"})
    assert DatasetVersion.objects.get(dataset=version.dataset, version="fresh").assets.count() == 0
    taken = client.post(f"/datasets/versions/{version.id}/new", {"version": "fresh", "start": "empty"}, follow=True)
    assert "already has a version" in taken.content.decode()
    client.force_login(users["ml_lead"])
    assert client.post(f"/datasets/versions/{version.id}/new", {"version": "v9"}).status_code == 403
    assert "New version" not in client.get(f"/datasets/versions/{version.id}/").content.decode()
    client.force_login(outsider)
    assert client.post(f"/datasets/versions/{version.id}/new", {"version": "v9"}).status_code == 404
