"""Serving's API: the model registry (models, versions, uploads), the versions serving a deployment and their history,
and predictions run by the deployment's champion or shadow."""
import json

from django.conf import settings
from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, jwt_deployment_check, require_fields
from dashboard.api.representations import deployment_json, model_version_json
from dashboard.errors import FieldError, PayloadTooLarge, ValidationFailed
from dashboard.fields import Fields, uuid_field
from dashboard.models import Model, Role
from dashboard.selectors.access import (
    deployment_for_member, deployment_for_monitoring, memberships_of, organization_for_member,
)
from serving.models import DeploymentModelChange
from serving.selectors import (
    model_changes, model_for_member, model_version_for_member, model_versions, models_visible_to, version_deployments,
)
from serving.services import deployment_set_model
from serving.services.predict import deployment_predict, deployment_predict_shadow
from serving.services.registry import model_create, model_version_create

# --- representations ---------------------------------------------------------------------------


def model_json(model: Model, versions=None) -> dict:
    versions = model.versions.select_related("model").order_by("version") if versions is None else versions
    return {
        "id": str(model.id),
        "name": model.name,
        "type": model.type,
        "organization_id": str(model.organization_id),
        "description": model.description,
        "created_at": model.created_at.isoformat(),
        "versions": [model_version_json(version) for version in versions],
    }


def model_change_json(change: DeploymentModelChange) -> dict:
    def side(version, label):
        return None if not label else {"id": str(version.id) if version else None, "label": label}

    return {
        "deployment_id": str(change.deployment_id),
        "deployment_name": change.deployment.name,
        "role": change.role,
        "previous": side(change.previous, change.previous_label),
        "current": side(change.current, change.current_label),
        "changed_by": change.changed_by.get_username() if change.changed_by else None,
        "changed_at": change.changed_at.isoformat(),
    }


def _form_or_json(request: HttpRequest) -> dict:
    """A multipart form's fields (file uploads), or the JSON body."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return {key: request.POST.get(key) for key in request.POST}
    return require_fields(json_body(request))


# --- registry ------------------------------------------------------------------------------------


def _set_model(request: HttpRequest, deployment_id, *, shadow: bool):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = require_fields(json_body(request), "model_version_id")
    deployment = deployment_set_model(
        deployment=deployment, model_version_id=uuid_field(body["model_version_id"], "model_version_id"), shadow=shadow,
        changed_by=request.api_user,
    )
    return 200, deployment_json(deployment, request)


@api_view(methods=("POST",))
def deployment_champion(request: HttpRequest, deployment_id):
    return _set_model(request, deployment_id, shadow=False)


@api_view(methods=("POST",))
def deployment_shadow(request: HttpRequest, deployment_id):
    return _set_model(request, deployment_id, shadow=True)


@api_view(methods=("GET",))
def deployment_model_history(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    return 200, {"items": [model_change_json(change) for change in model_changes(deployment=deployment)]}


@api_view(methods=("GET", "POST"))
def models(request: HttpRequest):
    if request.method == "POST":
        body = require_fields(json_body(request), "name", "type")
        organization = organization_for_member(user=request.api_user, role=Role.ADMIN,
                                               organization_id=_organization_id(request, body))
        model = model_create(organization=organization, name=body["name"], type=body["type"],
                             description=body.get("description") or "")
        return 201, model_json(model)
    organization_id = request.GET.get("organization_id")
    queryset = models_visible_to(
        user=request.api_user, name=request.GET.get("name"),
        organization_id=uuid_field(organization_id, "organization_id") if organization_id else None,
    ).prefetch_related("versions__model")
    return 200, {"items": [model_json(model, list(model.versions.all())) for model in queryset]}


def _organization_id(request: HttpRequest, body: dict):
    if body.get("organization_id"):
        return uuid_field(body["organization_id"], "organization_id")
    memberships = list(memberships_of(user=request.api_user))
    if len(memberships) != 1:
        raise ValidationFailed.from_errors([FieldError("organization_id", "is required: you belong to several organizations")])
    return memberships[0].organization_id


@api_view(methods=("GET",))
def model_detail(request: HttpRequest, model_id):
    model, _ = model_for_member(user=request.api_user, model_id=model_id)
    return 200, model_json(model)


@api_view(methods=("GET", "POST"))
def model_version_list(request: HttpRequest, model_id):
    if request.method == "GET":
        model, _ = model_for_member(user=request.api_user, model_id=model_id)
        return 200, {"items": [model_version_json(version) for version in model_versions(model=model)]}
    model, _ = model_for_member(user=request.api_user, model_id=model_id, role=Role.ADMIN)
    body = _form_or_json(request)
    upload = request.FILES.get("file")
    if upload is not None and upload.size > settings.LOUPE_MAX_MODEL_BYTES:
        # Refused before the file is read: the bound is what keeps a web process's memory in check.
        raise PayloadTooLarge(f"file: {upload.size:,} bytes is over the limit of {settings.LOUPE_MAX_MODEL_BYTES:,}",
                              [FieldError("file", f"over the limit of {settings.LOUPE_MAX_MODEL_BYTES:,} bytes (LOUPE_MAX_MODEL_BYTES)")])
    runtime = body.get("runtime") or ("http" if body.get("endpoint") and upload is None else "onnx")
    version = model_version_create(
        model=model, runtime=runtime, labels=body.get("labels"), contract=body.get("contract"),
        artifact=upload.read() if upload is not None else None, endpoint=body.get("endpoint") or "",
        name=body.get("name") or "", description=body.get("description") or "", metrics=body.get("metrics"),
        parameters=body.get("parameters"), source="uploaded" if upload is not None else "registered",
        created_by=request.api_user,
    )
    return 201, model_version_json(version)


@api_view(methods=("GET",))
def model_version_detail(request: HttpRequest, version_id):
    version, _ = model_version_for_member(user=request.api_user, version_id=version_id)
    body = model_version_json(version)
    body["deployments"] = [
        {"id": str(deployment.id), "name": deployment.name, "role": role}
        for deployment, role in version_deployments(version=version)
    ]
    body["history"] = [model_change_json(change) for change in model_changes(version=version)]
    return 200, body


# --- predictions -----------------------------------------------------------------------------------


def _predict_fields(request: HttpRequest) -> dict:
    """The multipart form of a prediction (also read from a urlencoded one): fields named as the seeds send them."""
    if not request.content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise ValidationFailed.from_errors([FieldError("body", "send a multipart/form-data form: media (the image file), source, tags, metadata, monitor")])
    form = request.POST
    fields = Fields()
    monitor_text = (form.get("monitor") or "true").strip().lower()
    if monitor_text not in ("true", "false", "1", "0", "yes", "no"):
        fields.refuse("monitor", f"must be true or false, not {form.get('monitor')!r}")
    tags = [tag for value in form.getlist("tags") for tag in _tags_of(value)]
    parsed = {
        "monitor": monitor_text in ("true", "1", "yes"),
        "source": fields.text(form.get("source") or None, "source", max_length=100) or None,
        "tags": fields.tags(tags, "tags") or [],
        "metadata": form.get("metadata"),
        "data_id": fields.uuid(form.get("data_id") or None, "data_id", required=False),
        "predicted_asset_id": form.get("predicted_asset_id"),
    }
    fields.check()
    return parsed


def _tags_of(value: str) -> list[str]:
    # Repeated fields (the client's way) or one field holding a JSON list or a comma-separated text.
    text = value.strip()
    if text.startswith("["):
        try:
            listed = json.loads(text)
            if isinstance(listed, list):
                return [str(item) for item in listed]
        except ValueError:
            pass
    return [part for part in (part.strip() for part in text.split(",")) if part]


def _deployment_for_serving(request: HttpRequest, deployment_id):
    jwt_deployment_check(request, deployment_id)
    return deployment_for_monitoring(user_id=request.api_user_id, deployment_id=deployment_id, role=Role.ML_LEAD,
                                     related=("champion__model", "shadow__model"))


@api_view(methods=("POST",), auth="jwt")
def predict(request: HttpRequest, deployment_id):
    deployment = _deployment_for_serving(request, deployment_id)
    form = _predict_fields(request)
    media = request.FILES.get("media")
    if media is not None and media.size > settings.LOUPE_MAX_IMAGE_BYTES:
        raise PayloadTooLarge(f"media: {media.size:,} bytes is over the limit of {settings.LOUPE_MAX_IMAGE_BYTES:,}",
                              [FieldError("media", f"over the limit of {settings.LOUPE_MAX_IMAGE_BYTES:,} bytes")])
    if (media is None) == (form["data_id"] is None):
        raise ValidationFailed.from_errors([FieldError("media", "send the image as the file field media, or data_id for an image of the datalake (one of them)")])
    answer = deployment_predict(
        deployment=deployment,
        content=media.read() if media is not None else None,
        filename=media.name if media is not None else None,
        data_id=form["data_id"],
        source=form["source"],
        tags=form["tags"],
        metadata=form["metadata"],
        monitor=form["monitor"],
        idempotency_key=request.headers.get("Idempotency-Key", "")[:128] or None,
    )
    return 200, answer


@api_view(methods=("POST",), auth="jwt")
def predict_shadow(request: HttpRequest, deployment_id):
    deployment = _deployment_for_serving(request, deployment_id)
    form = _predict_fields(request)
    asset_id = uuid_field(form["predicted_asset_id"], "predicted_asset_id")
    return 200, deployment_predict_shadow(deployment=deployment, predicted_asset_id=asset_id, monitor=form["monitor"])

