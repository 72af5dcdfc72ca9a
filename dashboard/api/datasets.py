"""The datasets API: datasets, their versions, and a version exported as a COCO or YOLO zip."""
import tempfile

from django.http import FileResponse, HttpRequest

from dashboard.api.base import api_view
from dashboard.fields import uuid_field
from dashboard.models import DatasetVersion
from dashboard.selectors.access import organization_for_member
from dashboard.selectors.datasets import (
    dataset_for_member, dataset_version_for_member, dataset_version_in, datasets_visible_to, versions_with_counts,
)
from dashboard.services.datasets import dataset_version_export as export_zip, export_filename


def dataset_version_json(version: DatasetVersion) -> dict:
    body = {
        "id": str(version.id),
        "dataset_id": str(version.dataset_id),
        "dataset_name": version.dataset.name,
        "version": version.version,
        "name": version.version,
        "type": version.type,
        "labels": version.labels,
        "created_at": version.created_at.isoformat(),
    }
    if hasattr(version, "asset_count"):
        body["asset_count"] = version.asset_count
    return body


# Datasets


@api_view(methods=("GET",))
def datasets(request: HttpRequest):
    organization_id = request.GET.get("organization_id")
    if organization_id:
        organization_for_member(user=request.api_user, organization_id=uuid_field(organization_id, "organization_id"))
    queryset = datasets_visible_to(user=request.api_user, organization_id=organization_id or None)
    if name := request.GET.get("name"):
        queryset = queryset.filter(name=name)
    items = [
        {"id": str(dataset.id), "name": dataset.name, "organization_id": str(dataset.organization_id),
         "created_at": dataset.created_at.isoformat()}
        for dataset in queryset
    ]
    return 200, {"items": items}


@api_view(methods=("GET",))
def dataset_versions(request: HttpRequest, dataset_id):
    dataset = dataset_for_member(user=request.api_user, dataset_id=dataset_id)
    versions = versions_with_counts(dataset.versions.all()).order_by("created_at", "id")
    return 200, {"items": [dataset_version_json(version) for version in versions]}


@api_view(methods=("GET",))
def dataset_version_export(request: HttpRequest, version_id):
    """GET ?format=coco|yolo -> the version as a zip; errors are JSON like the rest of the API."""
    version = dataset_version_for_member(user=request.api_user, version_id=version_id)
    export_format = request.GET.get("format", "coco")
    zipped = tempfile.TemporaryFile()  # FileResponse streams it, then closes (so deletes) it
    try:
        export_zip(version=version, format=export_format, target=zipped)
    except BaseException:
        zipped.close()
        raise
    zipped.seek(0)
    return FileResponse(zipped, content_type="application/zip", as_attachment=True,
                        filename=export_filename(version, export_format))


def dataset_version_of(deployment, value) -> DatasetVersion:
    """The dataset version a request names by id, if it belongs to the deployment's organization."""
    return dataset_version_in(
        organization_id=deployment.organization_id, version_id=uuid_field(value, "dataset_version_id")
    )
