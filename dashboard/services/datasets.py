"""Writes to datasets: creating datasets and versions, importing COCO files, and exporting versions as COCO or YOLO zips."""
import datetime as dt
import json
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard.errors import ApiError, Conflict, FieldError, ValidationFailed
from dashboard.models import (
    Annotation, Dataset, DatasetAsset, DatasetVersion, Deployment, ExportFormat, ExportJob, InferenceType, JobStatus,
    Organization,
)
from dashboard.services.background import task_send, task_send_on_commit
from dashboard.services.datalake import data_get_or_create, image_store
from dashboard.services.images import image_inspect
from dashboard.shapes import shape_to_coco, shape_to_yolo, shapes_from_coco

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}
PROGRESS_EVERY = 50  # assets between two progress writes of an export job


def dataset_create(*, organization: Organization, name: str) -> Dataset:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ValidationFailed.from_errors([FieldError("name", "must be a non-empty string of at most 100 characters")])
    try:
        with transaction.atomic():
            return Dataset.objects.create(organization=organization, name=name)
    except IntegrityError:
        raise Conflict(f"a dataset named {name!r} already exists", [FieldError("name", "is taken")]) from None


def dataset_version_create(
    *, dataset: Dataset, version: str, type: str, labels: dict | None = None
) -> DatasetVersion:
    errors = []
    version = version.strip() if isinstance(version, str) else ""
    if not version or len(version) > 50:
        errors.append(FieldError("version", "must be a non-empty string of at most 50 characters"))
    if type not in InferenceType.values:
        errors.append(FieldError("type", f"must be one of {', '.join(InferenceType.values)}"))
    try:
        labels = _labels(labels or {})
    except ValueError as error:
        errors.append(FieldError("labels", str(error)))
    if errors:
        raise ValidationFailed.from_errors(errors)
    try:
        with transaction.atomic():
            return DatasetVersion.objects.create(dataset=dataset, version=version, type=type, labels=labels)
    except IntegrityError:
        raise Conflict(
            f"dataset {dataset.name!r} already has a version {version!r}", [FieldError("version", "is taken")]
        ) from None


def dataset_version_copy(*, version: DatasetVersion, name: str) -> DatasetVersion:
    """A new version of the same dataset holding what `version` holds now, images and annotations: a frozen copy
    that later submissions to `version` do not change (an experiment trains on one)."""
    with transaction.atomic():
        copy = dataset_version_create(dataset=version.dataset, version=name, type=version.type, labels=version.labels)
        assets = version.assets.select_related("annotation").order_by("created_at", "id")
        for offset in range(0, assets.count(), 1000):
            rows, annotations = [], []
            for asset in assets[offset:offset + 1000]:
                row = DatasetAsset(version=copy, data_id=asset.data_id, filename=asset.filename, width=asset.width,
                                   height=asset.height, source_asset_id=asset.source_asset_id)
                rows.append(row)
                shapes = asset.annotation.shapes if hasattr(asset, "annotation") else []
                created_by = asset.annotation.created_by_id if hasattr(asset, "annotation") else None
                annotations.append(Annotation(asset=row, shapes=shapes, created_by_id=created_by))
            DatasetAsset.objects.bulk_create(rows)
            Annotation.objects.bulk_create(annotations)
    return copy


@dataclass(frozen=True)
class AssetPut:
    """One image with its annotation, to put in a dataset version."""

    data_id: object
    filename: str
    width: int
    height: int
    shapes: list
    created_by_id: object = None
    source_asset_id: object = None


def dataset_assets_put(*, version: DatasetVersion, items: list[AssetPut]) -> tuple[int, int]:
    """Put images and their annotations in the version, one asset per image: an image the version has already (the
    same Data) has its annotation replaced by the one given, the newest; of several items with one image, the last
    wins. Returns (added, updated). Call it inside a transaction: the version's rows of these images are locked."""
    latest = {item.data_id: item for item in items}
    existing = {asset.data_id: asset for asset in DatasetAsset.objects.select_for_update(of=("self",))
                .filter(version=version, data_id__in=list(latest)).select_related("annotation")}
    new = [item for data_id, item in latest.items() if data_id not in existing]
    rows = [DatasetAsset(version=version, data_id=item.data_id, filename=item.filename, width=item.width,
                         height=item.height, source_asset_id=item.source_asset_id) for item in new]
    DatasetAsset.objects.bulk_create(rows, batch_size=500)
    Annotation.objects.bulk_create([Annotation(asset=row, shapes=item.shapes, created_by_id=item.created_by_id)
                                    for row, item in zip(rows, new)], batch_size=500)
    changed, annotations, missing = [], [], []
    for data_id, asset in existing.items():
        item = latest[data_id]
        asset.filename, asset.width, asset.height = item.filename, item.width, item.height
        asset.source_asset_id = item.source_asset_id or asset.source_asset_id
        changed.append(asset)
        if hasattr(asset, "annotation"):
            asset.annotation.shapes, asset.annotation.created_by_id = item.shapes, item.created_by_id
            annotations.append(asset.annotation)
        else:
            missing.append(Annotation(asset=asset, shapes=item.shapes, created_by_id=item.created_by_id))
    DatasetAsset.objects.bulk_update(changed, ["filename", "width", "height", "source_asset"], batch_size=500)
    Annotation.objects.bulk_update(annotations, ["shapes", "created_by"], batch_size=500)
    Annotation.objects.bulk_create(missing)
    return len(new), len(changed)


def dataset_version_check(*, deployment: Deployment, dataset_version: DatasetVersion, field: str = "dataset_version_id") -> None:
    """Refuse a version a deployment cannot use: another organization's, or of another type."""
    errors = []
    if dataset_version.dataset.organization_id != deployment.organization_id:
        errors.append(FieldError(field, "belongs to another organization"))
    elif dataset_version.type != deployment.type:
        errors.append(FieldError(field, f"is a {dataset_version.type} version; this deployment is {deployment.type}"))
    if errors:
        raise ValidationFailed.from_errors(errors)


def _labels(labels: dict) -> dict[str, str]:
    if not isinstance(labels, dict):
        raise ValueError("must map class ids to names")
    clean = {}
    for key, name in labels.items():
        try:
            class_id = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"{key!r} is not an integer class id") from None
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class {class_id} needs a non-empty name")
        clean[str(class_id)] = name.strip()
    return clean


# COCO import


def dataset_import_coco(*, version: DatasetVersion, coco: dict, images: dict[str, bytes], user=None) -> int:
    """Add a COCO file's images and annotations to the version; returns how many images were added.

    `images` maps file names (as in the zip, folders allowed) to bytes; a COCO `file_name` is matched by its
    full path, then by its base name. Every problem is reported at once, and nothing is stored unless all is well.
    """
    errors: list[FieldError] = []
    if not isinstance(coco, dict):
        raise ValidationFailed.from_errors([FieldError("coco", "must be a JSON object with images, annotations, categories")])
    categories = _coco_categories(coco.get("categories"), errors)
    coco_images = coco.get("images")
    if not isinstance(coco_images, list) or not coco_images:
        errors.append(FieldError("coco.images", "must be a non-empty list"))
        coco_images = []
    by_base = {posixpath.basename(name): content for name, content in images.items()}
    entries: dict = {}
    refused = set()  # ids of images already reported: their annotations are not reported again
    for index, image in enumerate(coco_images):
        field = f"coco.images[{index}]"
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str) or not isinstance(image.get("id"), (int, str)):
            errors.append(FieldError(field, "needs an id and a file_name"))
            continue
        refused.add(image["id"])
        if image["id"] in entries:
            errors.append(FieldError(f"{field}.id", f"{image['id']!r} is used twice"))
            continue
        content = images.get(image["file_name"], by_base.get(posixpath.basename(image["file_name"])))
        if content is None:
            errors.append(FieldError(f"{field}.file_name", f"{image['file_name']!r} is not in the images zip"))
            continue
        try:
            facts = image_inspect(content=content, field=f"{field}.file_name")
        except ApiError as error:
            errors.extend(error.errors)
            continue
        width, height = image.get("width", facts.width), image.get("height", facts.height)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
            errors.append(FieldError(field, "width and height must be positive integers"))
            continue
        refused.discard(image["id"])
        entries[image["id"]] = {"name": image["file_name"], "content": content, "facts": facts,
                                "width": width, "height": height, "shapes": []}
    annotations = coco.get("annotations", [])
    if not isinstance(annotations, list):
        errors.append(FieldError("coco.annotations", "must be a list"))
        annotations = []
    for index, annotation in enumerate(annotations):
        field = f"coco.annotations[{index}]"
        if not isinstance(annotation, dict):
            errors.append(FieldError(field, "must be an object"))
            continue
        image_id = annotation.get("image_id")
        entry = entries.get(image_id) if isinstance(image_id, (int, str)) else None
        if entry is None:
            if not isinstance(image_id, (int, str)) or image_id not in refused:
                errors.append(FieldError(f"{field}.image_id", f"{image_id!r} is no image of the file"))
            continue
        category_id = annotation.get("category_id")
        if not isinstance(category_id, int) or category_id not in categories:
            errors.append(FieldError(f"{field}.category_id", f"{category_id!r} is not in categories"))
            continue
        try:
            entry["shapes"].extend(shapes_from_coco(annotation, version.type))
        except ValueError as error:
            errors.append(FieldError(field, str(error)))
    if errors:
        raise ValidationFailed.from_errors(errors)
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        # Names the version already has win: the file adds classes, it does not rename them.
        version.labels = {**{str(k): v for k, v in categories.items()}, **locked.labels}
        version.save(update_fields=["labels"])
        items = []
        for entry in entries.values():
            stored = image_store(content=entry["content"], facts=entry["facts"])
            data, _ = data_get_or_create(
                organization_id=version.dataset.organization_id, stored=stored, facts=entry["facts"],
                filename=posixpath.basename(entry["name"]), source="dataset", tags=[], metadata={},
            )
            items.append(AssetPut(data_id=data.pk, filename=posixpath.basename(entry["name"]), width=entry["width"],
                                  height=entry["height"], shapes=entry["shapes"],
                                  created_by_id=getattr(user, "pk", None)))
        # An image the version holds already gets the file's annotation instead of a second copy.
        dataset_assets_put(version=version, items=items)
    return len(entries)


def _coco_categories(categories, errors: list[FieldError]) -> dict[int, str]:
    if not isinstance(categories, list) or not categories:
        errors.append(FieldError("coco.categories", "must be a non-empty list"))
        return {}
    found = {}
    for index, category in enumerate(categories):
        if (not isinstance(category, dict) or not isinstance(category.get("id"), int)
                or not isinstance(category.get("name"), str) or not category["name"].strip()):
            errors.append(FieldError(f"coco.categories[{index}]", "needs an integer id and a name"))
            continue
        found[category["id"]] = category["name"].strip()
    return found


# Export


def dataset_version_export(
    *, version: DatasetVersion, format: str, target: BinaryIO, progress: Callable[[float], None] | None = None
) -> None:
    """Write the version as a zip into `target` (a file, so a large version never sits in memory whole):
    COCO (annotations.json, images/) or YOLO (labels/<stem>.txt, images/, data.yaml)."""
    if format not in ExportFormat.values:
        raise ValidationFailed.from_errors([FieldError("format", f"must be one of {', '.join(ExportFormat.values)}")])
    if format == ExportFormat.YOLO and version.type == InferenceType.CLASSIFICATION:
        raise ValidationFailed.from_errors(
            [FieldError("format", "YOLO labels hold boxes: export a classification version as coco")]
        )
    class_ids = sorted({int(key) for key in version.labels})
    class_index = {class_id: index for index, class_id in enumerate(class_ids)}
    assets = version.assets.select_related("data", "annotation").order_by("created_at", "filename", "id")
    total = assets.count()
    coco = {"images": [], "annotations": [], "categories": [
        {"id": class_id, "name": version.labels[str(class_id)], "supercategory": ""} for class_id in class_ids
    ]}
    taken: set[str] = set()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:  # images are compressed already
        for index, asset in enumerate(assets.iterator(chunk_size=200), start=1):
            stem = _unique_stem(asset.filename, taken)
            name = f"{stem}.{EXTENSIONS.get(asset.data.content_type, 'jpg')}"
            with default_storage.open(asset.data.image.name, "rb") as file, archive.open(f"images/{name}", "w") as entry:
                shutil.copyfileobj(file, entry)
            shapes = asset.annotation.shapes if hasattr(asset, "annotation") else []
            if format == ExportFormat.COCO:
                coco["images"].append({"id": index, "file_name": name, "width": asset.width, "height": asset.height})
                for shape in shapes:
                    coco["annotations"].append(
                        {"id": len(coco["annotations"]) + 1, "image_id": index, **shape_to_coco(shape)}
                    )
            else:
                lines = [shape_to_yolo(shape, width=asset.width, height=asset.height, class_index=class_index)
                         for shape in shapes]
                archive.writestr(f"labels/{stem}.txt", "".join(line + "\n" for line in lines if line))
            if progress is not None and (index % PROGRESS_EVERY == 0 or index == total):
                progress(index / total)
        if format == ExportFormat.COCO:
            archive.writestr("annotations.json", json.dumps(coco), compress_type=zipfile.ZIP_DEFLATED)
        else:
            # JSON strings are valid YAML scalars, so any class name is quoted safely.
            names = "".join(f"  {i}: {json.dumps(version.labels[str(c)])}\n" for i, c in enumerate(class_ids))
            ids = "".join(f"#   {i}: class id {c}\n" for i, c in enumerate(class_ids))
            archive.writestr("data.yaml", f"# YOLO class index -> Loupe class id:\n{ids}path: .\ntrain: images\n"
                                          f"val: images\nnc: {len(class_ids)}\nnames:\n{names}")


def _unique_stem(filename: str, taken: set[str]) -> str:
    stem = posixpath.splitext(posixpath.basename(filename.replace("\\", "/")))[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "image"
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate)
    return candidate


def export_job_create(*, version: DatasetVersion, format: str) -> ExportJob:
    """An export made by a worker (enqueued after commit); the job row tells its progress."""
    from dashboard import tasks

    if format not in ExportFormat.values:
        raise ValidationFailed.from_errors([FieldError("format", f"must be one of {', '.join(ExportFormat.values)}")])
    job = ExportJob.objects.create(version=version, format=format)
    task_send_on_commit(task=tasks.export_job_run, args=[str(job.pk)])  # PENDING: swept if lost
    return job


def export_jobs_catch_up(*, older_than: dt.timedelta, limit: int) -> int:
    """Send the task again for export jobs left PENDING more than `older_than` since they were made or last sent
    (the first message lost with the broker), oldest first; how many were sent."""
    from dashboard import tasks

    now = timezone.now()
    waiting = list(ExportJob.objects.filter(status=JobStatus.PENDING)
                   .annotate(last_sent=Coalesce("resent_at", "created_at")).filter(last_sent__lt=now - older_than)
                   .order_by("last_sent").values_list("pk", flat=True)[:limit])
    sent = 0
    for job_id in waiting:
        if not task_send(task=tasks.export_job_run, args=[str(job_id)]):
            break
        ExportJob.objects.filter(pk=job_id).update(resent_at=now)
        sent += 1
    return sent


def export_job_run(*, job: ExportJob) -> ExportJob:
    """Make the job's zip and store it; a retry after a crash starts over, and a finished job is left as it is."""
    if job.status == JobStatus.READY:
        return job
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPUTING, progress=0.0)

    def progress(share: float) -> None:
        ExportJob.objects.filter(pk=job.pk).update(progress=round(min(share, 1.0) * 0.99, 3))

    with tempfile.TemporaryFile() as zipped:
        try:
            dataset_version_export(version=job.version, format=job.format, target=zipped, progress=progress)
        except ApiError as error:
            ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, message=error.message[:500])
            job.refresh_from_db()
            return job
        zipped.seek(0)
        path = default_storage.save(f"exports/{job.pk}/{export_filename(job.version, job.format)}", File(zipped))
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.READY, progress=1.0, file=path)
    job.refresh_from_db()
    return job


def export_filename(version: DatasetVersion, format: str) -> str:
    """A zip's file name, safe in a path and in a Content-Disposition header."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{version.dataset.name}-{version.version}-{format}") + ".zip"


def export_jobs_expire(*, older_than: dt.timedelta) -> int:
    """Delete export jobs (and their zips) made more than `older_than` ago; returns how many went."""
    expired = list(ExportJob.objects.filter(created_at__lt=timezone.now() - older_than))
    for job in expired:
        if job.file:
            job.file.delete(save=False)
    ExportJob.objects.filter(pk__in=[job.pk for job in expired]).delete()
    return len(expired)
