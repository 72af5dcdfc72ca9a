"""The data-pipeline API: datasets and their versions, the feedback loop, the training-data reference, exports."""
import tempfile
import uuid

from django.http import FileResponse, HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import DatasetVersion, FeedbackLoop, Role
from dashboard.selectors.access import deployment_for_member, organization_for_member
from dashboard.selectors.assets import predicted_assets_matching
from dashboard.selectors.datasets import (
    dataset_for_member, dataset_version_for_member, dataset_version_in, datasets_visible_to, feedback_loop_of,
    feedback_loop_versions, training_data_of, versions_with_counts,
)
from dashboard.services.datasets import dataset_version_export as export_zip, export_filename
from dashboard.services.feedback_loop import (
    feedback_loop_attach, feedback_loop_detach, feedback_loop_setup, feedback_loop_submit, feedback_loop_toggle,
    training_data_disable, training_data_set,
)

MAX_SUBMIT_IDS = 10_000


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


def feedback_loop_json(loop: FeedbackLoop) -> dict:
    return {
        "deployment_id": str(loop.deployment_id),
        "active": loop.active,
        "submitted_since_training": loop.submitted_since_training,
        "dataset_versions": [dataset_version_json(v) for v in feedback_loop_versions(deployment=loop.deployment)],
    }


# Datasets


@api_view(methods=("GET",))
def datasets(request: HttpRequest):
    organization_id = request.GET.get("organization_id")
    if organization_id:
        organization_for_member(user=request.api_user, organization_id=_uuid(organization_id, "organization_id"))
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


# Feedback loop


@api_view(methods=("POST",))
def feedback_loop_setup_view(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = json_body(request)
    if body is None:
        body = {}
    require_fields(body)
    version = None
    if body.get("dataset_version_id") is not None:
        version = _version(deployment, body["dataset_version_id"])
    loop = feedback_loop_setup(deployment=deployment, dataset_version=version)
    return 200, feedback_loop_json(loop)


@api_view(methods=("GET", "PUT"))
def feedback_loop_view(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        loop = feedback_loop_of(deployment=deployment)
        return 200, feedback_loop_json(loop) if loop else {"deployment_id": str(deployment.id), "active": False,
                                                          "submitted_since_training": 0, "dataset_versions": []}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = json_body(request)
    if not isinstance(body, dict) or "active" not in body:
        raise ValidationFailed.from_errors([FieldError("active", "is required (true or false)")])
    return 200, feedback_loop_json(feedback_loop_toggle(deployment=deployment, active=body["active"]))


@api_view(methods=("GET", "POST", "DELETE"))
def feedback_loop_datasets(request: HttpRequest, deployment_id):
    if request.method == "GET":
        deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
        return 200, {"items": [dataset_version_json(v) for v in feedback_loop_versions(deployment=deployment)]}
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    version = _version(deployment, require_fields(json_body(request), "dataset_version_id")["dataset_version_id"])
    change = feedback_loop_attach if request.method == "POST" else feedback_loop_detach
    return 200, feedback_loop_json(change(deployment=deployment, dataset_version=version))


@api_view(methods=("POST",))
def feedback_loop_submit_view(request: HttpRequest, deployment_id):
    # Labelers submit what they reviewed: the lowest role is enough.
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    body = require_fields(json_body(request))
    ids, query = body.get("predicted_asset_ids"), body.get("q")
    if (ids is None) == (query is None):
        raise ValidationFailed.from_errors([FieldError("predicted_asset_ids", "give predicted_asset_ids or q, not both")])
    if query is not None:
        if not isinstance(query, str):
            raise ValidationFailed.from_errors([FieldError("q", "must be a string")])
        assets = predicted_assets_matching(deployment=deployment, query=query)
    else:
        assets = predicted_assets_matching(deployment=deployment).filter(pk__in=_asset_ids(ids, deployment))
    result = feedback_loop_submit(deployment=deployment, assets=assets)
    return 200, {"submitted": result.submitted, "skipped": result.skipped}


def _asset_ids(ids, deployment) -> list[uuid.UUID]:
    if not isinstance(ids, list) or not ids or len(ids) > MAX_SUBMIT_IDS:
        raise ValidationFailed.from_errors(
            [FieldError("predicted_asset_ids", f"must be a list of 1 to {MAX_SUBMIT_IDS:,} ids")]
        )
    parsed = [_uuid(value, f"predicted_asset_ids[{index}]") for index, value in enumerate(ids)]
    known = set(deployment.predicted_assets.filter(pk__in=parsed).values_list("id", flat=True))
    unknown = [FieldError(f"predicted_asset_ids[{index}]", "is no predicted asset of this deployment")
               for index, value in enumerate(parsed) if value not in known]
    if unknown:
        raise ValidationFailed.from_errors(unknown)
    return parsed


# Training data reference


def training_data_json(deployment) -> dict:
    reference = training_data_of(deployment=deployment)
    if reference is None:
        return {"status": None, "progress": 0.0, "message": "no training data is set", "dataset_version": None}
    return {
        "status": reference.status,
        "progress": reference.progress,
        "message": reference.message,
        "dataset_version": dataset_version_json(reference.dataset_version),
        "updated_at": reference.updated_at.isoformat(),
    }


@api_view(methods=("POST",))
def training_data_setup(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    version = _version(deployment, require_fields(json_body(request), "dataset_version_id")["dataset_version_id"])
    training_data_set(deployment=deployment, dataset_version=version)
    return 202, training_data_json(deployment)


@api_view(methods=("GET",))
def training_data_check(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    return 200, training_data_json(deployment)


@api_view(methods=("PUT", "POST"))
def training_data_disable_view(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    training_data_disable(deployment=deployment)
    return 200, training_data_json(deployment)


def _version(deployment, value) -> DatasetVersion:
    return dataset_version_in(
        organization_id=deployment.organization_id, version_id=_uuid(value, "dataset_version_id")
    )


def _uuid(value, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed.from_errors([FieldError(field, "must be a UUID")]) from None
