"""The model registry's API: an organization's models and versions, and the versions serving a deployment."""

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.api.representations import deployment_json, model_version_json
from dashboard.fields import uuid_field
from dashboard.models import Model, Role
from dashboard.selectors.access import deployment_for_member, memberships_of
from serving.services import deployment_set_model


def _set_model(request: HttpRequest, deployment_id, *, shadow: bool):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    body = require_fields(json_body(request), "model_version_id")
    deployment = deployment_set_model(
        deployment=deployment, model_version_id=uuid_field(body["model_version_id"], "model_version_id"), shadow=shadow
    )
    return 200, deployment_json(deployment, request)


@api_view(methods=("POST",))
def deployment_champion(request: HttpRequest, deployment_id):
    return _set_model(request, deployment_id, shadow=False)


@api_view(methods=("POST",))
def deployment_shadow(request: HttpRequest, deployment_id):
    return _set_model(request, deployment_id, shadow=True)


@api_view(methods=("GET",))
def models(request: HttpRequest):
    organization_ids = [m.organization_id for m in memberships_of(user=request.api_user)]
    queryset = Model.objects.filter(organization_id__in=organization_ids).prefetch_related("versions__model")
    if organization_id := request.GET.get("organization_id"):
        queryset = queryset.filter(organization_id=uuid_field(organization_id, "organization_id"))
    if name := request.GET.get("name"):
        queryset = queryset.filter(name=name)
    items = [
        {"id": str(model.id), "name": model.name, "type": model.type,
         "versions": [model_version_json(version) for version in model.versions.all()]}
        for model in queryset
    ]
    return 200, {"items": items}
