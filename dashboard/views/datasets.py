"""Pages of training data: datasets and their versions, COCO import, and exports."""
import json
import zipfile

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.errors import ApiError
from dashboard.models import DatasetVersion, ExportJob, InferenceType, JobStatus, Role
from dashboard.fields import uuid_field
from dashboard.selectors.access import memberships_of, organization_for_member
from dashboard.selectors.datasets import (
    dataset_asset_cards, dataset_version_for_member, datasets_visible_to, export_jobs_of, versions_with_counts,
)
from dashboard.services.datasets import (
    dataset_create, dataset_import_coco, dataset_version_copy, dataset_version_create, export_job_create,
)
from dashboard.services.deployments import PALETTE

MAX_ZIP_MEMBERS = 20_000


@login_required
@require_http_methods(["GET", "POST"])
def dataset_list(request):
    memberships = list(memberships_of(user=request.user))
    admin_of = [m.organization for m in memberships if m.allows(Role.ADMIN)]
    if request.method == "POST":
        organization_id = uuid_field(request.POST.get("organization_id"), "organization_id")
        organization = organization_for_member(user=request.user, organization_id=organization_id, role=Role.ADMIN)
        try:
            with transaction.atomic():  # a dataset is made with its first version or not at all
                dataset = dataset_create(organization=organization, name=request.POST.get("name", ""))
                version = dataset_version_create(dataset=dataset, version=request.POST.get("version") or "v1",
                                                 type=request.POST.get("type", ""))
        except ApiError as error:
            messages.error(request, _refusal(error))
            return redirect("dataset-list")
        return redirect("dataset-version", version.id)
    datasets = list(datasets_visible_to(user=request.user))
    versions = versions_with_counts(DatasetVersion.objects.filter(dataset__in=datasets)).order_by("created_at")
    by_dataset: dict = {}
    for version in versions:
        by_dataset.setdefault(version.dataset_id, []).append(version)
    for dataset in datasets:
        dataset.version_list = by_dataset.get(dataset.id, [])
    context = {"datasets": datasets, "admin_of": admin_of, "types": InferenceType.choices}
    return render(request, "dashboard/dataset_list.html", context)


IMAGES_PER_PAGE = 60


@login_required
@require_GET
def dataset_version_detail(request, version_id):
    version = dataset_version_for_member(user=request.user, version_id=version_id)
    membership = next(m for m in memberships_of(user=request.user) if m.organization_id == version.dataset.organization_id)
    asset_count = version.assets.count()
    try:
        page = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        page = 1
    context = {
        "version": version,
        "is_admin": membership.allows(Role.ADMIN),
        "asset_count": asset_count,
        # The legend of the drawn shapes: each class in the colour dataset_asset_cards draws it with.
        "labels": [{"class_id": key, "name": name, "color": PALETTE[int(key) % len(PALETTE)]}
                   for key, name in sorted(version.labels.items(), key=lambda item: int(item[0]))],
        "cards": dataset_asset_cards(version=version, offset=(page - 1) * IMAGES_PER_PAGE, limit=IMAGES_PER_PAGE),
        "page": page,
        "pages": max(1, -(-asset_count // IMAGES_PER_PAGE)),
        "first_shown": (page - 1) * IMAGES_PER_PAGE + 1,
        "last_shown": min(page * IMAGES_PER_PAGE, asset_count),
        "jobs": export_jobs_of(version=version),
        "keep_days": settings.LOUPE_EXPORT_KEEP_DAYS,
    }
    return render(request, "dashboard/dataset_version.html", context)


def _refusal(error: ApiError) -> str:
    fields = "; ".join(f"{e.field}: {e.message}" for e in error.errors)
    return f"{error.message} ({fields})" if fields and fields not in error.message else error.message


@login_required
@require_POST
def dataset_version_new(request, version_id):
    """A new version of the version's dataset: empty, or a copy of this one (to freeze a training set)."""
    version = dataset_version_for_member(user=request.user, version_id=version_id, role=Role.ADMIN)
    name = request.POST.get("version", "")
    try:
        if request.POST.get("start") == "copy":
            made = dataset_version_copy(version=version, name=name)
        else:
            made = dataset_version_create(dataset=version.dataset, version=name, type=version.type,
                                          labels=version.labels)
    except ApiError as error:
        messages.error(request, _refusal(error))
        return redirect("dataset-version", version.id)
    copied = f", a copy of {version.version} ({made.assets.count()} images)" if request.POST.get("start") == "copy" else ""
    messages.success(request, f"Made {made.dataset.name} {made.version}{copied}. A deployment's feedback loop "
                              "fills it once it is attached there.")
    return redirect("dataset-version", made.id)


@login_required
@require_POST
def dataset_version_import(request, version_id):
    version = dataset_version_for_member(user=request.user, version_id=version_id, role=Role.ADMIN)
    try:
        coco = json.loads(request.FILES["coco"].read()) if "coco" in request.FILES else None
        images = _zip_images(request.FILES["images"]) if "images" in request.FILES else {}
        added = dataset_import_coco(version=version, coco=coco, images=images, user=request.user)
    except (ValueError, RecursionError, zipfile.BadZipFile) as error:
        messages.error(request, f"The files could not be read: {error}")
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Imported {added} image{'s' if added != 1 else ''}.")
    return redirect("dataset-version", version.id)


def _zip_images(upload) -> dict[str, bytes]:
    with zipfile.ZipFile(upload) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValueError(f"the zip holds {len(members)} files; at most {MAX_ZIP_MEMBERS} are read")
        # Sizes are checked before reading: a small zip may inflate to far more than any image may weigh.
        too_big = [info.filename for info in members if info.file_size > settings.LOUPE_MAX_IMAGE_BYTES]
        if too_big:
            raise ValueError(f"{too_big[0]} is over the limit of {settings.LOUPE_MAX_IMAGE_BYTES:,} bytes")
        return {info.filename: archive.read(info) for info in members}


@login_required
@require_POST
def dataset_version_export(request, version_id):
    version = dataset_version_for_member(user=request.user, version_id=version_id)
    try:
        job = export_job_create(version=version, format=request.POST.get("format", ""))
    except ApiError as error:
        messages.error(request, error.message)
        return redirect("dataset-version", version.id)
    if request.htmx:
        return render(request, "dashboard/dataset_version.html#job", {"job": job})
    return redirect("dataset-version", version.id)


def _job_for_page(request, job_id) -> ExportJob:
    job = ExportJob.objects.filter(pk=job_id).select_related("version__dataset").first()
    if job is None:
        raise Http404("no such export")
    dataset_version_for_member(user=request.user, version_id=job.version_id)
    return job


@login_required
@require_GET
def export_job_detail(request, job_id):
    job = _job_for_page(request, job_id)
    if not request.htmx:
        return redirect("dataset-version", job.version_id)
    return render(request, "dashboard/dataset_version.html#job", {"job": job})


@login_required
@require_GET
def export_job_download(request, job_id):
    job = _job_for_page(request, job_id)
    if job.status != JobStatus.READY or not job.file:
        raise Http404("this export is not ready")
    filename = job.file.name.rsplit("/", 1)[-1]
    return FileResponse(default_storage.open(job.file.name, "rb"), as_attachment=True, filename=filename,
                        content_type="application/zip")
